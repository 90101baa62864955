/**
 * Engines the parity tests run on: every engine must pass the same tests. The `webgpu` engine
 * runs on whatever adapter Deno's WebGPU offers, a software one (Mesa's llvmpipe) included: the
 * tests opt in explicitly. Without any adapter its tests are reported as ignored, saying why.
 * @module
 */
import type { EngineChoice } from "../lib/engines/registry.ts";
import { probeWebgpuAdapter } from "../lib/engines/tfjs/webgpu_backend.ts";

/** A labelled engine choice. */
export interface LabelledChoice extends EngineChoice {
  /** Test name suffix. */
  label: string;
  /** Why this engine cannot run here (its tests are then ignored, with this in their names). */
  ignore?: string;
}

const probe = await probeWebgpuAdapter();

/** The webgpu engine on any adapter, software included; `ignore` says why when there is none. */
export const WEBGPU_ENGINE: LabelledChoice = {
  engine: "webgpu",
  allowSoftwareAdapter: true,
  label: probe.adapter?.info && probe.software ? "webgpu, software adapter" : "webgpu",
  ignore: probe.adapter
    ? undefined
    : `no WebGPU adapter: ${probe.description}; install mesa-vulkan-drivers and libvulkan1`,
};

/** Deno.test options for an engine's test: the name, plus the reason when it cannot run here. */
export function engineTest(name: string, choice: LabelledChoice): { name: string; ignore: boolean } {
  return { name: choice.ignore ? `${name} [${choice.ignore}]` : name, ignore: choice.ignore !== undefined };
}

/** Engines under parity test (`cpu` is the slow pure-JS reference and is exercised elsewhere). */
export const PARITY_ENGINES: LabelledChoice[] = [
  { engine: "tfjs", backend: "wasm", label: "tfjs-wasm" },
  { engine: "tfjs", backend: "cpu", label: "tfjs-cpu" },
  { engine: "onnxruntime", label: "onnxruntime" },
  WEBGPU_ENGINE,
];

/** Engines under the oracle parity test (forward and input gradients only). */
export const ORACLE_ENGINES: LabelledChoice[] = [
  { engine: "onnxruntime", label: "onnxruntime" },
  { engine: "tfjs", backend: "wasm", label: "tfjs-wasm" },
  WEBGPU_ENGINE,
];
