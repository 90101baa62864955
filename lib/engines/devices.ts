/**
 * Where an exported ONNX classifier runs (onnxruntime's execution providers), as one closed set.
 *
 * @example
 * ```ts
 * import { DEVICES } from "./devices.ts";
 * console.log(DEVICES.join("|")); // cpu|cuda|webgpu|auto
 * ```
 * @module
 */

/** Where a classifier can run (`auto`: CUDA, else WebGPU on a hardware adapter, else the CPU). */
export const DEVICES = ["cpu", "cuda", "webgpu", "auto"] as const;
/** Where to run. */
export type Device = typeof DEVICES[number];
