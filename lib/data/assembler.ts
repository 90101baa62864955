/**
 * Where batches are assembled: on a worker thread (the training step never waits for pixel
 * work, even when it keeps the main thread busy) or inline on the main thread (deferred to a
 * macrotask, so it runs while the consumer awaits). Both give identical batches. A submitted
 * plan yields a {@link BatchTicket}: `ready()` hands over a finished batch synchronously (the
 * worker raises a shared flag, so no event-loop turn is needed), `done` waits for it.
 *
 * @example
 * ```ts
 * import { createAssembler } from "./assembler.ts";
 * import { normalizationTable, planIdentity } from "./augment.ts";
 * const images = new Uint8Array(new SharedArrayBuffer(4)).fill(255);
 * const a = createAssembler({ images, shape: [1, 2, 2], padding: 4, table: normalizationTable([0], [1]) }, true);
 * console.log(await a.submit(planIdentity(new Int32Array([0]), 4)).done); // Float32Array [1, 1, 1, 1]
 * await a.close();
 * ```
 * @module
 */

import { Worker } from "node:worker_threads";
import { assembleBatch, type BatchPlan } from "./augment.ts";
import {
  ASSEMBLER_WORKER_KIND,
  type AssemblerReply,
  type AssemblerRequest,
  type AssemblerWorkerInit,
  outputBytes,
  readyFlag,
} from "./assembler_worker.ts";
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

/** A batch being assembled. */
export interface BatchTicket {
  /** The batch when it is already assembled (taken without waiting), else null. */
  ready(): Float32Array | null;
  /** Resolves with the batch (rejects when assembly failed or the assembler was closed). */
  readonly done: Promise<Float32Array>;
}

/** Turns batch plans into float32 batches. */
export interface Assembler {
  /** `worker` or `inline`. */
  readonly kind: "worker" | "inline";
  /** Starts assembling one batch. */
  submit(plan: BatchPlan): BatchTicket;
  /** Stops the worker, if any; pending batches are rejected. */
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

/** A settable promise with the value kept for synchronous access. */
class Ticket implements BatchTicket {
  readonly done: Promise<Float32Array>;
  value: Float32Array | null = null;
  resolve!: (x: Float32Array) => void;
  reject!: (e: Error) => void;

  constructor(readonly take: () => Float32Array | null) {
    this.done = new Promise((res, rej) => {
      this.resolve = (x) => {
        this.value = x;
        res(x);
      };
      this.reject = rej;
    });
    this.done.catch(() => {}); // a dropped ticket must not surface as an unhandled rejection
  }

  ready(): Float32Array | null {
    if (this.value === null) {
      const x = this.take();
      if (x !== null) this.resolve(x);
    }
    return this.value;
  }
}

/**
 * Assembles on the main thread: in a macrotask after submission, or at once when the batch is
 * asked for first.
 *
 * @example
 * ```ts
 * import { InlineAssembler } from "./assembler.ts";
 * import { normalizationTable, planIdentity } from "./augment.ts";
 * const a = new InlineAssembler({ images: new Uint8Array([0]), shape: [1, 1, 1], padding: 0, table: normalizationTable([0], [1]) });
 * console.log(a.submit(planIdentity(new Int32Array([0]), 0)).ready()); // Float32Array [0]
 * ```
 */
export class InlineAssembler implements Assembler {
  /** Always `inline`. */
  readonly kind = "inline" as const;
  #source: AssemblerSource;
  #closed = false;

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
   * Schedules the assembly after the current task, so a prefetch does not delay the caller.
   *
   * @example
   * ```ts
   * import { InlineAssembler } from "./assembler.ts";
   * import { planIdentity } from "./augment.ts";
   * const a = new InlineAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) });
   * console.log((await a.submit(planIdentity(new Int32Array([0]), 0)).done).length); // 1
   * ```
   */
  submit(plan: BatchPlan): BatchTicket {
    const s = this.#source;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ticket = new Ticket(() => {
      clearTimeout(timer);
      return assembleBatch(s.images, s.shape, plan, s.padding, s.table);
    });
    if (this.#closed) ticket.reject(new DataError("batch loader closed"));
    else {
      timer = setTimeout(() => {
        try {
          ticket.ready();
        } catch (e) {
          ticket.reject(e as Error);
        }
      }, 0);
    }
    return ticket;
  }

  /**
   * Later submissions are rejected.
   *
   * @example
   * ```ts
   * import { InlineAssembler } from "./assembler.ts";
   * await new InlineAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) }).close();
   * ```
   */
  close(): Promise<void> {
    this.#closed = true;
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
 * console.log(await a.submit(planIdentity(new Int32Array([0]), 0)).done); // Float32Array [0.2]
 * await a.close();
 * ```
 */
export class WorkerAssembler implements Assembler {
  /** Always `worker`. */
  readonly kind = "worker" as const;
  #worker: Worker;
  #size: number;
  #pending = new Map<number, Ticket>();
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
    this.#size = source.shape[0] * source.shape[1] * source.shape[2];
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
      const ticket = this.#pending.get(reply.id);
      if (!ticket) return;
      this.#settled(reply.id);
      if (reply.error !== undefined) ticket.reject(new DataError(`batch assembly failed: ${reply.error}`));
      else ticket.ready();
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
   * console.log((await a.submit(planIdentity(new Int32Array([0]), 0)).done).length); // 1
   * await a.close();
   * ```
   */
  submit(plan: BatchPlan): BatchTicket {
    const values = plan.indices.length * this.#size;
    const output = new SharedArrayBuffer(outputBytes(values));
    const flag = readyFlag(output);
    // Copy out of the shared buffer (set() is a memcpy; slice() of a shared view is ~5x slower):
    // consumers get an ordinary Float32Array.
    const ticket = new Ticket(() => {
      if (Atomics.load(flag, 0) !== 1) return null;
      const x = new Float32Array(values);
      x.set(new Float32Array(output, 0, values));
      return x;
    });
    if (this.#failure) {
      ticket.reject(this.#failure);
      return ticket;
    }
    const id = this.#nextId++;
    if (this.#pending.size === 0) this.#worker.ref(); // keep the process alive until it answers
    this.#pending.set(id, ticket);
    this.#worker.postMessage({ id, plan, output } satisfies AssemblerRequest);
    return ticket;
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
    for (const [id, ticket] of this.#pending) {
      this.#settled(id);
      if (ticket.ready() === null) ticket.reject(e);
    }
  }
}
