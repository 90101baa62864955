/**
 * The teacher's side of {@link ./frozen_worker.ts}: a module Worker that builds its own engine
 * (its own onnxruntime session and thread pool) and a frozen network from the structured-cloned
 * graph and weights, then answers `forward` / `inputGradient` / `oracle` calls one at a time.
 * Each answer sends the batch's image buffer back (transferred) with the results (transferred).
 * Started only by {@link ./frozen_worker.ts}; importing it elsewhere does nothing.
 *
 * @example
 * ```ts
 * import { FROZEN_WORKER_KIND } from "./frozen_worker_entry.ts";
 * console.log(FROZEN_WORKER_KIND); // oracle-kd-frozen-worker
 * ```
 * @module
 */

import type { Graph } from "../graph.ts";
import type { StateDict } from "../tensor.ts";
import type { FrozenModel, GradReduction, OracleOptions, OracleOutputs } from "./engine.ts";
import { createEngine, type EngineChoice } from "./registry.ts";

/** Tag of the init message, so a stray message is never taken for one. */
export const FROZEN_WORKER_KIND = "oracle-kd-frozen-worker";

/** First message: what to build. */
export interface FrozenWorkerInit {
  /** Always {@link FROZEN_WORKER_KIND}. */
  kind: typeof FROZEN_WORKER_KIND;
  /** The engine to create inside the worker (no callbacks: they do not cross threads). */
  choice: Omit<EngineChoice, "onChoice" | "cpuFallback">;
  /** The network. */
  graph: Graph;
  /** Its weights (structured-cloned). */
  weights: StateDict;
}

/** A call on the frozen network. */
export interface FrozenWorkerCall {
  /** Call id, echoed in the answer. */
  id: number;
  /** Which method. */
  method: "forward" | "inputGradient" | "oracle";
  /** The batch (x arrives transferred and goes back transferred). */
  batch: { x: Float32Array; y?: Int32Array; n: number; shape: readonly [number, number, number] };
  /** inputGradient: the reduction. */
  reduction?: GradReduction;
  /** oracle: its options and what to keep. */
  opts?: OracleOptions;
  /** oracle: by-products to return. */
  keep?: boolean | OracleOutputs;
}

/** An answer: `ready` after init, else the call's results or its error, with x sent back. */
export interface FrozenWorkerReply {
  /** Call id (-1 for the init answer). */
  id: number;
  /** The engine's name (init answer). */
  engine?: string;
  /** The batch's image buffer, sent back. */
  x?: Float32Array;
  /** forward's logits, inputGradient's gradient, or oracle's logits. */
  out?: Float32Array;
  /** oracle's x*. */
  xStar?: Float32Array;
  /** oracle's first-step relevance. */
  relevance?: Float32Array;
  /** The error message, when the call (or init) failed. */
  error?: string;
}

/**
 * Whether `a` spans the whole of a plain (not shared) ArrayBuffer, so transferring its buffer
 * sends nothing else. Both sides of the worker read it ({@link ./frozen_worker.ts} for the
 * images it sends).
 *
 * @example
 * ```ts
 * import { ownsBuffer } from "./frozen_worker_entry.ts";
 * const a = new Float32Array(4);
 * console.log(ownsBuffer(a), ownsBuffer(a.subarray(1))); // true false
 * ```
 */
export function ownsBuffer(a: Float32Array): boolean {
  return a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
}

/** `a`, or a copy of it that owns its whole buffer (so transferring it sends nothing else). */
const owned = (a: Float32Array): Float32Array => ownsBuffer(a) ? a : a.slice();

/** Buffers of `arrays` that can be transferred (not shared). */
function transferable(...arrays: (Float32Array | undefined)[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const a of arrays) if (a && a.buffer instanceof ArrayBuffer && a.buffer.byteLength) out.push(a.buffer);
  return out;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Serves calls on the worker's global scope (runs only inside a Worker). */
function serve(scope: {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: unknown, transfer: Transferable[]): void;
}): void {
  let model: Promise<FrozenModel> | null = null;
  // One call at a time, in arrival order (the engine is not re-entrant).
  let queue: Promise<unknown> = Promise.resolve();
  scope.onmessage = (e: MessageEvent) => {
    const data = e.data as FrozenWorkerInit | FrozenWorkerCall;
    if ("kind" in data && data.kind === FROZEN_WORKER_KIND) {
      model = (async () => {
        const engine = await createEngine(data.choice as EngineChoice);
        const m = await engine.loadFrozen(data.graph, data.weights);
        scope.postMessage({ id: -1, engine: engine.name } satisfies FrozenWorkerReply, []);
        return m;
      })();
      model.catch((err) =>
        scope.postMessage({ id: -1, error: message(err) } satisfies FrozenWorkerReply, [])
      );
      return;
    }
    const call = data as FrozenWorkerCall;
    queue = queue.then(async () => {
      const x = call.batch.x;
      try {
        if (!model) throw new Error("the frozen worker got a call before its network");
        const m = await model;
        const b = { ...call.batch, y: call.batch.y ?? new Int32Array(0) };
        const reply: FrozenWorkerReply = { id: call.id };
        if (call.method === "forward") reply.out = owned(await m.forward(b));
        else if (call.method === "inputGradient") {
          reply.out = owned(await m.inputGradient(b, call.reduction!));
        } else {
          const r = await m.oracle(b, call.opts!, call.keep);
          reply.out = owned(r.logits);
          if (r.xStar) reply.xStar = owned(r.xStar);
          if (r.relevance) reply.relevance = owned(r.relevance);
        }
        reply.x = x;
        scope.postMessage(reply, transferable(reply.x, reply.out, reply.xStar, reply.relevance));
      } catch (err) {
        scope.postMessage(
          { id: call.id, x, error: message(err) } satisfies FrozenWorkerReply,
          transferable(x),
        );
      }
    });
  };
}

// Inside a Worker (no `document`, a `WorkerGlobalScope`): serve. Imported anywhere else: nothing.
// deno-lint-ignore no-explicit-any
const g = globalThis as any;
if (typeof g.WorkerGlobalScope === "function" && g instanceof g.WorkerGlobalScope) serve(g);
