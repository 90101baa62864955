/**
 * Minimal SVG building blocks for the figures: elements as strings, XML escaping, compact
 * number labels, "nice" axis ticks and linear scales. No DOM, no browser.
 *
 * @example
 * ```ts
 * import { element, niceTicks } from "./svg.ts";
 * console.log(element("text", { x: 1, y: 2 }, "a<b")); // <text x="1" y="2">a&lt;b</text>
 * console.log(niceTicks(0, 1, 5)); // [0, 0.2, 0.4, 0.6, 0.8, 1]
 * ```
 * @module
 */

/** The one font every figure uses (shipped to the renderer from npm, see `render.ts`). */
export const FONT_FAMILY = "DejaVu Sans";

/** Attribute values; undefined ones are left out. */
export type Attrs = Record<string, string | number | undefined>;

/**
 * Escapes text for XML content and attribute values.
 *
 * @example
 * ```ts
 * import { escapeXml } from "./svg.ts";
 * console.log(escapeXml(`"a" & <b>`)); // &quot;a&quot; &amp; &lt;b&gt;
 * ```
 */
export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * One SVG element as a string. `content` is text (escaped) unless `raw` says it is markup
 * (child elements); without content the element is self-closing.
 *
 * @example
 * ```ts
 * import { element } from "./svg.ts";
 * console.log(element("g", {}, element("rect", { width: 2 }), true)); // <g><rect width="2"/></g>
 * ```
 */
export function element(name: string, attrs: Attrs, content?: string, raw = false): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${escapeXml(typeof v === "number" ? round(v) : v!)}"`)
    .join("");
  if (content === undefined) return `<${name}${a}/>`;
  return `<${name}${a}>${raw ? content : escapeXml(content)}</${name}>`;
}

/**
 * A whole SVG document of `width` x `height` on a white background.
 *
 * @example
 * ```ts
 * import { svgDocument } from "./svg.ts";
 * console.log(svgDocument(10, 10, "").startsWith("<svg")); // true
 * ```
 */
export function svgDocument(width: number, height: number, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}">` +
    `<rect width="${width}" height="${height}" fill="white"/>${body}</svg>`;
}

function round(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/**
 * A short label for a number: up to 3 significant digits, exponent form when very large or
 * small.
 *
 * @example
 * ```ts
 * import { formatNumber } from "./svg.ts";
 * console.log(formatNumber(0.30000000000000004), formatNumber(12345), formatNumber(2e-5)); // 0.3 1.23e+4 2e-5
 * ```
 */
export function formatNumber(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(2).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(3)));
}

/**
 * Evenly spaced round tick values covering [lo, hi] with about `count` intervals
 * (steps of 1, 2 or 5 times a power of ten).
 *
 * @example
 * ```ts
 * import { niceTicks } from "./svg.ts";
 * console.log(niceTicks(-0.3, 2.1, 4)); // [-0.5, 0, 0.5, 1, 1.5, 2, 2.5]
 * ```
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  // The step of 1, 2 or 5 times a power of ten whose interval count is closest to `count`.
  const step = [1, 2, 5, 10].map((m) => m * mag).reduce((best, s) =>
    Math.abs((hi - lo) / s - count) < Math.abs((hi - lo) / best - count) ? s : best
  );
  const first = Math.floor(lo / step + 1e-9) * step, last = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = first; v <= last + step / 2; v += step) {
    ticks.push(Number((Math.round(v / step) * step).toPrecision(12)));
  }
  return ticks;
}

/**
 * A linear map from `domain` to `range` (screen coordinates).
 *
 * @example
 * ```ts
 * import { linearScale } from "./svg.ts";
 * console.log(linearScale([0, 10], [100, 200])(5)); // 150
 * ```
 */
export function linearScale(domain: [number, number], range: [number, number]): (v: number) => number {
  const [d0, d1] = domain, [r0, r1] = range;
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** A plot area's edges in pixels. */
export interface PlotBox {
  /** Left edge. */
  left: number;
  /** Right edge. */
  right: number;
  /** Top edge. */
  top: number;
  /** Bottom edge. */
  bottom: number;
}

/**
 * The outline drawn around a plot area.
 *
 * @example
 * ```ts
 * import { plotFrame } from "./svg.ts";
 * console.log(plotFrame({ left: 0, right: 10, top: 0, bottom: 5 }, "#333").startsWith("<rect")); // true
 * ```
 */
export function plotFrame(box: PlotBox, stroke: string): string {
  return element("rect", {
    x: box.left,
    y: box.top,
    width: box.right - box.left,
    height: box.bottom - box.top,
    fill: "none",
    stroke,
  });
}

/**
 * Horizontal grid lines across `box` at each y tick, with the tick's label left of the box.
 *
 * @example
 * ```ts
 * import { yGrid } from "./svg.ts";
 * const parts = yGrid({ left: 10, right: 50, top: 0, bottom: 40 }, [0, 1], (v) => 40 - 40 * v, 12);
 * console.log(parts.length); // 4
 * ```
 */
export function yGrid(
  box: PlotBox,
  ticks: readonly number[],
  y: (v: number) => number,
  fontSize: number,
): string[] {
  return ticks.flatMap((t) => [
    element("line", { x1: box.left, x2: box.right, y1: y(t), y2: y(t), stroke: "#e6e6e6" }),
    element(
      "text",
      { x: box.left - 6, y: y(t) + 4, "text-anchor": "end", "font-size": fontSize },
      formatNumber(t),
    ),
  ]);
}
