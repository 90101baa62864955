/**
 * Worker-thread side of the worker assembler: receives batch plans, writes each float32 batch
 * into the request's shared output buffer, raises the buffer's ready flag (so the main thread
 * can take the batch without an event-loop turn) and then replies. It only acts when started
 * as the assembler's worker, so importing it elsewhere does nothing.
 *
 * @example
 * ```ts
 * import { ASSEMBLER_WORKER_KIND } from "./assembler_worker.ts";
 * console.log(ASSEMBLER_WORKER_KIND); // oracle-kd-batch-assembler
 * ```
 * @module
 */

import { parentPort, workerData } from "node:worker_threads";
import { assembleBatch, type BatchPlan } from "./augment.ts";

/** Marker in `workerData` that tells this module it runs as the assembler worker. */
export const ASSEMBLER_WORKER_KIND = "oracle-kd-batch-assembler";

/** What the worker is started with. */
export interface AssemblerWorkerInit {
  /** {@link ASSEMBLER_WORKER_KIND}. */
  kind: typeof ASSEMBLER_WORKER_KIND;
  /**
   * The split's pixels: a SharedArrayBuffer and the view's offset and length. (Typed arrays in
   * `workerData` are walked element by element by Deno's worker_threads; a bare buffer is not.)
   */
  pixels: { buffer: SharedArrayBuffer; byteOffset: number; length: number };
  /** `[C, H, W]`. */
  shape: [number, number, number];
  /** Crop padding. */
  padding: number;
  /** Normalisation lookup table (as a plain array, for the same reason). */
  table: number[];
}

/** One request. */
export interface AssemblerRequest {
  /** Request id, echoed in the reply. */
  id: number;
  /** What to assemble. */
  plan: BatchPlan;
  /**
   * Output: `n * C * H * W` float32 values, then one int32 ready flag that the worker sets to 1
   * (with `Atomics.store`) once the values are written.
   */
  output: SharedArrayBuffer;
}

/** One reply: done, or an error message. */
export interface AssemblerReply {
  /** Request id. */
  id: number;
  /** Why it failed. */
  error?: string;
}

/**
 * Bytes of a request's output buffer for `values` float32 values plus the ready flag.
 *
 * @example
 * ```ts
 * import { outputBytes } from "./assembler_worker.ts";
 * console.log(outputBytes(3)); // 16
 * ```
 */
export function outputBytes(values: number): number {
  return values * 4 + 4;
}

/**
 * The ready flag of an output buffer (last int32).
 *
 * @example
 * ```ts
 * import { outputBytes, readyFlag } from "./assembler_worker.ts";
 * console.log(readyFlag(new SharedArrayBuffer(outputBytes(2)))[0]); // 0
 * ```
 */
export function readyFlag(output: SharedArrayBuffer): Int32Array {
  return new Int32Array(output, output.byteLength - 4, 1);
}

if (parentPort && (workerData as AssemblerWorkerInit | undefined)?.kind === ASSEMBLER_WORKER_KIND) {
  const port = parentPort;
  const init = workerData as AssemblerWorkerInit;
  const images = new Uint8Array(init.pixels.buffer, init.pixels.byteOffset, init.pixels.length);
  const table = Float32Array.from(init.table);
  port.on("message", (req: AssemblerRequest) => {
    try {
      const values = (req.output.byteLength - 4) / 4;
      assembleBatch(
        images,
        init.shape,
        req.plan,
        init.padding,
        table,
        new Float32Array(req.output, 0, values),
      );
      Atomics.store(readyFlag(req.output), 0, 1);
      port.postMessage({ id: req.id } satisfies AssemblerReply);
    } catch (e) {
      port.postMessage({ id: req.id, error: String((e as Error)?.message ?? e) } satisfies AssemblerReply);
    }
  });
}
