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
import { probeWebgpuAdapter } from "./tfjs/webgpu_backend.ts";

/** Engine names. `auto`: a hardware WebGPU adapter's `webgpu`, else onnxruntime on the CPU. */
export const ENGINE_NAMES = ["tfjs", "onnxruntime", "webgpu", "auto"] as const;
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
  /**
   * `webgpu` only: run on a software adapter (llvmpipe, SwiftShader) too, with a warning
   * (default: the environment variable ORACLE_KD_WEBGPU_ALLOW_SOFTWARE=1). `auto` never does.
   */
  allowSoftwareAdapter?: boolean;
  /** `auto` only: the CPU engine when no hardware adapter exists (default onnxruntime). */
  cpuFallback?: EngineChoice;
  /** `auto` only: receives the one line saying what was chosen and why (default: stderr). */
  onChoice?: (line: string) => void;
}

/**
 * What `auto` picks here, and why (one line): `webgpu` on a hardware WebGPU adapter, never on a
 * software (fallback) one; else `choice.cpuFallback` (onnxruntime by default). Other choices
 * come back unchanged with an empty reason.
 *
 * @example
 * ```ts
 * import { resolveEngineChoice } from "./registry.ts";
 * const { choice, reason } = await resolveEngineChoice({ engine: "auto" });
 * console.log(choice.engine === "webgpu" || choice.engine === "onnxruntime", reason.startsWith("engine auto:")); // true true
 * ```
 */
export async function resolveEngineChoice(
  choice: EngineChoice,
): Promise<{ choice: EngineChoice; reason: string }> {
  if (choice.engine !== "auto") return { choice, reason: "" };
  const probe = await probeWebgpuAdapter();
  if (probe.adapter && !probe.software) {
    return {
      choice: { engine: "webgpu", threads: choice.threads, allowSoftwareAdapter: false },
      reason: `engine auto: webgpu on the hardware WebGPU adapter ${probe.description}`,
    };
  }
  const cpu = choice.cpuFallback ?? { engine: "onnxruntime", threads: choice.threads };
  const name = cpu.engine === "tfjs" ? `tfjs-${cpu.backend ?? "wasm"}` : cpu.engine;
  const why = probe.adapter
    ? `the only WebGPU adapter is a software one (${probe.description})`
    : `no WebGPU adapter (${probe.description})`;
  return { choice: cpu, reason: `engine auto: ${name} on the CPU, because ${why}` };
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
      if (!(TFJS_BACKENDS as readonly string[]).includes(backend)) {
        throw new Error(
          `unknown tfjs backend "${backend}"; choose one of ${TFJS_BACKENDS.join(", ")}` +
            (backend === "webgpu" ? " (WebGPU is --engine webgpu)" : ""),
        );
      }
      const { TfjsEngine } = await import("./tfjs/engine.ts");
      return await TfjsEngine.create(backend);
    }
    case "webgpu": {
      const { TfjsEngine } = await import("./tfjs/engine.ts");
      return await TfjsEngine.create("webgpu", { allowSoftwareAdapter: choice.allowSoftwareAdapter });
    }
    case "onnxruntime": {
      const { OnnxruntimeEngine } = await import("./onnxruntime/engine.ts");
      return new OnnxruntimeEngine({ threads: choice.threads });
    }
    case "auto": {
      const { choice: picked, reason } = await resolveEngineChoice(choice);
      (choice.onChoice ?? ((line: string) => console.error(line)))(reason);
      return await createEngine(picked);
    }
    default:
      throw new Error(`unknown engine "${choice.engine}"; choose one of ${ENGINE_NAMES.join(", ")}`);
  }
}
