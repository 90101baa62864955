/**
 * Project kernels for the tfjs wasm backend (placeholder registration point; filled in by the
 * kernel work).
 * @module
 */
import type { Tf } from "../../deps.ts";

/**
 * Registers the project's training kernels on the `wasm` backend.
 *
 * @example
 * ```ts
 * import { registerWasmTrainingKernels } from "./wasm_kernels.ts";
 * console.log(typeof registerWasmTrainingKernels); // function
 * ```
 */
export function registerWasmTrainingKernels(_tf: Tf): void {}
