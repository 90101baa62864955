/**
 * Where batches are assembled: on a worker thread (the training step never waits for pixel
 * work, even when it keeps the main thread busy) or inline on the main thread (deferred to a
 * macrotask, so it runs while the consumer awaits). Both give identical batches.
 *
 * @example
 * ```ts
 * import { createAssembler } from "./assembler.ts";
 * import { normalizationTable, planIdentity } from "./augment.ts";
 * const images = new Uint8Array(new SharedArrayBuffer(4)).fill(255);
 * const a = createAssembler({ images, shape: [1, 2, 2], padding: 4, table: normalizationTable([0], [1]) }, true);
 * console.log(await a.assemble(planIdentity(new Int32Array([0]), 4))); // Float32Array [1, 1, 1, 1]
 * await a.close();
 * ```
 * @module
 */

import { Worker } from "node:worker_threads";
import { assembleBatch, type BatchPlan } from "./augment.ts";
import { ASSEMBLER_WORKER_KIND, type AssemblerReply, type AssemblerWorkerInit } from "./assembler_worker.ts";
import { DataError } from "./dataset.ts";

/** What every batch of one split is assembled from. */
export interface AssemblerSource {
  /** The split's raw pixels (CHW per image). */
  images: Uint8Array;
  /** `[C, H, W]`. */
  shape: [number, number, number];
  /** Crop padding. */
  padding: number;
  /** Normalisation lookup table from `normalizationTable`. */
  table: Float32Array;
}

/** Turns batch plans into float32 batches. */
export interface Assembler {
  /** `worker` or `inline`. */
  readonly kind: "worker" | "inline";
  /** Assembles one batch. */
  assemble(plan: BatchPlan): Promise<Float32Array>;
  /** Stops the worker, if any. */
  close(): Promise<void>;
}

/**
 * A worker assembler when asked and possible, else an inline one.
 *
 * @example
 * ```ts
 * import { createAssembler } from "./assembler.ts";
 * import { normalizationTable } from "./augment.ts";
 * const a = createAssembler({ images: new Uint8Array(4), shape: [1, 2, 2], padding: 4, table: normalizationTable([0], [1]) }, false);
 * console.log(a.kind); // inline
 * await a.close();
 * ```
 */
export function createAssembler(source: AssemblerSource, useWorker: boolean): Assembler {
  if (useWorker) {
    try {
      return new WorkerAssembler(source);
    } catch {
      // Workers unavailable (e.g. a bundled build without the worker file): assemble inline.
    }
  }
  return new InlineAssembler(source);
}

/**
 * Assembles on the main thread in a macrotask.
 *
 * @example
 * ```ts
 * import { InlineAssembler } from "./assembler.ts";
 * import { normalizationTable, planIdentity } from "./augment.ts";
 * const a = new InlineAssembler({ images: new Uint8Array([0]), shape: [1, 1, 1], padding: 0, table: normalizationTable([0], [1]) });
 * console.log(await a.assemble(planIdentity(new Int32Array([0]), 0))); // Float32Array [0]
 * ```
 */
export class InlineAssembler implements Assembler {
  /** Always `inline`. */
  readonly kind = "inline" as const;
  #source: AssemblerSource;

  /**
   * @example
   * ```ts
   * import { InlineAssembler } from "./assembler.ts";
   * const a = new InlineAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) });
   * console.log(a.kind); // inline
   * ```
   */
  constructor(source: AssemblerSource) {
    this.#source = source;
  }

  /**
   * Assembles after the current task, so a prefetch does not delay the caller.
   *
   * @example
   * ```ts
   * import { InlineAssembler } from "./assembler.ts";
   * import { planIdentity } from "./augment.ts";
   * const a = new InlineAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) });
   * console.log((await a.assemble(planIdentity(new Int32Array([0]), 0))).length); // 1
   * ```
   */
  assemble(plan: BatchPlan): Promise<Float32Array> {
    const s = this.#source;
    return new Promise((resolve, reject) => {
      setTimeout(() => {
        try {
          resolve(assembleBatch(s.images, s.shape, plan, s.padding, s.table));
        } catch (e) {
          reject(e);
        }
      }, 0);
    });
  }

  /**
   * Nothing to release.
   *
   * @example
   * ```ts
   * import { InlineAssembler } from "./assembler.ts";
   * await new InlineAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) }).close();
   * ```
   */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Assembles on a worker thread that shares the pixels (SharedArrayBuffer; copied once if the
 * split is not on one). The worker does not keep the process alive while no batch is pending.
 *
 * @example
 * ```ts
 * import { WorkerAssembler } from "./assembler.ts";
 * import { normalizationTable, planIdentity } from "./augment.ts";
 * const a = new WorkerAssembler({ images: new Uint8Array([51]), shape: [1, 1, 1], padding: 0, table: normalizationTable([0], [1]) });
 * console.log(await a.assemble(planIdentity(new Int32Array([0]), 0))); // Float32Array [0.2]
 * await a.close();
 * ```
 */
export class WorkerAssembler implements Assembler {
  /** Always `worker`. */
  readonly kind = "worker" as const;
  #worker: Worker;
  #pending = new Map<number, { resolve: (x: Float32Array) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #failure: Error | null = null;

  /**
   * Starts the worker.
   *
   * @example
   * ```ts
   * import { WorkerAssembler } from "./assembler.ts";
   * const a = new WorkerAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) });
   * await a.close();
   * ```
   */
  constructor(source: AssemblerSource) {
    let images = source.images;
    if (!(images.buffer instanceof SharedArrayBuffer)) {
      images = new Uint8Array(new SharedArrayBuffer(images.length));
      images.set(source.images);
    }
    const init: AssemblerWorkerInit = {
      kind: ASSEMBLER_WORKER_KIND,
      pixels: {
        buffer: images.buffer as SharedArrayBuffer,
        byteOffset: images.byteOffset,
        length: images.length,
      },
      shape: source.shape,
      padding: source.padding,
      table: Array.from(source.table),
    };
    this.#worker = new Worker(new URL("./assembler_worker.ts", import.meta.url), { workerData: init });
    this.#worker.unref();
    this.#worker.on("message", (reply: AssemblerReply) => {
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#settled(reply.id);
      if (reply.x) p.resolve(new Float32Array(reply.x));
      else p.reject(new DataError(`batch assembly failed: ${reply.error}`));
    });
    this.#worker.on("error", (e: Error) => this.#fail(new DataError(`batch worker failed: ${e.message}`)));
    this.#worker.on("exit", () => this.#fail(new DataError("batch worker stopped")));
  }

  /**
   * Sends a plan to the worker.
   *
   * @example
   * ```ts
   * import { WorkerAssembler } from "./assembler.ts";
   * import { planIdentity } from "./augment.ts";
   * const a = new WorkerAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) });
   * console.log((await a.assemble(planIdentity(new Int32Array([0]), 0))).length); // 1
   * await a.close();
   * ```
   */
  assemble(plan: BatchPlan): Promise<Float32Array> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref(); // keep the process alive until it answers
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, plan });
    });
  }

  /**
   * Stops the worker; pending batches are rejected.
   *
   * @example
   * ```ts
   * import { WorkerAssembler } from "./assembler.ts";
   * const a = new WorkerAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) });
   * await a.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#failure) return;
    this.#fail(new DataError("batch loader closed"));
    await this.#worker.terminate();
  }

  #settled(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker.unref();
  }

  #fail(e: Error): void {
    if (this.#failure) return;
    this.#failure = e;
    for (const [id, p] of this.#pending) {
      this.#settled(id);
      p.reject(e);
    }
  }
}
