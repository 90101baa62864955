import assert from "node:assert/strict";
import { createAssembler, InlineAssembler, WorkerAssembler } from "../lib/data/assembler.ts";
import { assembleBatch, normalizationTable, planCropFlip } from "../lib/data/augment.ts";
import { allocPixels, DataError } from "../lib/data/dataset.ts";
import { Rng } from "../lib/rng.ts";

const SHAPE: [number, number, number] = [3, 16, 16];
const SIZE = 3 * 16 * 16;

function source(shared: boolean) {
  const rng = new Rng(1);
  const images = shared ? allocPixels(40 * SIZE) : new Uint8Array(40 * SIZE);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  return { images, shape: SHAPE, padding: 4, table: normalizationTable([0.4, 0.5, 0.6], [0.2, 0.25, 0.3]) };
}

Deno.test("worker and inline assemblers produce exactly assembleBatch's output, shared or plain pixels", async () => {
  for (const shared of [true, false]) {
    const src = source(shared);
    const worker = new WorkerAssembler(src);
    const inline = new InlineAssembler(src);
    try {
      const rng = new Rng(2);
      const plans = Array.from(
        { length: 5 },
        () => planCropFlip(Int32Array.from({ length: 8 }, () => rng.int(40)), rng, 4),
      );
      const fromWorker = await Promise.all(plans.map((p) => worker.submit(p).done));
      for (let i = 0; i < plans.length; i++) {
        const expected = assembleBatch(src.images, SHAPE, plans[i], 4, src.table);
        assert.deepEqual(fromWorker[i], expected);
        assert.deepEqual(await inline.submit(plans[i]).done, expected);
        assert.deepEqual(inline.submit(plans[i]).ready(), expected, "inline: assembled on demand");
      }
    } finally {
      await worker.close();
      await inline.close();
    }
  }
});

Deno.test("a finished worker batch is taken synchronously, without an event-loop turn", async () => {
  const src = source(true);
  const worker = new WorkerAssembler(src);
  try {
    const plan = planCropFlip(new Int32Array([3, 1, 4, 1, 5]), new Rng(9), 4);
    await worker.submit(plan).done; // the worker is up
    const ticket = worker.submit(plan);
    // Busy-wait: no message can be delivered meanwhile, only the shared ready flag can change.
    const deadline = performance.now() + 10_000;
    let x: Float32Array | null = null;
    while (x === null && performance.now() < deadline) x = ticket.ready();
    assert.ok(x !== null, "the worker never raised the ready flag");
    assert.deepEqual(x, assembleBatch(src.images, SHAPE, plan, 4, src.table));
    assert.ok(!(x.buffer instanceof SharedArrayBuffer), "consumers get an ordinary Float32Array");
    assert.equal(await ticket.done, x);
  } finally {
    await worker.close();
  }
});

Deno.test("closing a worker assembler rejects pending and later batches with a DataError", async () => {
  const a = createAssembler(source(true), true);
  assert.equal(a.kind, "worker");
  const plan = planCropFlip(new Int32Array([1, 2, 3]), new Rng(0), 4);
  const pending = a.submit(plan).done;
  await a.close();
  await assert.rejects(pending, (e) => e instanceof DataError && e.message === "batch loader closed");
  await assert.rejects(a.submit(plan).done, /batch loader closed/);
  assert.equal(createAssembler(source(true), false).kind, "inline");
});

Deno.test("a worker that cannot start falls back to inline assembly, pending batches included", async () => {
  const src = source(true);
  // A worker script that ends at once without ever answering.
  const a = new WorkerAssembler(src, { workerUrl: new URL("data:text/javascript,export {};") });
  try {
    const plan = planCropFlip(new Int32Array([0, 7]), new Rng(4), 4);
    const x = await a.submit(plan).done;
    assert.deepEqual(x, assembleBatch(src.images, SHAPE, plan, 4, src.table));
    assert.equal(a.kind, "inline");
    assert.deepEqual(await a.submit(plan).done, x);
  } finally {
    await a.close();
  }
});

Deno.test("a loader that is never closed does not keep the process alive", async () => {
  const loaderUrl = new URL("../lib/data/loader.ts", import.meta.url).href;
  const syntheticUrl = new URL("../lib/data/synthetic.ts", import.meta.url).href;
  const script = `
    import { BatchLoader } from "${loaderUrl}";
    import { makeSyntheticDataset } from "${syntheticUrl}";
    const loader = new BatchLoader(makeSyntheticDataset({ trainCount: 64 }), "train", { batchSize: 16 });
    const b = await loader.next();
    console.log("batch", b.n, loader.stats().assembler);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  });
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(text.trim(), "batch 16 worker");
});
