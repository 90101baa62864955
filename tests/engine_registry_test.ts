/**
 * Engine selection: names and backends resolve, unknown ones are refused with the valid set, the
 * `tensorflow` backend without tfjs-node(-gpu) installed says how to install it, and auto
 * (webgpu on a hardware GPU, else onnxruntime; tests/webgpu_choice_test.ts) is the default engine
 * of the configuration, and no relevance rule forces an engine.
 */
import assert from "node:assert/strict";
import { DISTILL_DEFAULTS } from "../lib/config.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";

Deno.test("engines resolve by name; unknown engines and backends list the valid ones", async () => {
  const ort = await createEngine({ engine: "onnxruntime", threads: 1 });
  assert.match(ort.name, /^onnxruntime/);
  const cpu = await createEngine({ engine: "tfjs", backend: "cpu" });
  assert.equal(cpu.name, "tfjs-cpu");
  await assert.rejects(
    createEngine({ engine: "torch" as "tfjs" }),
    /unknown engine "torch"; choose one of tfjs, onnxruntime, webgpu, auto/,
  );
  await assert.rejects(
    createEngine({ engine: "tfjs", backend: "webgpu" as "wasm" }),
    /unknown tfjs backend "webgpu"; choose one of wasm, cpu, tensorflow \(WebGPU is --engine webgpu\)/,
  );
});

Deno.test("the tensorflow backend without tfjs-node(-gpu) fails with how to install it", async () => {
  let native = false;
  try {
    await createEngine({ engine: "tfjs", backend: "tensorflow" });
    native = true; // a machine where the user installed tfjs-node(-gpu): nothing to check
  } catch (e) {
    const msg = (e as Error).message;
    assert.match(msg, /@tensorflow\/tfjs-node-gpu/);
    assert.match(msg, /deno install --allow-scripts=npm:@tensorflow\/tfjs-node-gpu/);
    assert.match(msg, /--backend wasm/);
  }
  if (native) console.log("tfjs-node(-gpu) is installed here; the error path was not exercised");
});

Deno.test("auto is the default engine, tfjs-wasm the default tfjs backend", () => {
  assert.equal(DISTILL_DEFAULTS.engine, "auto");
  assert.equal(DISTILL_DEFAULTS.backend, "wasm");
});

Deno.test("a relevance rule does not choose the engine: onnxruntime runs LRP teachers itself", async () => {
  const registry = await import("../lib/engines/registry.ts");
  assert.equal("teacherEngineChoice" in registry, false);
  const ort = await createEngine({ engine: "onnxruntime", threads: 1 });
  const g = buildModel("resnet8", { numClasses: 10 });
  const teacher = await ort.loadFrozen(g, initStateDict(g, 0));
  try {
    const batch = {
      x: new Float32Array(2 * 3 * 8 * 8).fill(0.5),
      y: new Int32Array([1, 2]),
      n: 2,
      shape: [3, 8, 8] as const,
    };
    for (const relevance of ["lrp-epsilon", "lrp-gamma", "lrp-zplus"] as const) {
      const r = await teacher.oracle(batch, { gamma: 0.5, recNum: 1, reduction: "mean", relevance }, true);
      assert.equal(r.logits.length, 20);
      assert.ok(r.xStar!.every(Number.isFinite), relevance);
    }
  } finally {
    teacher.dispose();
  }
});
