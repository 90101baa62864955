/**
 * The paper's training augmentation and input normalisation, on raw uint8 CHW pixels:
 * torchvision `RandomCrop(size, padding=4)` (zero padding of the raw pixels, offsets drawn
 * uniformly in [0, 2 * padding] for rows then columns), `RandomHorizontalFlip(p=0.5)` applied to
 * the crop, then `ToTensor()` (/255) and `Normalize(mean, std)`, each step rounded to float32 as
 * PyTorch computes it. A batch is planned first (indices and crop/flip draws, cheap and seeded)
 * and assembled after (the pixel work, which may run in a worker).
 *
 * @example
 * ```ts
 * import { assembleBatch, normalizationTable, planCropFlip } from "./augment.ts";
 * import { Rng } from "../rng.ts";
 * const images = new Uint8Array(2 * 1 * 4 * 4).fill(255);
 * const plan = planCropFlip(new Int32Array([1, 0]), new Rng(0), 1);
 * const x = assembleBatch(images, [1, 4, 4], plan, 1, normalizationTable([0.5], [0.5]));
 * console.log(x.length); // 32
 * ```
 * @module
 */

import type { Rng } from "../rng.ts";

/** Which images go into a batch and how each is cropped and flipped. */
export interface BatchPlan {
  /** Image indices into the split. */
  indices: Int32Array;
  /** Crop row offset in the padded image, [0, 2 * padding]. */
  tops: Uint8Array;
  /** Crop column offset in the padded image, [0, 2 * padding]. */
  lefts: Uint8Array;
  /** 1 where the crop is mirrored left-right. */
  flips: Uint8Array;
}

/**
 * Plans a batch with random crops and flips, drawing from `rng` per image in torchvision's order:
 * crop row, crop column, then the flip coin.
 *
 * @example
 * ```ts
 * import { planCropFlip } from "./augment.ts";
 * import { Rng } from "../rng.ts";
 * const p = planCropFlip(new Int32Array([5]), new Rng(1), 4);
 * console.log(p.tops[0] <= 8 && p.lefts[0] <= 8); // true
 * ```
 */
export function planCropFlip(indices: Int32Array, rng: Rng, padding: number): BatchPlan {
  const n = indices.length;
  const plan = { indices, tops: new Uint8Array(n), lefts: new Uint8Array(n), flips: new Uint8Array(n) };
  for (let i = 0; i < n; i++) {
    plan.tops[i] = rng.int(2 * padding + 1);
    plan.lefts[i] = rng.int(2 * padding + 1);
    plan.flips[i] = rng.uniform() < 0.5 ? 1 : 0;
  }
  return plan;
}

/**
 * Plans a batch without augmentation (the centre "crop" of the padded image is the image).
 *
 * @example
 * ```ts
 * import { planIdentity } from "./augment.ts";
 * console.log(planIdentity(new Int32Array([0, 1]), 4).tops); // Uint8Array [4, 4]
 * ```
 */
export function planIdentity(indices: Int32Array, padding: number): BatchPlan {
  const n = indices.length;
  return {
    indices,
    tops: new Uint8Array(n).fill(padding),
    lefts: new Uint8Array(n).fill(padding),
    flips: new Uint8Array(n),
  };
}

/**
 * Float32 lookup table `[C * 256]`: `(v / 255 - mean[c]) / std[c]` with float32 rounding after
 * each operation, exactly as `ToTensor()` then `Normalize()` compute it in PyTorch.
 *
 * @example
 * ```ts
 * import { normalizationTable } from "./augment.ts";
 * const t = normalizationTable([0.5], [0.25]);
 * console.log(t[0], t[255]); // -2 2
 * ```
 */
export function normalizationTable(mean: readonly number[], std: readonly number[]): Float32Array {
  const f = Math.fround;
  const table = new Float32Array(mean.length * 256);
  for (let c = 0; c < mean.length; c++) {
    const m = f(mean[c]), s = f(std[c]);
    for (let v = 0; v < 256; v++) table[c * 256 + v] = f(f(f(v / 255) - m) / s);
  }
  return table;
}

/**
 * Builds the normalised NCHW float32 batch of a plan from raw CHW uint8 images. Pixels the
 * crop takes from the padding are raw 0, i.e. `(0 - mean) / std` after normalisation.
 *
 * @example
 * ```ts
 * import { assembleBatch, normalizationTable } from "./augment.ts";
 * const images = new Uint8Array([10, 20, 30, 40]); // one 1x2x2 image
 * const plan = { indices: new Int32Array([0]), tops: new Uint8Array([1]), lefts: new Uint8Array([0]), flips: new Uint8Array([1]) };
 * // Crop offset (1, 0) in the 1-padded image, then flipped.
 * const x = assembleBatch(images, [1, 2, 2], plan, 1, normalizationTable([0], [1 / 255]));
 * console.log(Array.from(x, Math.round)); // [10, 0, 30, 0]
 * ```
 */
export function assembleBatch(
  images: Uint8Array,
  shape: readonly [number, number, number],
  plan: BatchPlan,
  padding: number,
  table: Float32Array,
  out?: Float32Array,
): Float32Array {
  const [c, h, w] = shape;
  const size = c * h * w;
  const n = plan.indices.length;
  const x = out ?? new Float32Array(n * size);
  for (let i = 0; i < n; i++) {
    const src = plan.indices[i] * size;
    const dst = i * size;
    const dy = plan.tops[i] - padding;
    const dx = plan.lefts[i] - padding;
    const flip = plan.flips[i] === 1;
    // Output columns whose source column lies inside the image.
    const x0 = flip ? Math.max(0, dx) : Math.max(0, -dx);
    const x1 = flip ? Math.min(w, w + dx) : Math.min(w, w - dx);
    for (let ch = 0; ch < c; ch++) {
      const lut = ch * 256;
      const zero = table[lut];
      for (let y = 0; y < h; y++) {
        const row = dst + (ch * h + y) * w;
        const sy = y + dy;
        if (sy < 0 || sy >= h || x0 >= x1) {
          x.fill(zero, row, row + w);
          continue;
        }
        const srcRow = src + (ch * h + sy) * w;
        for (let xo = 0; xo < x0; xo++) x[row + xo] = zero;
        if (flip) {
          const base = srcRow + w - 1 + dx;
          for (let xo = x0; xo < x1; xo++) x[row + xo] = table[lut + images[base - xo]];
        } else {
          const base = srcRow + dx;
          for (let xo = x0; xo < x1; xo++) x[row + xo] = table[lut + images[base + xo]];
        }
        for (let xo = x1; xo < w; xo++) x[row + xo] = zero;
      }
    }
  }
  return x;
}
