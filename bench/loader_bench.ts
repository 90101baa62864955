/**
 * Loader benchmark: how long assembling one CIFAR-sized batch takes, and how long a training
 * loop waits for its next batch when each step takes `--step-ms` milliseconds, either keeping
 * the main thread busy (tfjs cpu/wasm) or awaiting (a native or GPU engine).
 *
 * Run: `deno run -A bench/loader_bench.ts [--batch 64] [--steps 60] [--step-ms 50]`
 * @module
 */

import { parseArgs } from "node:util";
import { Rng } from "../lib/rng.ts";
import { assembleBatch, normalizationTable, planCropFlip } from "../lib/data/augment.ts";
import { allocPixels, type ImageDataset } from "../lib/data/dataset.ts";
import { BatchLoader } from "../lib/data/loader.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batch: { type: "string", default: "64" },
    steps: { type: "string", default: "60" },
    "step-ms": { type: "string", default: "50" },
    images: { type: "string", default: "50000" },
  },
});
const batchSize = Number(values.batch);
const steps = Number(values.steps);
const stepMs = Number(values["step-ms"]);
const count = Number(values.images);

/** CIFAR-sized dataset of random pixels (the loader's cost does not depend on the content). */
function cifarSized(n: number): ImageDataset {
  const images = allocPixels(n * 3072);
  const chunk = new Uint8Array(65536);
  for (let off = 0; off < images.length; off += chunk.length) {
    crypto.getRandomValues(chunk);
    images.set(chunk.subarray(0, Math.min(chunk.length, images.length - off)), off);
  }
  const labels = Int32Array.from({ length: n }, (_, i) => i % 100);
  const split = { count: n, images, labels };
  return {
    name: "cifar-sized",
    numClasses: 100,
    classNames: Array.from({ length: 100 }, (_, i) => `c${i}`),
    shape: [3, 32, 32],
    mean: [0.5071, 0.4867, 0.4408],
    std: [0.2675, 0.2565, 0.2761],
    train: split,
    test: split,
  };
}

const ds = cifarSized(count);

// 1. Assembly cost on the main thread (crop + flip + normalise of `batchSize` images).
const table = normalizationTable(ds.mean, ds.std);
const rng = new Rng(1);
const out = new Float32Array(batchSize * 3072);
const reps = 300;
for (let i = 0; i < 30; i++) {
  const idx = Int32Array.from({ length: batchSize }, () => rng.int(count));
  assembleBatch(ds.train.images, ds.shape, planCropFlip(idx, rng, 4), 4, table, out);
}
let t0 = performance.now();
for (let i = 0; i < reps; i++) {
  const idx = Int32Array.from({ length: batchSize }, () => rng.int(count));
  assembleBatch(ds.train.images, ds.shape, planCropFlip(idx, rng, 4), 4, table, out);
}
const assembleMs = (performance.now() - t0) / reps;

// 2. Unthrottled loader throughput (consumer does nothing).
async function throughput(worker: boolean): Promise<number> {
  const loader = new BatchLoader(ds, "train", { batchSize, seed: 0, worker });
  await loader.next();
  const t = performance.now();
  for (let i = 0; i < reps; i++) await loader.next();
  const ms = (performance.now() - t) / reps;
  await loader.close();
  return ms;
}

// 3. Consumer wait with a simulated training step.
async function consumerWait(worker: boolean, busy: boolean): Promise<{ mean: number; max: number }> {
  const loader = new BatchLoader(ds, "train", { batchSize, seed: 0, worker });
  await loader.next(); // the first batch has nothing to overlap with
  let total = 0, max = 0;
  for (let i = 0; i < steps; i++) {
    if (busy) {
      const end = performance.now() + stepMs;
      while (performance.now() < end) { /* the step keeps the main thread busy */ }
    } else {
      await new Promise((r) => setTimeout(r, stepMs));
    }
    t0 = performance.now();
    await loader.next();
    const waited = performance.now() - t0;
    total += waited;
    max = Math.max(max, waited);
  }
  await loader.close();
  return { mean: total / steps, max };
}

const fmt = (x: number) => x.toFixed(3);
console.log(
  `loader benchmark: ${count} images of 3x32x32, batch ${batchSize}, step ${stepMs} ms, ${steps} steps`,
);
console.log(`assembly (crop+flip+normalise) on the main thread: ${fmt(assembleMs)} ms/batch`);
for (const worker of [true, false]) {
  const name = worker ? "worker" : "inline";
  console.log(`loader throughput, ${name}: ${fmt(await throughput(worker))} ms/batch`);
}
for (const busy of [true, false]) {
  for (const worker of [true, false]) {
    const w = await consumerWait(worker, busy);
    console.log(
      `consumer wait per step, ${worker ? "worker" : "inline"}, ${
        busy ? "busy" : "awaiting"
      } ${stepMs} ms step: ` +
        `mean ${fmt(w.mean)} ms, max ${fmt(w.max)} ms`,
    );
  }
}
