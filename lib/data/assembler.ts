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

/** Output buffers kept for reuse by a worker assembler. */
const MAX_SPARE = 4;

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
  #worker: Worker;
  #source: AssemblerSource;
  #size: number;
  #pending = new Map<number, { ticket: Ticket; plan: BatchPlan }>();
  #nextId = 0;
  #answered = false;
  #failure: Error | null = null;
  #fallback: InlineAssembler | null = null;
  #spare: SharedArrayBuffer[] = [];

  /**
   * Starts the worker. If it cannot start (its first answer never comes), batches are
   * assembled inline instead and {@link WorkerAssembler.kind} becomes `inline`.
   *
   * @example
   * ```ts
   * import { WorkerAssembler } from "./assembler.ts";
   * const a = new WorkerAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) });
   * await a.close();
   * ```
   */
  constructor(source: AssemblerSource, opts: { workerUrl?: URL } = {}) {
    this.#source = source;
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
    const url = opts.workerUrl ?? new URL("./assembler_worker.ts", import.meta.url);
    this.#worker = new Worker(url, { workerData: init });
    this.#worker.unref();
    this.#worker.on("message", (reply: AssemblerReply) => {
      this.#answered = true;
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#settled(reply.id);
      if (reply.error !== undefined) p.ticket.reject(new DataError(`batch assembly failed: ${reply.error}`));
      else p.ticket.ready();
    });
    this.#worker.on("error", (e: Error) => this.#lost(new DataError(`batch worker failed: ${e.message}`)));
    this.#worker.on("exit", () => this.#lost(new DataError("batch worker stopped")));
  }

  /**
   * `worker`, or `inline` after the worker could not start.
   *
   * @example
   * ```ts
   * import { WorkerAssembler } from "./assembler.ts";
   * const a = new WorkerAssembler({ images: new Uint8Array(1), shape: [1, 1, 1], padding: 0, table: new Float32Array(256) });
   * console.log(a.kind); // worker
   * await a.close();
   * ```
   */
  get kind(): "worker" | "inline" {
    return this.#fallback ? "inline" : "worker";
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
    if (this.#fallback) return this.#fallback.submit(plan);
    const values = plan.indices.length * this.#size;
    const bytes = outputBytes(values);
    // Reuse an output buffer the worker is done with (saves allocating and zeroing one per batch).
    const spare = this.#spare.findIndex((b) => b.byteLength === bytes);
    const output = spare >= 0 ? this.#spare.splice(spare, 1)[0] : new SharedArrayBuffer(bytes);
    const flag = readyFlag(output);
    Atomics.store(flag, 0, 0);
    // Copy out of the shared buffer (set() is a memcpy; slice() of a shared view is ~5x slower):
    // consumers get an ordinary Float32Array.
    const ticket = new Ticket(() => {
      if (Atomics.load(flag, 0) !== 1) return null;
      const x = new Float32Array(values);
      x.set(new Float32Array(output, 0, values));
      // Finished and copied: the worker never touches this buffer again.
      if (this.#spare.length < MAX_SPARE) this.#spare.push(output);
      return x;
    });
    if (this.#failure) {
      ticket.reject(this.#failure);
      return ticket;
    }
    const id = this.#nextId++;
    if (this.#pending.size === 0) this.#worker.ref(); // keep the process alive until it answers
    this.#pending.set(id, { ticket, plan });
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
    if (this.#fallback) await this.#fallback.close();
    if (this.#failure) return;
    this.#fail(new DataError("batch loader closed"));
    await this.#worker.terminate();
  }

  #settled(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker.unref();
  }

  /** The worker died: before its first answer it never worked here, so assemble inline. */
  #lost(e: Error): void {
    if (this.#failure || this.#fallback) return;
    if (this.#answered) return this.#fail(e);
    this.#fallback = new InlineAssembler(this.#source);
    const s = this.#source;
    for (const [id, { ticket, plan }] of this.#pending) {
      this.#settled(id);
      try {
        ticket.resolve(assembleBatch(s.images, s.shape, plan, s.padding, s.table));
      } catch (err) {
        ticket.reject(err as Error);
      }
    }
  }

  #fail(e: Error): void {
    if (this.#failure) return;
    this.#failure = e;
    for (const [id, { ticket }] of this.#pending) {
      this.#settled(id);
      if (ticket.ready() === null) ticket.reject(e);
    }
  }
}
