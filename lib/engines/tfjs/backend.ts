/**
 * Selects and initialises a tfjs backend: `wasm` (default on CPU, XNNPACK convolutions plus the
 * project's training kernels), `cpu` (pure JS reference), `tensorflow` (tfjs-node-gpu, then
 * tfjs-node, when the user installed them), or `webgpu` (any GPU Deno's WebGPU sees; the engine
 * registry calls it engine `webgpu`, see webgpu_backend.ts).
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * const tf = await initTfjs("cpu");
 * console.log(tf.getBackend()); // cpu
 * ```
 * @module
 */

import {
  loadTfjsCore,
  loadTfjsCpuBackend,
  loadTfjsNative,
  loadTfjsWasmBackend,
  type Tf,
} from "../../deps.ts";
import { registerWasmTrainingKernels } from "./wasm_kernels.ts";
import { installThreadedWasmBackend } from "./wasm_threads.ts";
import { installWebgpuBackend } from "./webgpu_backend.ts";
import { registerWebgpuConvGradient } from "./webgpu_conv_grad.ts";

/** tfjs backends of `--engine tfjs --backend <name>` (WebGPU is its own engine, `webgpu`). */
export const TFJS_BACKENDS = ["wasm", "cpu", "tensorflow"] as const;
/** A tfjs backend name: one of {@link TFJS_BACKENDS}, or `webgpu` (engine `webgpu`). */
export type TfjsBackendName = typeof TFJS_BACKENDS[number] | "webgpu";

/** Options of {@link initTfjs}. */
export interface TfjsInitOptions {
  /** `webgpu` only: accept a software adapter (llvmpipe, SwiftShader); default from the environment. */
  allowSoftwareAdapter?: boolean;
}

/** Thrown when the `tensorflow` backend is asked for but no native tfjs package is installed. */
export class BackendUnavailableError extends Error {
  /** Error name. */
  override name = "BackendUnavailableError";
}

/**
 * Loads tfjs-core, makes `backend` the active backend and returns the tfjs namespace.
 * Safe to call repeatedly; switching backends is allowed (tensors do not move between them).
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * const tf = await initTfjs("wasm");
 * console.log(tf.getBackend()); // wasm
 * ```
 */
export async function initTfjs(backend: TfjsBackendName = "wasm", opts: TfjsInitOptions = {}): Promise<Tf> {
  const tf = await loadTfjsCore();
  // PROD silences tfjs's console banners ("install tfjs-node") and skips debug-only checks.
  tf.env().set("PROD", true);
  // The adapter is judged on every request: a software adapter needs its own permission each time.
  if (backend === "webgpu") await installWebgpuBackend(tf, { allowSoftware: opts.allowSoftwareAdapter });
  if (tf.getBackend() === backend) return tf;
  switch (backend) {
    case "cpu":
      await loadTfjsCpuBackend();
      break;
    case "wasm": {
      const wasm = await loadTfjsWasmBackend();
      // Registered before the backend starts so every run sees the project kernels.
      registerWasmTrainingKernels(tf);
      installThreadedWasmBackend(tf, wasm);
      break;
    }
    case "tensorflow":
      try {
        await quietly(loadTfjsNative);
      } catch (e) {
        throw new BackendUnavailableError(
          "tfjs backend 'tensorflow' needs @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node " +
            "(CPU), which download libtensorflow when installed. Install one where its binary host is " +
            "reachable, e.g. `deno install --allow-scripts=npm:@tensorflow/tfjs-node-gpu " +
            "npm:@tensorflow/tfjs-node-gpu@4.22.0`, or use --backend wasm. Cause: " +
            String((e as Error).message ?? e).split("\n")[0],
        );
      }
      break;
    case "webgpu":
      // The backend itself was registered above; the weight gradient of convolutions is ours.
      registerWebgpuConvGradient(tf);
      break;
    default:
      throw new Error(`unknown tfjs backend "${backend}"; choose one of ${TFJS_BACKENDS.join(", ")}`);
  }
  const ok = await tf.setBackend(backend);
  if (!ok) throw new BackendUnavailableError(`tfjs backend '${backend}' failed to initialise`);
  await tf.ready();
  return tf;
}

/** Runs `f` with console.warn muted: a failed native load re-registers kernels noisily. */
async function quietly<T>(f: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return await f();
  } finally {
    console.warn = warn;
  }
}
