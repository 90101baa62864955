/**
 * Creates engines by name, so callers (CLI, trainer, evaluation) pick one with a flag.
 *
 * @example
 * ```ts
 * import { createEngine } from "./registry.ts";
 * const e = await createEngine({ engine: "tfjs", backend: "cpu" });
 * console.log(e.name); // tfjs-cpu
 * ```
 * @module
 */

import type { Engine } from "./engine.ts";
import { TFJS_BACKENDS, type TfjsBackendName } from "./tfjs/backend.ts";

/** Engine names. */
export const ENGINE_NAMES = ["tfjs", "onnxruntime"] as const;
/** An engine name. */
export type EngineName = typeof ENGINE_NAMES[number];

/** Which engine, and for tfjs which backend. */
export interface EngineChoice {
  /** Engine name. */
  engine: EngineName;
  /** tfjs backend (ignored by other engines). */
  backend?: TfjsBackendName;
  /** onnxruntime intra-op threads (default: every core; ignored by other engines). */
  threads?: number;
}

/**
 * Instantiates the chosen engine. Unknown names throw an error listing the valid ones.
 *
 * @example
 * ```ts
 * import { createEngine } from "./registry.ts";
 * try { await createEngine({ engine: "nope" as "tfjs" }); } catch (e) { console.log((e as Error).message.startsWith("unknown engine")); } // true
 * ```
 */
export async function createEngine(choice: EngineChoice): Promise<Engine> {
  switch (choice.engine) {
    case "tfjs": {
      const backend = choice.backend ?? "wasm";
      if (!TFJS_BACKENDS.includes(backend)) {
        throw new Error(`unknown tfjs backend "${backend}"; choose one of ${TFJS_BACKENDS.join(", ")}`);
      }
      const { TfjsEngine } = await import("./tfjs/engine.ts");
      return await TfjsEngine.create(backend);
    }
    case "onnxruntime": {
      const { OnnxruntimeEngine } = await import("./onnxruntime/engine.ts");
      return new OnnxruntimeEngine({ threads: choice.threads });
    }
    default:
      throw new Error(`unknown engine "${choice.engine}"; choose one of ${ENGINE_NAMES.join(", ")}`);
  }
}
