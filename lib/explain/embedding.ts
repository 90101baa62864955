/**
 * Cluster quality of teacher responses, for the paper's "oracle responses are better
 * clustered" figures: a seeded 2-D UMAP embedding (umap-js), silhouette scores in the original
 * and the embedded space, and softmax / predictive-entropy helpers. Points are row-major
 * `Float32Array`s of `n * dim` values (logits or softmax outputs).
 *
 * UMAP rather than t-SNE: the paper shows t-SNE, but the npm t-SNE packages are exact O(n^2)
 * per iteration (about 38 s for 2,000 x 100 here) or unseedable (Math.random); umap-js takes a
 * random source and embeds 2,000 x 100 in a few seconds.
 *
 * @example
 * ```ts
 * import { silhouetteScore } from "./embedding.ts";
 * const pts = new Float32Array([0, 0, 0, 1, 10, 0, 10, 1]);
 * console.log(silhouetteScore(pts, 2, new Int32Array([0, 0, 1, 1])).toFixed(3)); // 0.900
 * ```
 * @module
 */

import { loadUmap } from "../deps.ts";
import { Rng } from "../rng.ts";

/** Options of {@link embed2d}. */
export interface EmbeddingOptions {
  /** Seed of the embedding's random source (default 0): same seed, same embedding. */
  seed?: number;
  /** UMAP neighbourhood size (default 15). */
  nNeighbors?: number;
  /** UMAP minimum distance between embedded points (default 0.1). */
  minDist?: number;
  /** Optimisation epochs (default: umap-js's choice, 500 below 10,000 points). */
  nEpochs?: number;
}

/**
 * A deterministic 2-D UMAP embedding of `n = points.length / dim` points; returns `n * 2`
 * values (x, y per point).
 *
 * @example
 * ```ts
 * import { embed2d } from "./embedding.ts";
 * const pts = Float32Array.from({ length: 40 * 3 }, (_, i) => (i % 3) + Math.floor(i / 60) * 10 + Math.sin(i));
 * const e = await embed2d(pts, 3, { seed: 1 });
 * console.log(e.length); // 80
 * ```
 */
export async function embed2d(
  points: Float32Array,
  dim: number,
  opts: EmbeddingOptions = {},
): Promise<Float32Array> {
  const n = checkPoints(points, dim);
  const { UMAP } = await loadUmap();
  const rng = new Rng(opts.seed ?? 0);
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.min(opts.nNeighbors ?? 15, n - 1),
    minDist: opts.minDist ?? 0.1,
    nEpochs: opts.nEpochs,
    random: () => rng.uniform(),
  });
  const rows = Array.from({ length: n }, (_, i) => Array.from(points.subarray(i * dim, (i + 1) * dim)));
  const out = umap.fit(rows);
  const flat = new Float32Array(n * 2);
  out.forEach((p, i) => flat.set(p.slice(0, 2), 2 * i));
  return flat;
}

/**
 * Silhouette of every point (Euclidean): s = (b - a) / max(a, b), with a the mean distance to
 * the other points of its class and b the smallest mean distance to another class; 0 for a
 * point alone in its class (as scikit-learn).
 *
 * @example
 * ```ts
 * import { silhouetteSamples } from "./embedding.ts";
 * const s = silhouetteSamples(new Float32Array([0, 1, 5, 6]), 1, new Int32Array([0, 0, 1, 1]));
 * console.log(Array.from(s, (v) => v.toFixed(2))); // ["0.82", "0.78", "0.78", "0.82"]
 * ```
 */
export function silhouetteSamples(points: Float32Array, dim: number, labels: Int32Array): Float64Array {
  const n = checkPoints(points, dim);
  if (labels.length !== n) throw new Error(`silhouette: ${labels.length} labels for ${n} points`);
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  if (classes.length < 2) throw new Error("silhouette needs at least two classes");
  const index = new Map(classes.map((c, j) => [c, j]));
  const counts = new Float64Array(classes.length);
  for (const l of labels) counts[index.get(l)!]++;
  const sums = new Float64Array(n * classes.length);
  for (let i = 0; i < n; i++) {
    const ci = index.get(labels[i])!;
    for (let j = i + 1; j < n; j++) {
      let d2 = 0;
      for (let k = 0; k < dim; k++) {
        const t = points[i * dim + k] - points[j * dim + k];
        d2 += t * t;
      }
      const d = Math.sqrt(d2);
      sums[i * classes.length + index.get(labels[j])!] += d;
      sums[j * classes.length + ci] += d;
    }
  }
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ci = index.get(labels[i])!;
    if (counts[ci] < 2) continue;
    const a = sums[i * classes.length + ci] / (counts[ci] - 1);
    let b = Infinity;
    for (let c = 0; c < classes.length; c++) {
      if (c !== ci && counts[c] > 0) b = Math.min(b, sums[i * classes.length + c] / counts[c]);
    }
    const m = Math.max(a, b);
    s[i] = m > 0 ? (b - a) / m : 0;
  }
  return s;
}

/**
 * Mean silhouette over all points, in [-1, 1]: near 1 for tight, separated classes, near 0
 * for overlapping ones.
 *
 * @example
 * ```ts
 * import { silhouetteScore } from "./embedding.ts";
 * console.log(silhouetteScore(new Float32Array([0, 1, 5, 6]), 1, new Int32Array([0, 1, 0, 1])) < 0); // true
 * ```
 */
export function silhouetteScore(points: Float32Array, dim: number, labels: Int32Array): number {
  const s = silhouetteSamples(points, dim, labels);
  return s.reduce((a, b) => a + b, 0) / s.length;
}

/**
 * Row-wise softmax of `logits` [n, k] at temperature `t` (default 1).
 *
 * @example
 * ```ts
 * import { softmaxRows } from "./embedding.ts";
 * console.log(Array.from(softmaxRows(new Float32Array([0, Math.log(3)]), 2))); // [0.25, 0.75]
 * ```
 */
export function softmaxRows(logits: ArrayLike<number>, k: number, t = 1): Float32Array {
  const n = logits.length / k;
  const out = new Float32Array(logits.length);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[i * k + j] / t);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.exp(logits[i * k + j] / t - max);
    for (let j = 0; j < k; j++) out[i * k + j] = Math.exp(logits[i * k + j] / t - max) / sum;
  }
  return out;
}

/**
 * Predictive entropy (nats) of each row of `logits` [n, k] at temperature `t`: 0 for a
 * certain prediction, ln k for a uniform one.
 *
 * @example
 * ```ts
 * import { predictiveEntropy } from "./embedding.ts";
 * console.log(predictiveEntropy(new Float32Array([0, 0, 0, 0, 100, 0, 0, 0]), 4)[0].toFixed(4)); // 1.3863
 * ```
 */
export function predictiveEntropy(logits: ArrayLike<number>, k: number, t = 1): Float64Array {
  const p = softmaxRows(logits, k, t);
  const n = logits.length / k;
  const h = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const v = p[i * k + j];
      if (v > 0) h[i] -= v * Math.log(v);
    }
  }
  return h;
}

function checkPoints(points: Float32Array, dim: number): number {
  if (!Number.isInteger(dim) || dim < 1 || points.length % dim !== 0) {
    throw new Error(`${points.length} values are not whole points of dimension ${dim}`);
  }
  const n = points.length / dim;
  if (n < 3) throw new Error(`need at least 3 points, got ${n}`);
  return n;
}
