/**
 * Cluster-quality helpers on synthetic data: silhouettes (hand-computed values, separated vs
 * shuffled labels), a seeded deterministic 2-D embedding that keeps separated clusters apart,
 * softmax and predictive entropy.
 */
import assert from "node:assert/strict";
import {
  embed2d,
  predictiveEntropy,
  silhouetteSamples,
  silhouetteScore,
  softmaxRows,
} from "../lib/explain/embedding.ts";
import { Rng } from "../lib/rng.ts";

/** `classes` Gaussian blobs of `perClass` points in `dim` dimensions, centres `spread` apart. */
function blobs(classes: number, perClass: number, dim: number, spread: number, seed: number) {
  const rng = new Rng(seed);
  const centres = Array.from(
    { length: classes },
    () => Array.from({ length: dim }, () => spread * rng.normal()),
  );
  const n = classes * perClass;
  const points = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % classes;
    for (let d = 0; d < dim; d++) points[i * dim + d] = centres[labels[i]][d] + rng.normal();
  }
  return { points, labels };
}

function shuffled(labels: Int32Array, seed: number): Int32Array {
  const out = Int32Array.from(labels);
  const rng = new Rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Fraction of points whose nearest other point (2-D) has the same label. */
function nearestNeighbourAgreement(e: Float32Array, labels: Int32Array): number {
  const n = labels.length;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    let best = -1, bestD = Infinity;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const d = (e[2 * i] - e[2 * j]) ** 2 + (e[2 * i + 1] - e[2 * j + 1]) ** 2;
      if (d < bestD) [best, bestD] = [j, d];
    }
    if (labels[best] === labels[i]) hits++;
  }
  return hits / n;
}

Deno.test("silhouette matches hand-computed values", () => {
  // 1-D: {0, 1} vs {5, 6}: point 0 has a = 1, b = 5.5, s = 4.5 / 5.5.
  const s = silhouetteSamples(new Float32Array([0, 1, 5, 6]), 1, new Int32Array([0, 0, 1, 1]));
  const want = [4.5 / 5.5, 3.5 / 4.5, 3.5 / 4.5, 4.5 / 5.5];
  s.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `${i}: ${v} vs ${want[i]}`));
  // A point alone in its class scores 0 (scikit-learn's convention).
  const lone = silhouetteSamples(new Float32Array([0, 1, 9]), 1, new Int32Array([0, 0, 1]));
  assert.equal(lone[2], 0);
  assert.throws(
    () => silhouetteScore(new Float32Array([0, 1, 2]), 1, new Int32Array([0, 0, 0])),
    /two classes/,
  );
});

Deno.test("separated clusters score high, shuffled labels score near 0", () => {
  const { points, labels } = blobs(5, 60, 20, 5, 1);
  const good = silhouetteScore(points, 20, labels);
  assert.ok(good > 0.7, `separated silhouette ${good}`);
  const bad = silhouetteScore(points, 20, shuffled(labels, 2));
  // Not exactly 0: b takes the nearest other class, a slight negative bias (about -0.05 here).
  assert.ok(Math.abs(bad) < 0.1, `shuffled silhouette ${bad}`);
});

Deno.test("the 2-D embedding is seeded, deterministic and keeps separated clusters apart", async () => {
  const { points, labels } = blobs(5, 60, 20, 5, 3);
  const a = await embed2d(points, 20, { seed: 7 });
  const b = await embed2d(points, 20, { seed: 7 });
  const c = await embed2d(points, 20, { seed: 8 });
  assert.equal(a.length, 2 * labels.length);
  assert.ok(a.every(Number.isFinite));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const s2d = silhouetteScore(a, 2, labels);
  assert.ok(s2d > 0.5, `2-D silhouette ${s2d}`);
  assert.ok(nearestNeighbourAgreement(a, labels) >= 0.98);
  assert.ok(Math.abs(silhouetteScore(a, 2, shuffled(labels, 4))) < 0.1);
});

Deno.test("softmax rows sum to 1 and predictive entropy spans 0 to ln K", () => {
  const logits = new Float32Array([0, 0, 0, 0, 50, 0, 0, 0, 1, 2, 3, 4]);
  const p = softmaxRows(logits, 4);
  for (let i = 0; i < 3; i++) {
    const sum = p.subarray(4 * i, 4 * i + 4).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-6);
  }
  const h = predictiveEntropy(logits, 4);
  assert.ok(Math.abs(h[0] - Math.log(4)) < 1e-6);
  assert.ok(h[1] < 1e-15 + 1e-18 && h[1] >= 0);
  assert.ok(h[2] > 0 && h[2] < Math.log(4));
  // Temperature flattens: higher T, higher entropy.
  assert.ok(predictiveEntropy(logits, 4, 4)[2] > h[2]);
});
