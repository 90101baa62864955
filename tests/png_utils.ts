/**
 * Looking at rendered PNG figures in tests: decoding to RGB pixels, luminance statistics that
 * tell a figure from a blank image, and whether an exact colour occurs.
 * @module
 */
import assert from "node:assert/strict";
import { decodePng } from "../lib/deps.ts";
import { hexRgb } from "../lib/plots/colors.ts";

/** A decoded RGB(A) image. */
export interface Picture {
  width: number;
  height: number;
  /** RGB of pixel (x, y). */
  at(x: number, y: number): [number, number, number];
}

/** Decodes a PNG with 3 or 4 channels into a {@link Picture}. */
export function picture(png: Uint8Array): Picture {
  const img = decodePng(png);
  const ch = img.channels;
  assert.ok(ch === 3 || ch === 4, `unexpected ${ch} channels`);
  const d = img.data as Uint8Array;
  return {
    width: img.width,
    height: img.height,
    at: (x, y) => {
      const o = (y * img.width + x) * ch;
      return [d[o], d[o + 1], d[o + 2]];
    },
  };
}

/** Luminance statistics of a picture's rows `[from, to)`. */
export interface PixelStats {
  /** Variance of the luminance (0.299 R + 0.587 G + 0.114 B); near 0 for a blank image. */
  variance: number;
  /** The distinct colours, as `0xRRGGBB`. */
  colours: Set<number>;
  /** How many pixels have a luminance below 100 (text, axes). */
  dark: number;
}

/** Luminance variance, distinct colours and dark pixels of rows `rows` (default: all). */
export function pixelStats(p: Picture, rows: [number, number] = [0, p.height]): PixelStats {
  let sum = 0, sum2 = 0, n = 0, dark = 0;
  const colours = new Set<number>();
  for (let y = rows[0]; y < rows[1]; y++) {
    for (let x = 0; x < p.width; x++) {
      const [r, g, b] = p.at(x, y);
      const l = 0.299 * r + 0.587 * g + 0.114 * b;
      sum += l;
      sum2 += l * l;
      n++;
      if (l < 100) dark++;
      colours.add((r << 16) | (g << 8) | b);
    }
  }
  return { variance: sum2 / n - (sum / n) ** 2, colours, dark };
}

/** Whether the colour `hex` (`#rrggbb`) occurs exactly in some pixel. */
export function hasColour(p: Picture, hex: string): boolean {
  const [r, g, b] = hexRgb(hex);
  for (let y = 0; y < p.height; y++) {
    for (let x = 0; x < p.width; x++) {
      const c = p.at(x, y);
      if (c[0] === r && c[1] === g && c[2] === b) return true;
    }
  }
  return false;
}
