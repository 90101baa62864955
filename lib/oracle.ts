/**
 * The teacher's response seam: what supervises the student for a batch. Providers: `plain`
 * (the teacher's logits on x, i.e. Hinton KD) and `oracle` (logits on the relevance-reinforced
 * x* = x - gamma * |x| * dCE(teacher(x), y)/dx, repeated `recNum` times). More providers can be
 * registered without touching the trainer.
 *
 * @example
 * ```ts
 * import { createResponseProvider } from "./oracle.ts";
 * import { createEngine } from "./engines/registry.ts";
 * import { buildModel } from "./models/zoo.ts";
 * import { initStateDict } from "./models/init.ts";
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

import type { FrozenModel, LabelledBatch, OracleOptions } from "./engines/engine.ts";

/** Produces the teacher logits that supervise the student on a batch. */
export interface ResponseProvider {
  /** Provider name (recorded in run summaries). */
  readonly name: string;
  /** Teacher logits [n, K] for the batch. */
  respond(batch: LabelledBatch): Promise<Float32Array>;
}

/** Factory signature for providers. */
export type ResponseProviderFactory = (teacher: FrozenModel, opts: OracleOptions) => ResponseProvider;

const registry = new Map<string, ResponseProviderFactory>([
  ["plain", (teacher) => ({ name: "plain", respond: (b) => teacher.forward(b) })],
  [
    "oracle",
    (teacher, opts) => {
      validateOracleOptions(opts);
      // gamma 0 leaves x unchanged: skip the gradient pass entirely.
      if (opts.gamma === 0) return { name: "oracle", respond: (b) => teacher.forward(b) };
      return { name: "oracle", respond: async (b) => (await teacher.oracle(b, opts)).logits };
    },
  ],
]);

/**
 * Registers another provider (e.g. a different relevance rule) under `name`.
 *
 * @example
 * ```ts
 * import { registerResponseProvider, responseProviderNames } from "./oracle.ts";
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
 * import { responseProviderNames } from "./oracle.ts";
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
 * import { createResponseProvider } from "./oracle.ts";
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
  return factory(teacher, opts);
}

/**
 * Checks oracle settings, naming the offending field.
 *
 * @example
 * ```ts
 * import { validateOracleOptions } from "./oracle.ts";
 * validateOracleOptions({ gamma: 0.5, recNum: 1, reduction: "mean" }); // ok
 * ```
 */
export function validateOracleOptions(o: OracleOptions): void {
  if (!Number.isFinite(o.gamma) || o.gamma < 0) {
    throw new Error(`gamma must be a finite number >= 0, got ${o.gamma}`);
  }
  if (!Number.isInteger(o.recNum) || o.recNum < 1) {
    throw new Error(`rec_num must be an integer >= 1, got ${o.recNum}`);
  }
  if (o.reduction !== "mean" && o.reduction !== "sum") {
    throw new Error(`reduction must be "mean" or "sum", got "${o.reduction}"`);
  }
}

/**
 * Reference x* from a given input gradient, on host arrays: `x - gamma * |x| * grad`.
 * Engines compute this internally; this pure version documents and tests the formula.
 *
 * @example
 * ```ts
 * import { reinforceInput } from "./oracle.ts";
 * console.log(reinforceInput(new Float32Array([-2, 1]), new Float32Array([1, -1]), 0.5)); // Float32Array [-1, 1.5]
 * ```
 */
export function reinforceInput(x: Float32Array, grad: Float32Array, gamma: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - gamma * Math.abs(x[i]) * grad[i];
  return out;
}
