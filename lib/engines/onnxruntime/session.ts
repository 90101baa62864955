/**
 * onnxruntime sessions for compiled graphs: lazy loading of onnxruntime-node, the session
 * options every graph uses (all cores for intra-op parallelism, full graph optimisation, one
 * sequential executor, no spinning between runs), and a small cache of sessions keyed by graph variant and batch size.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { createSession, runSession } from "./session.ts";
 * const b = new OnnxBuilder("neg");
 * b.output(b.op("Neg", [b.input("x", "float32", [2])]), "y");
 * const s = await createSession(b.toModel(), 1);
 * console.log((await runSession(s, { x: { data: new Float32Array([1, 2]), dims: [2] } })).y); // Float32Array [-1, -2]
 * await s.release();
 * ```
 * @module
 */

import { loadOnnxruntime, type Ort } from "../../deps.ts";
import { threadsFromEnv } from "../threads_env.ts";

/** An onnxruntime inference session. */
export type OrtSession = Awaited<ReturnType<Ort["InferenceSession"]["create"]>>;

/** A host array fed to a session. */
export interface Feed {
  /** Values (float32 for everything the compiled graphs take). */
  data: Float32Array;
  /** Dimensions. */
  dims: readonly number[];
}

let ortPromise: Promise<Ort> | null = null;

/**
 * The onnxruntime-node module, loaded on first use.
 *
 * @example
 * ```ts
 * import { ort } from "./session.ts";
 * console.log(typeof (await ort()).InferenceSession.create); // function
 * ```
 */
export function ort(): Promise<Ort> {
  ortPromise ??= loadOnnxruntime();
  return ortPromise;
}

/** Environment variable that sets onnxruntime's threads per session (e.g. set per run by sweeps). */
export const ORT_THREADS_ENV = "ORACLE_KD_THREADS";

/**
 * Threads onnxruntime uses by default: `ORACLE_KD_THREADS` when set, else every core the process
 * may use.
 *
 * @example
 * ```ts
 * import { defaultThreads } from "./session.ts";
 * console.log(defaultThreads() >= 1); // true
 * ```
 */
export function defaultThreads(): number {
  return threadsFromEnv(ORT_THREADS_ENV) ?? Math.max(1, navigator.hardwareConcurrency || 1);
}

/** Diagnostics a session may be created with (tools/profile_train_step.ts). */
export interface SessionDiagnostics {
  /** Turns onnxruntime's profiler on, writing its JSON trace to `<profilePrefix>_<date>.json`. */
  profilePrefix?: string;
}

/**
 * Creates a CPU session for serialised model `bytes` with `threads` intra-op threads.
 * `memoryPattern` pre-plans one block for all intermediates: about 4% faster for the training
 * step, but it holds about half again as much memory, and the frozen graphs gain nothing from it.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { createSession } from "./session.ts";
 * const b = new OnnxBuilder("id");
 * b.output(b.input("x", "float32", [1]), "x");
 * const s = await createSession(b.toModel(), 1);
 * console.log(s.outputNames); // ["x"]
 * await s.release();
 * ```
 */
export async function createSession(
  bytes: Uint8Array,
  threads = defaultThreads(),
  memoryPattern = true,
  diagnostics: SessionDiagnostics = {},
): Promise<OrtSession> {
  const o = await ort();
  const profiling = diagnostics.profilePrefix
    ? { enableProfiling: true, profileFilePrefix: diagnostics.profilePrefix }
    : {};
  return await o.InferenceSession.create(bytes, {
    ...profiling,
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    enableCpuMemArena: true,
    enableMemPattern: memoryPattern,
    // Warnings only (the default also prints informational optimiser messages).
    logSeverityLevel: 2,
    // Each session has its own intra-op pool, and idle pool threads spin by default: a teacher's
    // threads kept spinning through the student's step cost the oracle-KD step ~50 ms of 460 on
    // 2 cores. Stop spinning when a run ends (spinning within a run is kept).
    extra: { session: { force_spinning_stop: "1" } },
  });
}

/**
 * Runs `session` on host arrays and returns every output as a Float32Array.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { createSession, runSession } from "./session.ts";
 * const b = new OnnxBuilder("sq");
 * const x = b.input("x", "float32", [2]);
 * b.output(b.op("Mul", [x, x]), "y");
 * const s = await createSession(b.toModel(), 1);
 * console.log((await runSession(s, { x: { data: new Float32Array([3, 4]), dims: [2] } })).y); // Float32Array [9, 16]
 * await s.release();
 * ```
 */
export async function runSession(
  session: OrtSession,
  feeds: Record<string, Feed>,
): Promise<Record<string, Float32Array>> {
  const o = await ort();
  const inputs: Record<string, InstanceType<Ort["Tensor"]>> = {};
  for (const [name, f] of Object.entries(feeds)) inputs[name] = new o.Tensor("float32", f.data, f.dims);
  const out = await session.run(inputs);
  const result: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(out)) {
    result[name] = t.data as Float32Array;
    t.dispose();
  }
  return result;
}

/**
 * Sessions by key, built on first use and released least-recently-used first once more than
 * `capacity` are held (a trainer needs two batch sizes: the full one and the epoch's last).
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { SessionCache } from "./session.ts";
 * const cache = new SessionCache(2, 1);
 * const build = () => { const b = new OnnxBuilder("id"); b.output(b.input("x", "float32", [1]), "x"); return b.toModel(); };
 * const a = await cache.get("a", build);
 * console.log(a === await cache.get("a", build)); // true
 * await cache.clear();
 * ```
 */
export class SessionCache {
  readonly #sessions = new Map<string, Promise<OrtSession>>();

  /**
   * Holds at most `capacity` sessions, each with `threads` intra-op threads and
   * `memoryPattern` as in {@link createSession}.
   */
  constructor(readonly capacity = 4, readonly threads = defaultThreads(), readonly memoryPattern = true) {}

  /** The session for `key`, compiling it with `build` the first time. */
  async get(key: string, build: () => Uint8Array): Promise<OrtSession> {
    let s = this.#sessions.get(key);
    if (s) {
      this.#sessions.delete(key);
      this.#sessions.set(key, s);
      return await s;
    }
    s = createSession(build(), this.threads, this.memoryPattern);
    this.#sessions.set(key, s);
    s.catch(() => this.#sessions.delete(key));
    while (this.#sessions.size > this.capacity) {
      const [oldest, old] = this.#sessions.entries().next().value!;
      this.#sessions.delete(oldest);
      old.then((x) => x.release()).catch(() => {});
    }
    return await s;
  }

  /** Number of sessions held. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Releases every session. */
  async clear(): Promise<void> {
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const s of all) await s.then((x) => x.release()).catch(() => {});
  }
}
