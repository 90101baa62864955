/**
 * Choosing the GPU: `--engine auto` takes webgpu only on a hardware adapter (never a software
 * one such as llvmpipe) and otherwise onnxruntime on the CPU, saying which and why in one line;
 * `--engine webgpu` without a usable adapter is one error line naming what to install (a software
 * adapter only with the explicit opt-in); `test --device webgpu` runs onnxruntime's WebGPU
 * provider or fails in one line, and `--device auto` falls back to the CPU with a one-line reason.
 *
 * On this project's CI machine Deno's only adapter is Mesa's llvmpipe: the hardware branches are
 * checked where a GPU exists, the software and no-adapter branches here (no adapter is simulated
 * by pointing the Vulkan loader at a missing driver).
 */
import assert from "node:assert/strict";
import { createEngine, resolveEngineChoice } from "../lib/engines/registry.ts";
import {
  isSoftwareAdapter,
  probeWebgpuAdapter,
  WEBGPU_ALLOW_SOFTWARE_ENV,
  WebgpuUnavailableError,
} from "../lib/engines/tfjs/webgpu_backend.ts";
import { OnnxClassifier, WebgpuProviderUnavailableError } from "../app/onnx_classifier.ts";
import { assertOneLineError, CLI, type Run } from "./cli_utils.ts";

const probe = await probeWebgpuAdapter();
const hardware = probe.adapter !== null && !probe.software;
const MODEL = new URL("./fixtures/onnx/resnet8_opset13.onnx", import.meta.url).pathname;

/** Runs cli.ts with extra environment variables. */
async function runCliEnv(args: string[], env: Record<string, string>): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: Deno.makeTempDirSync({ prefix: "okd_webgpu_" }),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Deno with no WebGPU adapter at all: Vulkan only, and the Vulkan loader finds no driver. */
const NO_ADAPTER = { DENO_WEBGPU_BACKEND: "vulkan", VK_ICD_FILENAMES: "/nonexistent/icd.json" };

/** Drops Deno's harmless "XDG_RUNTIME_DIR is invalid" lines (printed where no display exists). */
function withoutXdg(r: Run): Run {
  return { ...r, stderr: r.stderr.split("\n").filter((l) => !/XDG_RUNTIME_DIR/.test(l)).join("\n") };
}

Deno.test("software adapters are told from hardware ones by flag and by name", () => {
  assert.ok(isSoftwareAdapter({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }));
  assert.ok(isSoftwareAdapter({ description: "SwiftShader Device (Subzero)" }));
  assert.ok(isSoftwareAdapter({ description: "" }, true), "adapter.isFallbackAdapter");
  assert.ok(isSoftwareAdapter({ description: "", isFallbackAdapter: true }), "info.isFallbackAdapter");
  assert.ok(!isSoftwareAdapter({ description: "NVIDIA H100 80GB HBM3", vendor: "4318" }));
  assert.ok(!isSoftwareAdapter({ description: "AMD Radeon RX 7900 XTX (RADV NAVI31)", vendor: "4098" }));
});

Deno.test("engine auto: webgpu only on a hardware adapter, else onnxruntime on the CPU, in one line", async () => {
  const lines: string[] = [];
  const engine = await createEngine({ engine: "auto", threads: 1, onChoice: (l) => lines.push(l) });
  assert.equal(lines.length, 1);
  assert.ok(!lines[0].includes("\n"));
  if (hardware) {
    assert.equal(engine.name, "webgpu");
    assert.match(lines[0], /^engine auto: webgpu on the hardware WebGPU adapter /);
    return;
  }
  assert.match(engine.name, /^onnxruntime/);
  assert.match(
    lines[0],
    probe.adapter
      ? /^engine auto: onnxruntime on the CPU, because the only WebGPU adapter is a software one \(.+\)$/
      : /^engine auto: onnxruntime on the CPU, because no WebGPU adapter \(.+\)$/,
  );
  // The software adapter is never taken by auto, even with the explicit opt-in set for webgpu.
  const { choice } = await resolveEngineChoice({ engine: "auto", allowSoftwareAdapter: true });
  assert.equal(choice.engine, "onnxruntime");
});

Deno.test({
  name: "engine webgpu on a software adapter needs the explicit opt-in" +
    (probe.adapter && probe.software ? "" : " [needs a software adapter only; this machine has none]"),
  ignore: !(probe.adapter && probe.software),
  fn: async () => {
    await assert.rejects(
      createEngine({ engine: "webgpu", allowSoftwareAdapter: false }),
      (e: unknown) => {
        assert.ok(e instanceof WebgpuUnavailableError);
        assert.ok(!e.message.includes("\n"));
        assert.match(e.message, /only WebGPU adapter is a software one \(llvmpipe|software/);
        assert.match(e.message, /libvulkan1/);
        assert.match(e.message, new RegExp(`${WEBGPU_ALLOW_SOFTWARE_ENV}=1`));
        return true;
      },
    );
    const engine = await createEngine({ engine: "webgpu", allowSoftwareAdapter: true });
    assert.equal(engine.name, "webgpu");
    // The CLI: one error line, naming what to install and the opt-in.
    const r = withoutXdg(
      await runCliEnv(["distill", "--data", "synthetic", "--engine", "webgpu", "--epochs", "1"], {
        [WEBGPU_ALLOW_SOFTWARE_ENV]: "",
      }),
    );
    assertOneLineError(r, /engine webgpu: the only WebGPU adapter is a software one .*libvulkan1/);
  },
});

Deno.test("engine webgpu without any adapter: one error line naming what to install", async () => {
  const r = withoutXdg(
    await runCliEnv(["distill", "--data", "synthetic", "--engine", "webgpu", "--epochs", "1"], NO_ADAPTER),
  );
  assertOneLineError(
    r,
    /^error: engine webgpu: no WebGPU adapter found; install .*libvulkan1.*--engine onnxruntime/,
  );
  // auto in the same situation picks onnxruntime and says why.
  const registry = new URL("../lib/engines/registry.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const { resolveEngineChoice } = await import("${registry}");` +
      `console.log((await resolveEngineChoice({ engine: "auto" })).reason);`,
    ],
    env: NO_ADAPTER,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(
    new TextDecoder().decode(out.stdout).trim(),
    "engine auto: onnxruntime on the CPU, because no WebGPU adapter (no WebGPU adapter found)",
  );
});

Deno.test("test --device webgpu: onnxruntime's WebGPU provider, or one error line; auto falls back with a reason", async () => {
  const auto = await OnnxClassifier.open(MODEL, "auto", 1);
  try {
    if (auto.device === "cpu") {
      assert.ok(auto.fallbackReason, "a reason");
      assert.ok(!auto.fallbackReason!.includes("\n"));
      assert.match(auto.fallbackReason!, /CUDA unavailable \(.+\); WebGPU/);
      if (!hardware) assert.match(auto.fallbackReason!, /WebGPU: no hardware adapter \(/);
    }
  } finally {
    await auto.close();
  }
  if (hardware) {
    // A real GPU: the provider runs and gives the CPU's logits.
    const gpu = await OnnxClassifier.open(MODEL, "webgpu");
    const cpu = await OnnxClassifier.open(MODEL, "cpu", 1);
    const x = Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i));
    const [a, b] = [await gpu.run(x, 2, [3, 32, 32]), await cpu.run(x, 2, [3, 32, 32])];
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) < 1e-3, `logit ${i}: ${a[i]} vs ${b[i]}`);
    }
    await gpu.close();
    await cpu.close();
    return;
  }
  await assert.rejects(OnnxClassifier.open(MODEL, "webgpu"), (e: unknown) => {
    assert.ok(e instanceof WebgpuProviderUnavailableError);
    assert.ok(!e.message.includes("\n"));
    assert.match(
      e.message,
      /^WebGPU execution provider unavailable \(no hardware WebGPU adapter: .+\); install .*libvulkan1.*--device cpu/,
    );
    return true;
  });
  const r = withoutXdg(
    await runCliEnv(["test", "--model", MODEL, "--data", "synthetic", "--device", "webgpu"], {}),
  );
  assertOneLineError(r, /^error: WebGPU execution provider unavailable .*libvulkan1/);
});
