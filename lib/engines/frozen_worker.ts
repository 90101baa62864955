/**
 * A {@link FrozenModel} that runs in its own Worker thread with its own engine instance, so a
 * teacher's response can be computed while the student's step runs on the main thread
 * (onnxruntime-node runs each session synchronously on the calling thread: two sessions on one
 * JS thread never overlap). Batches cross without copies: the image buffer is transferred to
 * the worker and transferred back with the results, so while a call is in flight `batch.x` is
 * detached, and when it settles `batch.x` is again a Float32Array with the same values (a batch
 * may be in one call at a time). Results equal the in-thread model's bitwise at equal threads.
 *
 * @example
 * ```ts
 * import { loadFrozenInWorker } from "./frozen_worker.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = await loadFrozenInWorker({ engine: "onnxruntime", threads: 1 }, g, initStateDict(g, 0));
 * const batch = { x: new Float32Array(2 * 3 * 32 * 32).fill(0.5), n: 2, shape: [3, 32, 32] as const };
 * console.log((await net.forward(batch)).length, batch.x.length, net.concurrent); // 20 6144 true
 * net.dispose();
 * ```
 * @module
 */

import type { Graph } from "../graph.ts";
import type { StateDict } from "../tensor.ts";
import type {
  FrozenModel,
  GradReduction,
  ImageBatch,
  LabelledBatch,
  OracleOptions,
  OracleOutputs,
  OracleResult,
} from "./engine.ts";
import {
  FROZEN_WORKER_KIND,
  type FrozenWorkerCall,
  type FrozenWorkerInit,
  type FrozenWorkerReply,
  ownsBuffer,
} from "./frozen_worker_entry.ts";
import type { EngineChoice } from "./registry.ts";

/** Thrown by calls on a worker that failed or was disposed. */
export class FrozenWorkerError extends Error {
  /** Error name. */
  override name = "FrozenWorkerError";
}

interface Pending {
  batch: ImageBatch;
  resolve: (r: FrozenWorkerReply) => void;
  reject: (e: Error) => void;
}

/**
 * Starts a worker, builds `graph` with `weights` there on the engine `choice` (its `threads`
 * are the worker's own), and resolves once it is ready; a failure to build rejects with the
 * worker's error message. `engine: "auto"` must be resolved first (see resolveEngineChoice).
 *
 * @example
 * ```ts
 * import { loadFrozenInWorker } from "./frozen_worker.ts";
 * import { buildModel } from "../models/zoo.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * try { await loadFrozenInWorker({ engine: "onnxruntime", threads: 1 }, g, new Map()); }
 * catch (e) { console.log((e as Error).name); } // FrozenWorkerError
 * ```
 */
export async function loadFrozenInWorker(
  choice: EngineChoice,
  graph: Graph,
  weights: StateDict,
): Promise<WorkerFrozen> {
  if (choice.engine === "auto") throw new Error("loadFrozenInWorker needs a resolved engine, not auto");
  const { onChoice: _o, cpuFallback: _c, ...plain } = choice;
  const m = new WorkerFrozen(graph);
  try {
    await m.start({ kind: FROZEN_WORKER_KIND, choice: plain, graph, weights });
  } catch (e) {
    m.dispose();
    throw e;
  }
  return m;
}

/** The worker-backed frozen network (see the module documentation). */
export class WorkerFrozen implements FrozenModel {
  /** Calls overlap with work on the calling thread. */
  readonly concurrent = true;
  /** The worker's engine name, once started. */
  engineName = "";
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #failure: FrozenWorkerError | null = null;
  #ready: { resolve: () => void; reject: (e: Error) => void } | null = null;

  /** Spawns the worker (use {@link loadFrozenInWorker}). */
  constructor(readonly graph: Graph) {
    this.#worker = new Worker(new URL("./frozen_worker_entry.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<FrozenWorkerReply>) => this.#answer(e.data);
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new FrozenWorkerError(`the teacher's worker failed: ${e.message}`));
    };
  }

  /** Sends the network and waits for the worker's answer. */
  start(init: FrozenWorkerInit): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#ready = { resolve, reject };
      this.#worker.postMessage(init);
    });
  }

  /** See {@link FrozenModel.forward}. */
  async forward(batch: ImageBatch): Promise<Float32Array> {
    return (await this.#call("forward", batch, {})).out!;
  }

  /** See {@link FrozenModel.inputGradient}. */
  async inputGradient(batch: LabelledBatch, reduction: GradReduction): Promise<Float32Array> {
    return (await this.#call("inputGradient", batch, { y: batch.y, reduction })).out!;
  }

  /** See {@link FrozenModel.oracle}. */
  async oracle(
    batch: LabelledBatch,
    opts: OracleOptions,
    keep?: boolean | OracleOutputs,
  ): Promise<OracleResult> {
    const r = await this.#call("oracle", batch, { y: batch.y, opts, keep });
    const out: OracleResult = { logits: r.out! };
    if (r.xStar) out.xStar = r.xStar;
    if (r.relevance) out.relevance = r.relevance;
    return out;
  }

  /** Stops the worker at once; calls in flight reject. */
  dispose(): void {
    this.#fail(new FrozenWorkerError("the teacher's worker was disposed"));
  }

  #call(
    method: FrozenWorkerCall["method"],
    batch: ImageBatch,
    extra: Omit<FrozenWorkerCall, "id" | "method" | "batch"> & { y?: Int32Array },
  ): Promise<FrozenWorkerReply> {
    if (this.#failure) return Promise.reject(this.#failure);
    let x = batch.x;
    if (x.buffer.byteLength === 0 && x.length === 0 && batch.n > 0) {
      return Promise.reject(new Error("the batch's images are in another call of this teacher (detached)"));
    }
    // Only a buffer of its own is transferred; a view into a larger one is copied first.
    const shared = !(x.buffer instanceof ArrayBuffer);
    if (!shared && !ownsBuffer(x)) x = x.slice();
    const id = this.#nextId++;
    const { y, ...rest } = extra;
    const call: FrozenWorkerCall = { id, method, batch: { x, y, n: batch.n, shape: batch.shape }, ...rest };
    return new Promise<FrozenWorkerReply>((resolve, reject) => {
      this.#pending.set(id, { batch, resolve, reject });
      try {
        this.#worker.postMessage(call, shared ? [] : [x.buffer as ArrayBuffer]);
      } catch (e) {
        this.#pending.delete(id);
        reject(e as Error);
      }
    });
  }

  #answer(r: FrozenWorkerReply): void {
    if (r.id === -1) {
      if (r.error !== undefined) {
        this.#fail(new FrozenWorkerError(`the teacher could not be built in its worker: ${r.error}`));
      } else {
        this.engineName = r.engine ?? "";
        this.#ready?.resolve();
        this.#ready = null;
      }
      return;
    }
    const p = this.#pending.get(r.id);
    if (!p) return;
    this.#pending.delete(r.id);
    // The images come back: the caller's batch holds them again.
    if (r.x) p.batch.x = r.x;
    if (r.error !== undefined) p.reject(new Error(r.error));
    else p.resolve(r);
  }

  #fail(e: FrozenWorkerError): void {
    if (!this.#failure) {
      this.#failure = e;
      this.#worker.terminate();
    }
    this.#ready?.reject(e);
    this.#ready = null;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }
}

/** What the teacher and the student run on, from the overlap and thread settings. */
export interface OverlapPlan {
  /** Whether the teacher runs in its own worker, one batch ahead of the student. */
  overlap: boolean;
  /** onnxruntime threads of the teacher (the same with and without overlap). */
  teacherThreads: number;
  /** onnxruntime threads of the student. */
  studentThreads: number;
  /** One line saying what was chosen and why. */
  reason: string;
}

/** The settings {@link planOverlap} reads (fields of the distill configuration). */
export interface OverlapSettings {
  /** `auto`, `on` or `off`. */
  overlap: "auto" | "on" | "off";
  /** Teacher threads (0: every core). */
  teacherThreads: number;
  /** Student threads (0: every core). */
  studentThreads: number;
}

/**
 * Decides whether the teacher gets a worker of its own, and each side's onnxruntime threads
 * (`0`: `cores`, every core the process may use). Thread counts never depend on the overlap
 * (onnxruntime's results may depend on them), so a run gives the same weights with and without
 * it. `auto` is off: measured on 2 cores (see README), the teacher on its own thread was slower
 * at every split than teacher and student one after the other on every core. `on` needs a CPU
 * engine (onnxruntime or tfjs): the webgpu engine's teacher and student share one GPU.
 *
 * @example
 * ```ts
 * import { planOverlap } from "./frozen_worker.ts";
 * const p = planOverlap({ engine: "onnxruntime" }, { overlap: "on", teacherThreads: 1, studentThreads: 0 }, 2);
 * console.log(p.overlap, p.teacherThreads, p.studentThreads); // true 1 2
 * ```
 */
export function planOverlap(choice: EngineChoice, s: OverlapSettings, cores: number): OverlapPlan {
  const teacherThreads = s.teacherThreads || cores;
  const studentThreads = s.studentThreads || cores;
  const threads = choice.engine === "onnxruntime"
    ? ` (teacher ${teacherThreads} thread${teacherThreads > 1 ? "s" : ""}, student ${studentThreads})`
    : "";
  const plan = (overlap: boolean, reason: string): OverlapPlan => ({
    overlap,
    teacherThreads,
    studentThreads,
    reason,
  });
  if (s.overlap === "off") return plan(false, `overlap off${threads}`);
  if (choice.engine === "webgpu" || choice.engine === "auto") {
    if (s.overlap === "on") {
      throw new Error(
        `--overlap on needs a CPU engine (onnxruntime or tfjs): ${choice.engine} runs teacher and student on one GPU`,
      );
    }
    return plan(false, `overlap off (auto: teacher and student share one GPU on ${choice.engine})`);
  }
  return s.overlap === "on"
    ? plan(true, `overlap on: the teacher answers one batch ahead on a worker thread${threads}`)
    : plan(
      false,
      `overlap off (auto: on 2 cores a teacher on its own thread was slower; --overlap on to try)${threads}`,
    );
}
