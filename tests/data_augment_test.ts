import assert from "node:assert/strict";
import { assembleBatch, normalizationTable, planCropFlip, planIdentity } from "../lib/data/augment.ts";
import { Rng } from "../lib/rng.ts";

// 1x3x3 image:  1 2 3 / 4 5 6 / 7 8 9. With mean 0 and std 1/255 normalisation returns raw pixels.
const IMAGE = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
const RAW = normalizationTable([0], [1 / 255]);

function crop(top: number, left: number, flip: boolean, padding = 1): number[] {
  const plan = {
    indices: new Int32Array([0]),
    tops: new Uint8Array([top]),
    lefts: new Uint8Array([left]),
    flips: new Uint8Array([flip ? 1 : 0]),
  };
  return Array.from(assembleBatch(IMAGE, [1, 3, 3], plan, padding, RAW), Math.round);
}

Deno.test("crop and flip match a hand-computed example (zero padding of the raw pixels)", () => {
  // Padded (1): rows 0 0 0 0 0 / 0 1 2 3 0 / 0 4 5 6 0 / 0 7 8 9 0 / 0 0 0 0 0.
  assert.deepEqual(crop(1, 1, false), [1, 2, 3, 4, 5, 6, 7, 8, 9]); // centre = the image
  assert.deepEqual(crop(0, 2, false), [0, 0, 0, 2, 3, 0, 5, 6, 0]);
  assert.deepEqual(crop(0, 2, true), [0, 0, 0, 0, 3, 2, 0, 6, 5]); // the crop is flipped, not the source
  assert.deepEqual(crop(2, 0, true), [5, 4, 0, 8, 7, 0, 0, 0, 0]);
  assert.deepEqual(crop(1, 1, true), [3, 2, 1, 6, 5, 4, 9, 8, 7]);
  // Offsets of 2 * padding with padding 4 can push the image out of view except a corner.
  assert.deepEqual(crop(0, 0, false, 4), new Array(9).fill(0));
  assert.deepEqual(crop(6, 6, false, 4), [9, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(crop(6, 6, true, 4), [0, 0, 9, 0, 0, 0, 0, 0, 0]);
});

Deno.test("padding becomes (0 - mean) / std after normalisation, per channel", () => {
  const mean = [0.5071, 0.4867, 0.4408], std = [0.2675, 0.2565, 0.2761];
  const table = normalizationTable(mean, std);
  const images = new Uint8Array(3 * 2 * 2).fill(200);
  const plan = {
    indices: new Int32Array([0]),
    tops: new Uint8Array([0]),
    lefts: new Uint8Array([4]),
    flips: new Uint8Array([0]),
  };
  const x = assembleBatch(images, [3, 2, 2], plan, 4, table);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(x[c * 4 + i] - (0 - mean[c]) / std[c]) < 1e-6);
  }
});

Deno.test("normalisation: ToTensor then Normalize with float32 rounding at each step", () => {
  const mean = [0.4914, 0.4822, 0.4465], std = [0.2470, 0.2435, 0.2616];
  const t = normalizationTable(mean, std);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    for (const v of [0, 1, 17, 128, 254, 255]) {
      assert.equal(t[c * 256 + v], f(f(f(v / 255) - f(mean[c])) / f(std[c])));
      assert.ok(Math.abs(t[c * 256 + v] - (v / 255 - mean[c]) / std[c]) < 1e-6);
    }
  }
  assert.ok(Math.abs(t[0] - -1.98947) < 1e-5);
  assert.ok(Math.abs(t[255] - 2.05911) < 1e-5);
});

Deno.test("planCropFlip draws offsets uniformly in [0, 2 * padding] and flips half the time", () => {
  const plan = planCropFlip(new Int32Array(18000), new Rng(7), 4);
  for (const offsets of [plan.tops, plan.lefts]) {
    const hist = new Array(9).fill(0);
    for (const o of offsets) hist[o]++;
    assert.equal(hist.length, 9);
    assert.ok(Math.max(...offsets) === 8 && Math.min(...offsets) === 0);
    for (const h of hist) assert.ok(h > 1800 && h < 2200, `offset histogram ${hist}`);
  }
  const flips = plan.flips.reduce((a, b) => a + b, 0);
  assert.ok(flips > 8700 && flips < 9300, `flips ${flips}`);
  assert.deepEqual(
    planCropFlip(new Int32Array(5), new Rng(7), 4),
    planCropFlip(new Int32Array(5), new Rng(7), 4),
  );
});

/** torchvision's steps written out literally: pad the HxW planes with zeros, crop, flip, normalise. */
function reference(
  img: Uint8Array,
  c: number,
  h: number,
  w: number,
  top: number,
  left: number,
  flip: boolean,
  pad: number,
  table: Float32Array,
) {
  const ph = h + 2 * pad, pw = w + 2 * pad;
  const padded = new Uint8Array(c * ph * pw);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) padded[(ch * ph + y + pad) * pw + x + pad] = img[(ch * h + y) * w + x];
    }
  }
  const out = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const cx = flip ? w - 1 - x : x;
        out[(ch * h + y) * w + x] = table[ch * 256 + padded[(ch * ph + y + top) * pw + cx + left]];
      }
    }
  }
  return out;
}

Deno.test("assembleBatch equals the literal pad-crop-flip-normalise on random 32x32 batches", () => {
  const rng = new Rng(3);
  const n = 20, shape = [3, 32, 32] as const, size = 3 * 32 * 32;
  const images = Uint8Array.from({ length: n * size }, () => rng.int(256));
  const table = normalizationTable([0.5071, 0.4867, 0.4408], [0.2675, 0.2565, 0.2761]);
  const indices = Int32Array.from({ length: 16 }, () => rng.int(n));
  const plan = planCropFlip(indices, rng, 4);
  const x = assembleBatch(images, shape, plan, 4, table);
  for (let i = 0; i < indices.length; i++) {
    const ref = reference(
      images.subarray(indices[i] * size, (indices[i] + 1) * size),
      3,
      32,
      32,
      plan.tops[i],
      plan.lefts[i],
      plan.flips[i] === 1,
      4,
      table,
    );
    assert.deepEqual(x.subarray(i * size, (i + 1) * size), ref, `image ${i}`);
  }
  // No augmentation: exactly the normalised image.
  const plain = assembleBatch(images, shape, planIdentity(new Int32Array([5]), 4), 4, table);
  for (let p = 0; p < size; p++) {
    assert.equal(plain[p], table[Math.floor(p / 1024) * 256 + images[5 * size + p]]);
  }
});
