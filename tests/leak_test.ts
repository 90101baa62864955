/**
 * No leaks: tensor count and resident memory stay flat over 200 training steps of a small model
 * on the default (wasm) backend, and over oracle passes of a frozen teacher.
 */
import assert from "node:assert/strict";
import { createEngine } from "../lib/engines/registry.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { initStateDict } from "../lib/models/init.ts";
import { Rng } from "../lib/rng.ts";

Deno.test("200 training steps (with oracle teacher) keep tensor count and resident memory flat", async () => {
  const engine = await createEngine({ engine: "tfjs", backend: "wasm" });
  const g = buildModel("resnet8", { numClasses: 10 });
  const student = await engine.loadTrainable(g, initStateDict(g, 0), {
    momentum: 0.9,
    weightDecay: 5e-4,
    nesterov: false,
    dampening: 0,
  });
  const teacher = await engine.loadFrozen(g, initStateDict(g, 1));
  const n = 8, pix = 3 * 16 * 16;
  const rng = new Rng(0);
  const batch = {
    x: Float32Array.from({ length: n * pix }, () => rng.normal()),
    y: Int32Array.from({ length: n }, (_, i) => i % 10),
    n,
    shape: [3, 16, 16] as const,
  };
  const step = async () => {
    const t = (await teacher.oracle(batch, { gamma: 0.5, recNum: 1, reduction: "mean" })).logits;
    await student.trainStep(batch, t, { ceWeight: 0.5, alpha: 1, temperature: 2 }, 0.01);
  };
  for (let i = 0; i < 20; i++) await step(); // warm-up: caches, lazily built kernels
  const tensors0 = engine.liveTensors();
  const rss0 = Deno.memoryUsage().rss;
  for (let i = 0; i < 200; i++) await step();
  const tensors1 = engine.liveTensors();
  const rss1 = Deno.memoryUsage().rss;
  assert.equal(tensors1, tensors0, `live tensors grew from ${tensors0} to ${tensors1}`);
  // A leak of one 8x16x16x16 activation per step would add > 6 MB over 200 steps.
  assert.ok(rss1 - rss0 < 32e6, `resident memory grew by ${((rss1 - rss0) / 1e6).toFixed(1)} MB`);
  student.dispose();
  teacher.dispose();
});
