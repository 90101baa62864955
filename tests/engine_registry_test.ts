/**
 * Engine selection: names and backends resolve, unknown ones are refused with the valid set, the
 * `tensorflow` backend without tfjs-node(-gpu) installed says how to install it, and auto
 * (webgpu on a hardware GPU, else onnxruntime; tests/webgpu_choice_test.ts) is the default engine
 * of the configuration.
 */
import assert from "node:assert/strict";
import { DISTILL_DEFAULTS } from "../lib/config.ts";
import { createEngine, teacherEngineChoice } from "../lib/engines/registry.ts";

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

Deno.test("an LRP teacher runs on tfjs-wasm unless tfjs was chosen; grad-input keeps the choice", () => {
  const ort = { engine: "onnxruntime" } as const;
  assert.equal(teacherEngineChoice(ort, "grad-input"), ort);
  assert.equal(teacherEngineChoice(ort), ort);
  assert.deepEqual(teacherEngineChoice(ort, "lrp-gamma"), { engine: "tfjs", backend: "wasm" });
  const cpu = { engine: "tfjs", backend: "cpu" } as const;
  assert.equal(teacherEngineChoice(cpu, "lrp-epsilon"), cpu);
});
