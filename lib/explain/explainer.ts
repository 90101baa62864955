/**
 * Host-array front end to relevance for analysis and figures: NCHW batches in, relevance maps,
 * x* and logits out, on its own tfjs network (the trainer's oracle runs inside the engine).
 *
 * @example
 * ```ts
 * import { TfjsExplainer } from "./explainer.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const ex = await TfjsExplainer.create(g, initStateDict(g, 0), "cpu");
 * const batch = { x: new Float32Array(2 * 3 * 8 * 8).fill(0.5), y: new Int32Array([0, 1]), n: 2, shape: [3, 8, 8] as const };
 * const e = await ex.explain(batch, { gamma: 0.5, recNum: 1, reduction: "mean", relevance: "lrp-zplus" });
 * console.log(e.relevance.length, e.oracleLogits.length); // 384 20
 * ex.dispose();
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../deps.ts";
import type { ImageBatch, LabelledBatch } from "../engines/engine.ts";
import { initTfjs, type TfjsBackendName } from "../engines/tfjs/backend.ts";
import { TfjsNetwork } from "../engines/tfjs/network.ts";
import type { Graph } from "../graph.ts";
import type { StateDict } from "../tensor.ts";
import type { LrpLayer } from "./canonizers.ts";
import { LrpAnalyzer, type Reduction } from "./lrp.ts";
import { checkRelevanceRule, type LrpParams, type RelevanceRule } from "./options.ts";
import { inputRelevance, reinforceStep, type RelevanceSettings } from "./relevance.ts";

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

/** Per-layer relevance totals on the host, one value per sample. */
export interface LayerTotals {
  /** Canonized layer name. */
  name: string;
  /** Layer kind. */
  op: LrpLayer["op"];
  /** Relevance arriving at the layer's output. */
  relevanceOut: Float32Array;
  /** Relevance the layer passes on to its inputs. */
  relevanceIn: Float32Array;
}

/** Relevance and oracle inputs for one frozen network on tfjs. */
export class TfjsExplainer {
  #lrp: LrpAnalyzer | null = null;

  private constructor(readonly tf: Tf, readonly net: TfjsNetwork) {}

  /**
   * Loads `graph` with `weights` (PyTorch layout) on a tfjs backend (wasm by default).
   *
   * @example
   * ```ts
   * import { TfjsExplainer } from "./explainer.ts";
   * import { buildModel } from "../models/zoo.ts";
   * import { initStateDict } from "../models/init.ts";
   * const g = buildModel("resnet8", { numClasses: 10 });
   * const ex = await TfjsExplainer.create(g, initStateDict(g, 0), "cpu");
   * console.log(ex.net.graph.arch); // resnet8
   * ex.dispose();
   * ```
   */
  static async create(
    graph: Graph,
    weights: StateDict,
    backend: TfjsBackendName = "wasm",
  ): Promise<TfjsExplainer> {
    const tf = await initTfjs(backend);
    return new TfjsExplainer(tf, new TfjsNetwork(tf, graph, weights));
  }

  #analyzer(): LrpAnalyzer {
    this.#lrp ??= new LrpAnalyzer(this.tf, this.net.graph, (n) => this.net.vars.get(n)!);
    return this.#lrp;
  }

  /** Relevance, x* and the logits before and after, for a labelled batch. */
  async explain(batch: LabelledBatch, s: RelevanceSettings): Promise<Explanation> {
    const tf = this.tf;
    const rule = checkRelevanceRule(s.relevance);
    const lrp = rule === "grad-input" ? null : this.#analyzer();
    const [logits, rel0, xStar, oracle] = tf.tidy(() => {
      const y = tf.tensor1d(batch.y, "int32");
      const x = toNhwc(tf, batch);
      let xs = x, first: TfTensor | null = null;
      for (let r = 0; r < s.recNum; r++) {
        const rel = inputRelevance(tf, this.net, lrp, xs, y, rule, s.lrp ?? {}, s.reduction);
        first ??= rel;
        xs = reinforceStep(tf, xs, rel, s.gamma);
      }
      return [
        this.net.forward(x, false).logits,
        toNchw(tf, first ?? tf.zerosLike(x)),
        toNchw(tf, xs),
        this.net.forward(xs, false).logits,
      ];
    });
    const out = await Promise.all(
      [logits, rel0, xStar, oracle].map((t) => t.data() as Promise<Float32Array>),
    );
    for (const t of [logits, rel0, xStar, oracle]) t.dispose();
    return { logits: out[0], relevance: out[1], xStar: out[2], oracleLogits: out[3] };
  }

  /**
   * Relevance R(x) alone (NCHW) under `rule`.
   *
   * @example
   * ```ts
   * import { TfjsExplainer } from "./explainer.ts";
   * import { buildModel } from "../models/zoo.ts";
   * import { initStateDict } from "../models/init.ts";
   * const g = buildModel("resnet8", { numClasses: 10 });
   * const ex = await TfjsExplainer.create(g, initStateDict(g, 0), "cpu");
   * const b = { x: new Float32Array(3 * 8 * 8).fill(1), y: new Int32Array([0]), n: 1, shape: [3, 8, 8] as const };
   * console.log((await ex.relevance(b, "grad-input")).length); // 192
   * ex.dispose();
   * ```
   */
  async relevance(
    batch: LabelledBatch,
    rule: RelevanceRule,
    params: LrpParams = {},
    reduction: Reduction = "mean",
  ): Promise<Float32Array> {
    const tf = this.tf;
    const r = checkRelevanceRule(rule);
    const lrp = r === "grad-input" ? null : this.#analyzer();
    const t = tf.tidy(() =>
      toNchw(
        tf,
        inputRelevance(
          tf,
          this.net,
          lrp,
          toNhwc(tf, batch),
          tf.tensor1d(batch.y, "int32"),
          r,
          params,
          reduction,
        ),
      )
    );
    const out = (await t.data()) as Float32Array;
    t.dispose();
    return out;
  }

  /** Per-layer relevance totals of an LRP pass (conservation checks, debugging). */
  async layerTotals(
    batch: LabelledBatch,
    rule: Exclude<RelevanceRule, "grad-input">,
    params: LrpParams = {},
    reduction: Reduction = "mean",
  ): Promise<LayerTotals[]> {
    const tf = this.tf;
    const lrp = this.#analyzer();
    const trace = tf.tidy(() => {
      const r = lrp.relevance(
        toNhwc(tf, batch),
        tf.tensor1d(batch.y, "int32"),
        rule,
        params,
        reduction,
        true,
      );
      return r.trace!.map((t) => ({
        ...t,
        relevanceIn: tf.keep(t.relevanceIn),
        relevanceOut: tf.keep(t.relevanceOut),
      }));
    });
    const out: LayerTotals[] = [];
    for (const t of trace) {
      out.push({
        name: t.name,
        op: t.op,
        relevanceOut: (await t.relevanceOut.data()) as Float32Array,
        relevanceIn: (await t.relevanceIn.data()) as Float32Array,
      });
      t.relevanceIn.dispose();
      t.relevanceOut.dispose();
    }
    return out;
  }

  /** Frees the network and the canonized layers. */
  dispose(): void {
    this.#lrp?.dispose();
    this.net.dispose();
  }
}

function toNhwc(tf: Tf, b: ImageBatch): TfTensor {
  return tf.transpose(tf.tensor4d(b.x, [b.n, ...b.shape]), [0, 2, 3, 1]);
}

function toNchw(tf: Tf, t: TfTensor): TfTensor {
  return tf.transpose(t, [0, 3, 1, 2]);
}
