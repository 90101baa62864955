/**
 * The teacher's response seam: what supervises the student for a batch. Providers: `plain`
 * (the teacher's logits on x, i.e. Hinton KD) and `oracle` (logits on the relevance-reinforced
 * x* = x - gamma * |x| * dCE(teacher(x), y)/dx, repeated `recNum` times). More providers can be
 * registered without touching the trainer. {@link oracleResponse} is the one call through which
 * `distill`, `test --oracle` and `analyze` produce x*: it applies the gamma-0 rule and runs the
 * engine's oracle (any engine, any relevance rule).
 *
 * @example
 * ```ts
 * import { createResponseProvider } from "./providers.ts";
 * import { createEngine } from "../engines/registry.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
 * const engine = await createEngine({ engine: "tfjs", backend: "wasm" });
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const teacher = await engine.loadFrozen(g, initStateDict(g, 0));
 * const provider = createResponseProvider("oracle", teacher, { gamma: 0.5, recNum: 1, reduction: "mean" });
 * const batch = { x: new Float32Array(2 * 3 * 32 * 32).fill(0.1), y: new Int32Array([0, 1]), n: 2, shape: [3, 32, 32] as const };
 * console.log((await provider.respond(batch)).length); // 20
 * teacher.dispose();
 * ```
 * @module
 */

import type { LabelledBatch } from "../batch.ts";
import type { FrozenModel, OracleOutputs, OracleResult } from "../engines/engine.ts";
import { oracleIsPlain, type OracleOptions, validateOracleOptions } from "./options.ts";

/** Produces the teacher logits that supervise the student on a batch. */
export interface ResponseProvider {
  /** Provider name (recorded in run summaries). */
  readonly name: string;
  /** Teacher logits [n, K] for the batch. */
  respond(batch: LabelledBatch): Promise<Float32Array>;
  /**
   * True when responses are computed on a thread of their own: the trainer then asks for the
   * next batch's response while the student steps on the current one. Unset, it is the
   * teacher's {@link FrozenModel.concurrent} ({@link createResponseProvider} fills it in).
   */
  readonly concurrent?: boolean;
}

/** Factory signature for providers. */
export type ResponseProviderFactory = (teacher: FrozenModel, opts: OracleOptions) => ResponseProvider;

const registry = new Map<string, ResponseProviderFactory>([
  [
    "plain",
    (teacher) => ({
      name: "plain",
      respond: (b) => teacher.forward(b),
    }),
  ],
  [
    "oracle",
    (teacher, opts) => {
      validateOracleOptions(opts);
      return {
        name: "oracle",
        respond: async (b) => (await oracleResponse(teacher, b, opts)).logits,
      };
    },
  ],
]);

/**
 * Registers another provider (e.g. a different relevance rule) under `name`.
 *
 * @example
 * ```ts
 * import { registerResponseProvider, responseProviderNames } from "./providers.ts";
 * registerResponseProvider("doubled", (t) => ({ name: "doubled", respond: async (b) => (await t.forward(b)).map((v) => 2 * v) }));
 * console.log(responseProviderNames().includes("doubled")); // true
 * ```
 */
export function registerResponseProvider(name: string, factory: ResponseProviderFactory): void {
  registry.set(name, factory);
}

/**
 * Names of the registered providers.
 *
 * @example
 * ```ts
 * import { responseProviderNames } from "./providers.ts";
 * console.log(responseProviderNames().slice(0, 2)); // ["plain", "oracle"]
 * ```
 */
export function responseProviderNames(): string[] {
  return [...registry.keys()];
}

/**
 * Creates the named provider over `teacher`.
 *
 * @example
 * ```ts
 * import { createResponseProvider } from "./providers.ts";
 * try { createResponseProvider("nope", {} as never, { gamma: 0, recNum: 1, reduction: "mean" }); }
 * catch (e) { console.log((e as Error).message.startsWith("unknown response provider")); } // true
 * ```
 */
export function createResponseProvider(
  name: string,
  teacher: FrozenModel,
  opts: OracleOptions,
): ResponseProvider {
  const factory = registry.get(name);
  if (!factory) {
    throw new Error(
      `unknown response provider "${name}"; choose one of ${responseProviderNames().join(", ")}`,
    );
  }
  // Every provider answers on its teacher's thread unless it says otherwise.
  const p = factory(teacher, opts);
  if (p.concurrent !== undefined) return p;
  return { name: p.name, respond: (b) => p.respond(b), concurrent: teacher.concurrent === true };
}

/**
 * The teacher's oracle response on a batch: logits on x* (and x* and the first step's relevance
 * when `keep` asks). The gamma-0 rule applies: a step of 0 with nothing kept is the plain forward.
 *
 * @example
 * ```ts
 * import { oracleResponse } from "./providers.ts";
 * import { createEngine } from "../engines/registry.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
 * const engine = await createEngine({ engine: "tfjs", backend: "cpu" });
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const teacher = await engine.loadFrozen(g, initStateDict(g, 0));
 * const batch = { x: new Float32Array(3 * 8 * 8).fill(0.5), y: new Int32Array([1]), n: 1, shape: [3, 8, 8] as const };
 * const r = await oracleResponse(teacher, batch, { gamma: 0.5, recNum: 1, reduction: "sum", relevance: "lrp-epsilon" }, { xStar: true });
 * console.log(r.logits.length, r.xStar!.length); // 10 192
 * teacher.dispose();
 * ```
 */
export async function oracleResponse(
  teacher: FrozenModel,
  batch: LabelledBatch,
  opts: OracleOptions,
  keep?: boolean | OracleOutputs,
): Promise<OracleResult> {
  validateOracleOptions(opts);
  if (oracleIsPlain(opts) && !keep) return { logits: await teacher.forward(batch) };
  return await teacher.oracle(batch, opts, keep);
}
