import assert from "node:assert/strict";
import {
  allocPixels,
  channelStats,
  checkDataset,
  classCounts,
  DataError,
  type ImageDataset,
  imageSize,
} from "../lib/data/dataset.ts";

function tiny(overrides: Partial<ImageDataset> = {}): ImageDataset {
  const split = { count: 2, images: allocPixels(2 * 2 * 1 * 2), labels: new Int32Array([0, 1]) };
  return {
    name: "tiny",
    numClasses: 2,
    classNames: ["a", "b"],
    shape: [2, 1, 2],
    mean: [0.5, 0.5],
    std: [0.2, 0.2],
    train: split,
    test: split,
    ...overrides,
  };
}

Deno.test("channelStats: per-channel mean and population std of pixel/255", () => {
  // Two images of 2 channels x 1 x 2: channel 0 holds 0, 255, 0, 255; channel 1 holds 51 everywhere.
  const images = new Uint8Array([0, 255, 51, 51, 0, 255, 51, 51]);
  const s = channelStats({ count: 2, images, labels: new Int32Array(2) }, [2, 1, 2]);
  assert.deepEqual(s.mean, [0.5, 0.2]);
  assert.deepEqual(s.std, [0.5, 0]);
});

Deno.test("classCounts, imageSize and SharedArrayBuffer pixels", () => {
  assert.deepEqual(
    classCounts({ count: 4, images: new Uint8Array(4), labels: new Int32Array([2, 0, 2, 2]) }, 3),
    [1, 0, 3],
  );
  assert.equal(imageSize([3, 32, 32]), 3072);
  const px = allocPixels(10);
  assert.ok(px.buffer instanceof SharedArrayBuffer);
  assert.equal(px.length, 10);
});

Deno.test("checkDataset accepts a consistent dataset and names the problem otherwise", () => {
  checkDataset(tiny());
  const bad: [Partial<ImageDataset>, RegExp][] = [
    [{ classNames: ["a"] }, /^dataset tiny: 1 class names for 2 classes$/],
    [{ mean: [0.5] }, /mean\/std need 2 values/],
    [{ std: [0.2, 0] }, /std must be positive/],
    [
      { test: { count: 3, images: new Uint8Array(10), labels: new Int32Array(3) } },
      /test split has 10 pixel bytes for 3 images/,
    ],
    [
      { train: { count: 2, images: new Uint8Array(8), labels: new Int32Array([0, 2]) } },
      /train label 2 at index 1 outside \[0, 2\)/,
    ],
  ];
  for (const [o, re] of bad) {
    assert.throws(() => checkDataset(tiny(o)), (e) => e instanceof DataError && re.test(e.message));
  }
});
