/**
 * Host-array front end to the oracle for analysis and figures: NCHW batches in, the logits on x,
 * the first step's relevance map, x* and the logits on x* out. It runs on any engine through the
 * engine seam (`FrozenModel.oracle`, via {@link oracleResponse}), the same call `distill` and
 * `test --oracle` use, so the heatmaps show exactly the x* the student is trained against.
 *
 * @example
 * ```ts
 * import { Explainer } from "./explainer.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const ex = await Explainer.create(g, initStateDict(g, 0), { engine: "tfjs", backend: "cpu" });
 * const batch = { x: new Float32Array(2 * 3 * 8 * 8).fill(0.5), y: new Int32Array([0, 1]), n: 2, shape: [3, 8, 8] as const };
 * const e = await ex.explain(batch, { gamma: 0.5, recNum: 1, reduction: "mean", relevance: "lrp-zplus" });
 * console.log(e.relevance.length, e.oracleLogits.length); // 384 20
 * ex.dispose();
 * ```
 * @module
 */

import type { LabelledBatch } from "../batch.ts";
import type { FrozenModel } from "../engines/engine.ts";
import { createEngine, type EngineChoice } from "../engines/registry.ts";
import type { TfjsBackendName } from "../engines/tfjs/backend.ts";
import type { Graph } from "../graph.ts";
import type { GradReduction, LrpParams, OracleOptions, RelevanceRule } from "../oracle/options.ts";
import { oracleResponse } from "../oracle/providers.ts";
import type { StateDict } from "../tensor.ts";

/** What one batch explains to. All images NCHW like the input batch. */
export interface Explanation {
  /** Teacher logits on x, [n, K]. */
  logits: Float32Array;
  /** Relevance R(x) of the first step. */
  relevance: Float32Array;
  /** x* after `recNum` steps. */
  xStar: Float32Array;
  /** Teacher logits on x* (the oracle response), [n, K]. */
  oracleLogits: Float32Array;
}

/** Relevance and oracle inputs of one frozen network, on any engine. */
export class Explainer {
  /** Wraps a loaded frozen model (the caller keeps ownership unless `owned`). */
  constructor(readonly model: FrozenModel, readonly owned = false) {}

  /**
   * Loads `graph` with `weights` (PyTorch layout) on an engine (tfjs-wasm by default; a tfjs
   * backend name is accepted for the tfjs engine).
   *
   * @example
   * ```ts
   * import { Explainer } from "./explainer.ts";
   * import { buildModel } from "../models/zoo.ts";
   * import { initStateDict } from "../models/init.ts";
   * const g = buildModel("resnet8", { numClasses: 10 });
   * const ex = await Explainer.create(g, initStateDict(g, 0), "cpu");
   * console.log(ex.model.graph.arch); // resnet8
   * ex.dispose();
   * ```
   */
  static async create(
    graph: Graph,
    weights: StateDict,
    engine: EngineChoice | TfjsBackendName = "wasm",
  ): Promise<Explainer> {
    const choice: EngineChoice = typeof engine === "string" ? { engine: "tfjs", backend: engine } : engine;
    return new Explainer(await (await createEngine(choice)).loadFrozen(graph, weights), true);
  }

  /** Relevance, x* and the logits before and after, for a labelled batch. */
  async explain(batch: LabelledBatch, opts: OracleOptions): Promise<Explanation> {
    const o = await oracleResponse(this.model, batch, opts, { xStar: true, relevance: true });
    return {
      logits: await this.model.forward(batch),
      relevance: o.relevance!,
      xStar: o.xStar!,
      oracleLogits: o.logits,
    };
  }

  /**
   * Relevance R(x) alone (NCHW) under `rule`.
   *
   * @example
   * ```ts
   * import { Explainer } from "./explainer.ts";
   * import { buildModel } from "../models/zoo.ts";
   * import { initStateDict } from "../models/init.ts";
   * const g = buildModel("resnet8", { numClasses: 10 });
   * const ex = await Explainer.create(g, initStateDict(g, 0), "cpu");
   * const b = { x: new Float32Array(3 * 8 * 8).fill(1), y: new Int32Array([0]), n: 1, shape: [3, 8, 8] as const };
   * console.log((await ex.relevance(b, "grad-input")).length); // 192
   * ex.dispose();
   * ```
   */
  async relevance(
    batch: LabelledBatch,
    rule: RelevanceRule,
    params: LrpParams = {},
    reduction: GradReduction = "mean",
  ): Promise<Float32Array> {
    const opts = { gamma: 0, recNum: 1, reduction, relevance: rule, lrp: params };
    return (await oracleResponse(this.model, batch, opts, { relevance: true })).relevance!;
  }

  /** Frees the model when this explainer loaded it. */
  dispose(): void {
    if (this.owned) this.model.dispose();
  }
}

/** The former name of {@link Explainer} (it ran on tfjs only); kept for scripts that use it. */
export const TfjsExplainer: typeof Explainer = Explainer;
/** The former name of {@link Explainer}. */
export type TfjsExplainer = Explainer;
