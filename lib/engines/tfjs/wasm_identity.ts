/**
 * A buffer-sharing `Identity` for the wasm backend. tfjs clones every tensor it saves for a
 * gradient (and every same-dtype cast); the stock wasm `Identity` copies the data each time,
 * while sharing the buffer by reference count, as the cpu backend does, is free and safe
 * because tfjs never writes into a kernel's inputs.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * const tf = await initTfjs("wasm"); // registers the kernel
 * const x = tf.tensor1d([1, 2]);
 * const before = tf.memory().numBytes;
 * const y = tf.clone(x);
 * console.log(tf.memory().numBytes === before, Array.from(y.dataSync())); // true [1, 2]
 * ```
 * @module
 */

import type { TfjsWasmBackend, TfKernelConfig } from "../../deps.ts";

/**
 * Kernel registration record of the buffer-sharing wasm `Identity`.
 *
 * @example
 * ```ts
 * import { identityConfig } from "./wasm_identity.ts";
 * console.log(identityConfig().kernelName); // Identity
 * ```
 */
export function identityConfig(): TfKernelConfig {
  return {
    kernelName: "Identity",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x!;
      (backend as unknown as TfjsWasmBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    },
  };
}
