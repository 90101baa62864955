import assert from "node:assert/strict";
import { checkDataset, classCounts } from "../lib/data/dataset.ts";
import { makeSyntheticDataset } from "../lib/data/synthetic.ts";

Deno.test("synthetic dataset: requested sizes, balanced classes, consistent, deterministic per seed", () => {
  const ds = makeSyntheticDataset({
    numClasses: 7,
    trainCount: 70,
    testCount: 21,
    shape: [1, 12, 10],
    seed: 4,
  });
  checkDataset(ds);
  assert.deepEqual(ds.shape, [1, 12, 10]);
  assert.equal(ds.train.images.length, 70 * 120);
  assert.deepEqual(classCounts(ds.train, 7), new Array(7).fill(10));
  assert.deepEqual(classCounts(ds.test, 7), new Array(7).fill(3));
  assert.deepEqual(ds.classNames, [
    "class_0",
    "class_1",
    "class_2",
    "class_3",
    "class_4",
    "class_5",
    "class_6",
  ]);
  const again = makeSyntheticDataset({
    numClasses: 7,
    trainCount: 70,
    testCount: 21,
    shape: [1, 12, 10],
    seed: 4,
  });
  assert.deepEqual(again.train.images, ds.train.images);
  assert.deepEqual(again.test.labels, ds.test.labels);
  const other = makeSyntheticDataset({
    numClasses: 7,
    trainCount: 70,
    testCount: 21,
    shape: [1, 12, 10],
    seed: 5,
  });
  assert.notDeepEqual(other.train.images, ds.train.images);
  // Pixels use the range, and statistics match the pixels.
  const px = ds.train.images;
  const mean = px.reduce((a, b) => a + b, 0) / px.length / 255;
  assert.ok(Math.abs(ds.mean[0] - mean) < 1e-12);
  assert.ok(ds.std[0] > 0.05);
});

Deno.test("synthetic dataset is learnable: nearest class centroid classifies held-out images well", () => {
  const ds = makeSyntheticDataset({ seed: 0 }); // defaults: 10 classes, 1000/200 images of 3x32x32
  const size = 3 * 32 * 32;
  const centroids = Array.from({ length: 10 }, () => new Float64Array(size));
  const counts = classCounts(ds.train, 10);
  for (let i = 0; i < ds.train.count; i++) {
    const c = centroids[ds.train.labels[i]];
    for (let p = 0; p < size; p++) c[p] += ds.train.images[i * size + p] / counts[ds.train.labels[i]];
  }
  let correct = 0;
  for (let i = 0; i < ds.test.count; i++) {
    let best = -1, bestDist = Infinity;
    for (let k = 0; k < 10; k++) {
      let d = 0;
      for (let p = 0; p < size; p++) d += (ds.test.images[i * size + p] - centroids[k][p]) ** 2;
      if (d < bestDist) [best, bestDist] = [k, d];
    }
    if (best === ds.test.labels[i]) correct++;
  }
  assert.ok(correct / ds.test.count > 0.9, `nearest-centroid accuracy ${correct / ds.test.count}`);
});
