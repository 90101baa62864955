/**
 * Multithreaded XNNPACK for the tfjs `wasm` backend under Deno.
 *
 * tfjs disables its threaded SIMD build outside browsers (flag WASM_HAS_MULTITHREAD_SUPPORT),
 * and it would not start in Deno anyway: the Emscripten pthread worker is an embedded string
 * handed to `worker_threads` as a blob URL (ERR_WORKER_PATH), the worker assigns a read-only
 * `location`, and the thread count is capped at half the logical cores (1 on a 2-core machine).
 * This module starts that build itself: it writes the worker script (with the assignment made
 * tolerant) and the module factory to temporary files, reports twice the wanted thread count as
 * logical cores to the factory, builds the backend from the started module, and unrefs the
 * worker threads so they never keep the process alive. Anything failing falls back to tfjs's
 * own single-threaded SIMD backend; {@link wasmThreadsStatus} says what happened.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { wasmThreadsStatus } from "./wasm_threads.ts";
 * await initTfjs("wasm");
 * console.log(wasmThreadsStatus().threads >= 1); // true
 * ```
 * @module
 */

import { loadTfjsWasmThreadedAssets, type Tf, type TfjsWasmModule } from "../../deps.ts";
import { threadsFromEnv } from "../threads_env.ts";

/** Environment variable that sets the XNNPACK thread count (1 = stock single-threaded backend). */
export const WASM_THREADS_ENV = "ORACLE_KD_WASM_THREADS";

/** Largest thread count: the threaded build pre-starts 8 pthread workers. */
const MAX_THREADS = 8;
/** How long the pthread workers may take to load before falling back. */
const START_TIMEOUT_MS = 30_000;

/** How the wasm backend was started. */
export interface WasmThreadsStatus {
  /** XNNPACK threads in use (1 for the stock backend). */
  threads: number;
  /** Why the threaded build is not in use, when it was wanted but failed. */
  error?: string;
}

let status: WasmThreadsStatus = { threads: 1 };
const installed = new WeakSet<object>();

/**
 * How the `wasm` backend started (threads in use, or why the threaded build failed).
 *
 * @example
 * ```ts
 * import { wasmThreadsStatus } from "./wasm_threads.ts";
 * console.log(typeof wasmThreadsStatus().threads); // number
 * ```
 */
export function wasmThreadsStatus(): WasmThreadsStatus {
  return { ...status };
}

/**
 * Thread count to use: `ORACLE_KD_WASM_THREADS` when set, else the logical core count, at most 8.
 *
 * @example
 * ```ts
 * import { defaultWasmThreads } from "./wasm_threads.ts";
 * console.log(defaultWasmThreads() >= 1); // true
 * ```
 */
export function defaultWasmThreads(): number {
  const n = threadsFromEnv(WASM_THREADS_ENV) ?? navigator.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(n, MAX_THREADS));
}

/**
 * Makes the `wasm` backend start multithreaded (`threads` > 1) when it is first initialised.
 * Call after the wasm package is loaded and before `tf.setBackend("wasm")`; a backend that is
 * already running is left as it is.
 *
 * @example
 * ```ts
 * import { loadTfjsCore, loadTfjsWasmBackend } from "../../deps.ts";
 * import { installThreadedWasmBackend } from "./wasm_threads.ts";
 * const tf = await loadTfjsCore();
 * installThreadedWasmBackend(tf, await loadTfjsWasmBackend(), 2);
 * ```
 */
export function installThreadedWasmBackend(
  tf: Tf,
  wasm: TfjsWasmModule,
  threads = defaultWasmThreads(),
): void {
  if (threads <= 1 || installed.has(tf)) return;
  if (tf.engine().registry["wasm"]) return; // already running
  const stock = tf.findBackendFactory("wasm");
  if (!stock) return;
  installed.add(tf);
  tf.removeBackend("wasm");
  tf.registerBackend("wasm", async () => {
    try {
      const backend = await startThreaded(wasm, threads);
      status = { threads: wasm.getThreadsCount() };
      return backend;
    } catch (e) {
      status = { threads: 1, error: String((e as Error).message ?? e).split("\n")[0] };
      console.warn(`tfjs wasm: multithreaded build unavailable (${status.error}); running on 1 thread`);
      return await stock();
    }
  }, 2);
}

/** The Emscripten module object, as far as this file touches it. */
interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): unknown;
  PThread?: { runningWorkers: Worker[]; unusedWorkers: Worker[]; terminateAllThreads(): void };
  [key: string]: unknown;
}
type Worker = { unref?: () => void };

async function startThreaded(wasm: TfjsWasmModule, threads: number) {
  if (typeof SharedArrayBuffer === "undefined") throw new Error("SharedArrayBuffer is unavailable");
  const assets = await loadTfjsWasmThreadedAssets();
  const workerScript = patch(
    assets.workerScript.replace(/\n/g, "\\n"), // as tfjs does before making a blob of it
    "Object.assign(global,",
    "__kdAssign(global,",
  );
  const tolerantAssign = "function __kdAssign(t,s){for(const k of Object.keys(s)){try{" +
    "Object.defineProperty(t,k,{value:s[k],writable:true,configurable:true})}catch(_){}}return t}\n";
  const factorySource = patch(
    assets.factorySource,
    'if(ENVIRONMENT_IS_NODE)return require("os").cpus().length;return navigator["hardwareConcurrency"]',
    // tfjs caps the pool at half the logical cores.
    `return ${2 * threads}`,
  );
  const dir = await Deno.makeTempDir({ prefix: "oracle-kd-wasm-" });
  try {
    const workerPath = `${dir}/pthread_worker.cjs`;
    const mainPath = `${dir}/threaded_simd.cjs`;
    await Deno.writeTextFile(workerPath, tolerantAssign + workerScript);
    await Deno.writeTextFile(mainPath, `var WasmBackendModuleThreadedSimd = ${factorySource};\n`);
    const { createRequire } = await import("node:module");
    const require = createRequire(mainPath);
    const factory = new Function("require", "__filename", "__dirname", `return (${factorySource});`)(
      require,
      mainPath,
      dir,
    ) as (m: EmscriptenModule) => Promise<EmscriptenModule>;
    const config: EmscriptenModule = {
      locateFile: (path: string) => path.endsWith(".worker.js") ? workerPath : assets.wasmPath,
      mainScriptUrlOrBlob: mainPath, // each worker evaluates this file
    } as unknown as EmscriptenModule;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const module = await Promise.race([
      factory(config),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          config.PThread?.terminateAllThreads();
          reject(new Error(`pthread workers did not start within ${START_TIMEOUT_MS / 1000} s`));
        }, START_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    module.tfjs = {
      init: module.cwrap("init", null, []),
      initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
      getThreadsCount: module.cwrap("get_threads_count", "number", []),
      registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
      disposeData: module.cwrap("dispose_data", null, ["number"]),
      dispose: module.cwrap("dispose", null, []),
    };
    wasm.setThreadsCount(threads);
    const backend = new wasm.BackendWasm(module as never); // creates the thread pool
    // Idle pool threads must not keep the process alive.
    for (const w of [...module.PThread!.runningWorkers, ...module.PThread!.unusedWorkers]) w.unref?.();
    return backend;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function patch(source: string, find: string, replace: string): string {
  if (!source.includes(find)) throw new Error(`unexpected tfjs wasm build: "${find.slice(0, 40)}" not found`);
  return source.replace(find, replace);
}
