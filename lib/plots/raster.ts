/**
 * Raw-pixel side of the figures: normalised NCHW images back to RGB, relevance maps to a
 * diverging colour image, nearest-neighbour upscaling, and PNG encoding (fast-png).
 *
 * @example
 * ```ts
 * import { encodeRgbPng, relevanceToRgb } from "./raster.ts";
 * const rgb = relevanceToRgb(new Float32Array([-1, 0, 1, 0.5]), 2, 2);
 * console.log(encodeRgbPng(rgb, 2, 2).length > 50); // true
 * ```
 * @module
 */

import { encodePng } from "../deps.ts";
import { divergingColor } from "./colors.ts";

/**
 * One image `index` of an NCHW batch, de-normalised (`x * std + mean`) and clipped to [0, 1],
 * as interleaved 8-bit RGB (grey images are repeated into three channels).
 *
 * @example
 * ```ts
 * import { imageToRgb } from "./raster.ts";
 * const x = new Float32Array([0, 1, -1, 0]); // one 1-channel 2x2 image
 * console.log(Array.from(imageToRgb(x, 0, [1, 2, 2], [0.5], [0.5]).slice(0, 6))); // [128, 128, 128, 255, 255, 255]
 * ```
 */
export function imageToRgb(
  images: Float32Array,
  index: number,
  [c, h, w]: readonly [number, number, number],
  mean: readonly number[],
  std: readonly number[],
): Uint8Array {
  if (c !== 1 && c !== 3) throw new Error(`images need 1 or 3 channels, got ${c}`);
  const out = new Uint8Array(h * w * 3);
  const base = index * c * h * w;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < 3; k++) {
        const ch = c === 1 ? 0 : k;
        const v = images[base + (ch * h + y) * w + x] * std[ch] + mean[ch];
        out[(y * w + x) * 3 + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
      }
    }
  }
  return out;
}

/**
 * Per-pixel relevance of image `index` of an NCHW batch: the sum over channels, [h * w].
 *
 * @example
 * ```ts
 * import { pixelRelevance } from "./raster.ts";
 * console.log(Array.from(pixelRelevance(new Float32Array([1, 2, 3, 4]), 0, [2, 1, 2]))); // [4, 6]
 * ```
 */
export function pixelRelevance(
  relevance: Float32Array,
  index: number,
  [c, h, w]: readonly [number, number, number],
): Float32Array {
  const out = new Float32Array(h * w);
  const base = index * c * h * w;
  for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) out[i] += relevance[base + k * h * w + i];
  return out;
}

/**
 * A signed map [h * w] as RGB with the diverging map, symmetric around 0: `scale` (default
 * the largest |value|) maps to full red / blue.
 *
 * @example
 * ```ts
 * import { relevanceToRgb } from "./raster.ts";
 * console.log(Array.from(relevanceToRgb(new Float32Array([0]), 1, 1))); // [247, 247, 247]
 * ```
 */
export function relevanceToRgb(map: Float32Array, h: number, w: number, scale?: number): Uint8Array {
  let s = scale ?? 0;
  if (scale === undefined) { for (const v of map) s = Math.max(s, Math.abs(v)); }
  const out = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w; i++) out.set(divergingColor(s > 0 ? map[i] / s : 0), 3 * i);
  return out;
}

/**
 * Enlarges an RGB image by an integer `factor`, each pixel becoming a factor x factor block
 * (keeps 32x32 CIFAR pixels sharp in figures).
 *
 * @example
 * ```ts
 * import { upscaleNearest } from "./raster.ts";
 * console.log(upscaleNearest(new Uint8Array([1, 2, 3]), 1, 1, 2).length); // 12
 * ```
 */
export function upscaleNearest(rgb: Uint8Array, w: number, h: number, factor: number): Uint8Array {
  const W = w * factor, out = new Uint8Array(W * h * factor * 3);
  for (let y = 0; y < h * factor; y++) {
    for (let x = 0; x < W; x++) {
      const src = (Math.floor(y / factor) * w + Math.floor(x / factor)) * 3;
      out.set(rgb.subarray(src, src + 3), (y * W + x) * 3);
    }
  }
  return out;
}

/**
 * Interleaved 8-bit RGB as PNG bytes.
 *
 * @example
 * ```ts
 * import { encodeRgbPng } from "./raster.ts";
 * const png = encodeRgbPng(new Uint8Array([255, 0, 0]), 1, 1);
 * console.log(png[1], png[2], png[3]); // 80 78 71 ("PNG")
 * ```
 */
export function encodeRgbPng(rgb: Uint8Array, w: number, h: number): Uint8Array {
  if (rgb.length !== w * h * 3) throw new Error(`${rgb.length} bytes are not a ${w}x${h} RGB image`);
  return encodePng({ width: w, height: h, data: rgb, channels: 3, depth: 8 });
}
