/**
 * Classification metrics on host logits: top-k accuracy, negative log-likelihood, expected and
 * maximum calibration error (equal-width confidence bins), per-class accuracy, entropy. An
 * accumulator lets evaluation stream batches through without keeping all logits.
 *
 * @example
 * ```ts
 * import { MetricsAccumulator } from "./metrics.ts";
 * const acc = new MetricsAccumulator(3);
 * acc.add(new Float32Array([5, 0, 0, 0, 5, 0]), new Int32Array([0, 2]));
 * const m = acc.result();
 * console.log(m.top1, m.count); // 50 2
 * ```
 * @module
 */

/** Results, accuracies and calibration errors in percent. */
export interface ClassificationMetrics {
  /** Samples seen. */
  count: number;
  /** Top-1 accuracy, %. */
  top1: number;
  /** Top-5 accuracy, % (top-K when fewer than 5 classes). */
  top5: number;
  /** Mean negative log-likelihood of the true class (nats). */
  nll: number;
  /** Expected calibration error, %. */
  ece: number;
  /** Maximum calibration error over non-empty bins, %. */
  mce: number;
  /** Mean entropy of the predicted distribution (nats). */
  entropy: number;
  /** Accuracy per class, % (NaN for classes absent from the labels). */
  perClass: number[];
  /** Reliability bins: count, mean confidence and accuracy (fractions) per equal-width bin. */
  bins: { lo: number; hi: number; count: number; confidence: number; accuracy: number }[];
}

/**
 * Softmax of one row into `out` (numerically stable), returning log-sum-exp.
 *
 * @example
 * ```ts
 * import { softmaxRow } from "./metrics.ts";
 * const out = new Float64Array(2);
 * softmaxRow(new Float32Array([0, 0]), 0, 2, out);
 * console.log(out[0]); // 0.5
 * ```
 */
export function softmaxRow(logits: ArrayLike<number>, offset: number, k: number, out: Float64Array): number {
  let max = -Infinity;
  for (let j = 0; j < k; j++) max = Math.max(max, logits[offset + j]);
  let sum = 0;
  for (let j = 0; j < k; j++) {
    out[j] = Math.exp(logits[offset + j] - max);
    sum += out[j];
  }
  for (let j = 0; j < k; j++) out[j] /= sum;
  return max + Math.log(sum);
}

/** Streams batches of logits and labels into {@link ClassificationMetrics}. */
export class MetricsAccumulator {
  #count = 0;
  #hit1 = 0;
  #hit5 = 0;
  #nll = 0;
  #entropy = 0;
  readonly #classHits: Float64Array;
  readonly #classCount: Float64Array;
  readonly #binCount: Float64Array;
  readonly #binConf: Float64Array;
  readonly #binHit: Float64Array;
  readonly #p: Float64Array;

  /** `numClasses` logits per sample; `bins` equal-width confidence bins (15 as Guo et al.). */
  constructor(readonly numClasses: number, readonly numBins = 15) {
    this.#classHits = new Float64Array(numClasses);
    this.#classCount = new Float64Array(numClasses);
    this.#binCount = new Float64Array(numBins);
    this.#binConf = new Float64Array(numBins);
    this.#binHit = new Float64Array(numBins);
    this.#p = new Float64Array(numClasses);
  }

  /** Adds a batch: `logits` [n, K] row-major, `labels` [n]. */
  add(logits: ArrayLike<number>, labels: ArrayLike<number>): void {
    const k = this.numClasses;
    const n = labels.length;
    if (logits.length !== n * k) {
      throw new Error(`metrics: ${logits.length} logits for ${n} labels and ${k} classes`);
    }
    const top = Math.min(5, k);
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      const o = i * k;
      const lse = softmaxRow(logits, o, k, this.#p);
      this.#nll += lse - logits[o + y];
      let pred = 0, h = 0, greater = 0;
      for (let j = 0; j < k; j++) {
        if (logits[o + j] > logits[o + pred]) pred = j;
        if (this.#p[j] > 0) h -= this.#p[j] * Math.log(this.#p[j]);
        // Rank of the true class: how many classes score strictly higher (ties favour the label).
        if (logits[o + j] > logits[o + y]) greater++;
      }
      this.#entropy += h;
      const conf = this.#p[pred];
      const correct = pred === y ? 1 : 0;
      this.#hit1 += correct;
      if (greater < top) this.#hit5++;
      this.#classHits[y] += correct;
      this.#classCount[y]++;
      // Bins (lo, hi], as in Guo et al.: a confidence of exactly 1 falls in the last bin.
      const b = Math.min(this.numBins - 1, Math.max(0, Math.ceil(conf * this.numBins) - 1));
      this.#binCount[b]++;
      this.#binConf[b] += conf;
      this.#binHit[b] += correct;
      this.#count++;
    }
  }

  /** Metrics over everything added so far. */
  result(): ClassificationMetrics {
    const n = Math.max(1, this.#count);
    let ece = 0, mce = 0;
    const bins = [];
    for (let b = 0; b < this.numBins; b++) {
      const c = this.#binCount[b];
      const conf = c > 0 ? this.#binConf[b] / c : 0;
      const acc = c > 0 ? this.#binHit[b] / c : 0;
      if (c > 0) {
        const gap = Math.abs(acc - conf);
        ece += (c / n) * gap;
        mce = Math.max(mce, gap);
      }
      bins.push({
        lo: b / this.numBins,
        hi: (b + 1) / this.numBins,
        count: c,
        confidence: conf,
        accuracy: acc,
      });
    }
    return {
      count: this.#count,
      top1: (100 * this.#hit1) / n,
      top5: (100 * this.#hit5) / n,
      nll: this.#nll / n,
      ece: 100 * ece,
      mce: 100 * mce,
      entropy: this.#entropy / n,
      perClass: Array.from(
        this.#classHits,
        (h, j) => (this.#classCount[j] > 0 ? (100 * h) / this.#classCount[j] : NaN),
      ),
      bins,
    };
  }
}

/**
 * Index of the largest logit of each row.
 *
 * @example
 * ```ts
 * import { argmaxRows } from "./metrics.ts";
 * console.log(argmaxRows(new Float32Array([1, 3, 2, 0]), 2)); // Int32Array [1, 0]
 * ```
 */
export function argmaxRows(logits: ArrayLike<number>, k: number): Int32Array {
  const n = logits.length / k;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
    out[i] = best;
  }
  return out;
}

/**
 * Median of `xs` (the mean of the middle two for an even count); NaN for none.
 *
 * @example
 * ```ts
 * import { median } from "./metrics.ts";
 * console.log(median([3, 1, 2]), median([4, 1, 3, 2])); // 2 2.5
 * ```
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
