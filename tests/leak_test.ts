/**
 * No leaks: over 200 training steps of a small model (with an oracle teacher), the engine's live
 * tensor count stays exactly flat and resident memory stops growing, on the default engine
 * (onnxruntime) and on tfjs-wasm.
 *
 * Resident memory is judged after a warm-up, in windows: allocators and the wasm heap grow in
 * chunks, early on and now and then later (12-20 MB once in 30 windows of 80 onnxruntime steps,
 * measured on both sides of this test's last change, then flat again), but a real leak grows in
 * every window. So the training test takes the smallest growth of four 40-step windows: leaking
 * one 8x16x16x16 activation per step would add about 5 MB to each.
 */
import assert from "node:assert/strict";
import { createEngine, type EngineChoice } from "../lib/engines/registry.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { initStateDict } from "../lib/models/init.ts";
import { Rng } from "../lib/rng.ts";
import { exportOnnx } from "../convert/onnx_export.ts";
import { importOnnx } from "../convert/onnx_import.ts";

const ENGINES: (EngineChoice & { label: string })[] = [
  { engine: "onnxruntime", label: "onnxruntime" },
  { engine: "tfjs", backend: "wasm", label: "tfjs-wasm" },
];

for (const choice of ENGINES) {
  Deno.test(`200 training steps with an oracle teacher do not leak (${choice.label})`, async () => {
    const engine = await createEngine(choice);
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
    const steps = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const t = (await teacher.oracle(batch, { gamma: 0.5, recNum: 1, reduction: "mean" })).logits;
        await student.trainStep(batch, t, { ceWeight: 0.5, alpha: 1, temperature: 2 }, 0.01);
      }
    };
    await steps(40); // warm-up: sessions, caches, lazily built kernels
    const tensors0 = engine.liveTensors();
    const windows: number[] = [];
    for (let w = 0; w < 4; w++) {
      const before = Deno.memoryUsage().rss;
      await steps(40);
      windows.push((Deno.memoryUsage().rss - before) / 1e6);
    }
    const tensors1 = engine.liveTensors();
    assert.equal(tensors1, tensors0, `live tensors grew from ${tensors0} to ${tensors1}`);
    const least = Math.min(...windows);
    assert.ok(
      least < 4,
      `resident memory grew in every 40-step window (${windows.map((g) => g.toFixed(1)).join(", ")} MB)`,
    );
    student.dispose();
    teacher.dispose();
  });
}

for (const choice of ENGINES) {
  Deno.test(`eval forwards of an imported (BatchNorm-folded, conv-with-bias) network do not leak (${choice.label})`, async () => {
    const engine = await createEngine(choice);
    const g = buildModel("resnet8", { numClasses: 10 });
    const imported = importOnnx(exportOnnx(g, initStateDict(g, 0), { imageSize: 16 }), "resnet8.onnx");
    const model = await engine.loadFrozen(imported.graph, imported.weights);
    const n = 16, pix = 3 * 16 * 16;
    const rng = new Rng(1);
    const batch = {
      x: Float32Array.from({ length: n * pix }, () => rng.normal()),
      n,
      shape: [3, 16, 16] as const,
    };
    for (let i = 0; i < 20; i++) await model.forward(batch);
    const tensors0 = engine.liveTensors();
    for (let i = 0; i < 100; i++) await model.forward(batch);
    const rssMid = Deno.memoryUsage().rss;
    for (let i = 0; i < 100; i++) await model.forward(batch);
    const grew = (Deno.memoryUsage().rss - rssMid) / 1e6;
    assert.equal(engine.liveTensors(), tensors0, "live tensors grew");
    assert.ok(grew < 8, `resident memory grew by ${grew.toFixed(1)} MB over the last 100 forwards`);
    model.dispose();
  });
}
