/**
 * Colour maps for the figures: a categorical palette for classes (Tableau 10, then 20, then
 * golden-angle hues), and a diverging blue-white-red map for signed relevance (LRP's
 * convention: red positive, blue negative).
 *
 * @example
 * ```ts
 * import { categoricalColor, divergingColor, rgbHex } from "./colors.ts";
 * console.log(categoricalColor(0, 10), rgbHex(divergingColor(1))); // #1f77b4 #b2182b
 * ```
 * @module
 */

/** An 8-bit RGB triple. */
export type Rgb = [number, number, number];

const TAB10 = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];
const TAB20 = [
  "#1f77b4",
  "#aec7e8",
  "#ff7f0e",
  "#ffbb78",
  "#2ca02c",
  "#98df8a",
  "#d62728",
  "#ff9896",
  "#9467bd",
  "#c5b0d5",
  "#8c564b",
  "#c49c94",
  "#e377c2",
  "#f7b6d2",
  "#7f7f7f",
  "#c7c7c7",
  "#bcbd22",
  "#dbdb8d",
  "#17becf",
  "#9edae5",
]; // deno-fmt-ignore

/**
 * Colour of class `i` out of `count` classes, as `#rrggbb`.
 *
 * @example
 * ```ts
 * import { categoricalColor } from "./colors.ts";
 * console.log(categoricalColor(1, 20), categoricalColor(50, 100).startsWith("#")); // #aec7e8 true
 * ```
 */
export function categoricalColor(i: number, count: number): string {
  if (count <= 10) return TAB10[i % 10];
  if (count <= 20) return TAB20[i % 20];
  // Golden-angle hue steps keep neighbouring class indices far apart on the colour wheel.
  const h = (i * 137.508) % 360, s = 0.65, l = [0.45, 0.6, 0.35][i % 3];
  return rgbHex(hslToRgb(h, s, l));
}

/**
 * RGB triple as `#rrggbb`.
 *
 * @example
 * ```ts
 * import { rgbHex } from "./colors.ts";
 * console.log(rgbHex([255, 0, 16])); // #ff0010
 * ```
 */
export function rgbHex(c: Rgb): string {
  return "#" + c.map((v) => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, "0")).join("");
}

/**
 * `#rrggbb` as an RGB triple.
 *
 * @example
 * ```ts
 * import { hexRgb } from "./colors.ts";
 * console.log(hexRgb("#1f77b4")); // [31, 119, 180]
 * ```
 */
export function hexRgb(hex: string): Rgb {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function hslToRgb(h: number, s: number, l: number): Rgb {
  const c = (1 - Math.abs(2 * l - 1)) * s, x = c * (1 - Math.abs(((h / 60) % 2) - 1)), m = l - c / 2;
  const [r, g, b] = h < 60
    ? [c, x, 0]
    : h < 120
    ? [x, c, 0]
    : h < 180
    ? [0, c, x]
    : h < 240
    ? [0, x, c]
    : h < 300
    ? [x, 0, c]
    : [c, 0, x];
  return [(r + m) * 255, (g + m) * 255, (b + m) * 255];
}

// ColorBrewer RdBu (11 classes), from -1 (blue) through white to +1 (red).
const RDBU: Rgb[] = [
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
]; // deno-fmt-ignore

/**
 * Diverging colour of `t` in [-1, 1] (clamped): blue for negative, white at 0, red for
 * positive. t = ±1 maps to the second-darkest shades so extremes stay readable.
 *
 * @example
 * ```ts
 * import { divergingColor } from "./colors.ts";
 * console.log(divergingColor(0), divergingColor(-1)); // [247, 247, 247] [33, 102, 172]
 * ```
 */
export function divergingColor(t: number): Rgb {
  const v = Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0));
  const pos = 5 + v * 4; // 1 .. 9 of the 11 stops
  const i = Math.min(9, Math.floor(pos)), f = pos - i;
  const a = RDBU[i], b = RDBU[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)) as Rgb;
}
