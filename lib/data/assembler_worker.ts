/**
 * Worker-thread side of {@link WorkerAssembler}: receives batch plans, assembles the float32
 * batches from the shared pixel buffer and transfers them back. It only acts when started as
 * the assembler's worker, so importing it elsewhere does nothing.
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
}

/** One reply: the batch or an error message. */
export interface AssemblerReply {
  /** Request id. */
  id: number;
  /** Buffer of the NCHW float32 batch (transferred). */
  x?: ArrayBuffer;
  /** Why it failed. */
  error?: string;
}

if (parentPort && (workerData as AssemblerWorkerInit | undefined)?.kind === ASSEMBLER_WORKER_KIND) {
  const port = parentPort;
  const init = workerData as AssemblerWorkerInit;
  const images = new Uint8Array(init.pixels.buffer, init.pixels.byteOffset, init.pixels.length);
  const table = Float32Array.from(init.table);
  port.on("message", (req: AssemblerRequest) => {
    try {
      const x = assembleBatch(images, init.shape, req.plan, init.padding, table);
      const buffer = x.buffer as ArrayBuffer;
      port.postMessage({ id: req.id, x: buffer } satisfies AssemblerReply, [buffer]);
    } catch (e) {
      port.postMessage({ id: req.id, error: String((e as Error)?.message ?? e) } satisfies AssemblerReply);
    }
  });
}
