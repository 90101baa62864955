/**
 * Charts as SVG strings: line, grouped bar, histogram, reliability diagram and class-coloured
 * scatter. Each takes plain arrays and returns a complete SVG document; `render.ts` turns it
 * into PNG.
 *
 * @example
 * ```ts
 * import { lineChart } from "./charts.ts";
 * const svg = lineChart({ title: "loss", xLabel: "epoch", yLabel: "CE", series: [{ label: "train", x: [1, 2, 3], y: [2, 1.5, 1.2] }] });
 * console.log(svg.includes("<polyline")); // true
 * ```
 * @module
 */

import { categoricalColor } from "./colors.ts";
import { element, formatNumber, linearScale, niceTicks, plotFrame, svgDocument, yGrid } from "./svg.ts";

/** Size of a chart in SVG units (pixels at scale 1). */
export interface ChartSize {
  /** Width (default 640). */
  width?: number;
  /** Height (default 440). */
  height?: number;
}

/** A titled chart with axis labels. */
export interface ChartText extends ChartSize {
  /** Title above the plot. */
  title: string;
  /** x axis label. */
  xLabel?: string;
  /** y axis label. */
  yLabel?: string;
}

interface Axes {
  x: (v: number) => number;
  y: (v: number) => number;
  box: { left: number; right: number; top: number; bottom: number };
  svg: string;
}

/** A legend entry. */
interface LegendItem {
  label: string;
  color: string;
  shape?: "line" | "box" | "dot";
  /** Box fill (e.g. `url(#hatch)`) instead of the translucent colour; the colour outlines it. */
  fill?: string;
  /** Box fill opacity (default 0.75). */
  opacity?: number;
}

const TITLE_BAND = 40;

/** Draws title, frame, grid, ticks and labels, and returns the data-to-screen scales. */
function axes(
  t: ChartText,
  xDomain: [number, number],
  yDomain: [number, number],
  opts: {
    legendWidth?: number;
    xTicks?: number[];
    yTicks?: number[];
    /** Legend entries, laid out in rows between the title and the plot (never over the data). */
    legend?: LegendItem[];
    /** Extra height under the plot (below the x axis label), e.g. for a second panel. */
    footer?: number;
  } = {},
): Axes {
  const width = t.width ?? 640, height = t.height ?? 440;
  const right = width - 20 - (opts.legendWidth ?? 0);
  const rows = legendRows(opts.legend ?? [], 72, right);
  const box = {
    left: 72,
    right,
    top: TITLE_BAND + 10 + rows.height,
    bottom: height - 56 - (opts.footer ?? 0),
  };
  const xt = opts.xTicks ?? niceTicks(xDomain[0], xDomain[1], 6);
  const yt = opts.yTicks ?? niceTicks(yDomain[0], yDomain[1], 5);
  // Axes extend to the outer ticks; an empty tick list (categorical x) keeps the domain.
  const xd: [number, number] = xt.length
    ? [Math.min(xDomain[0], xt[0]), Math.max(xDomain[1], xt.at(-1)!)]
    : xDomain;
  const yd: [number, number] = yt.length
    ? [Math.min(yDomain[0], yt[0]), Math.max(yDomain[1], yt.at(-1)!)]
    : yDomain;
  const x = linearScale(xd, [box.left, box.right]), y = linearScale(yd, [box.bottom, box.top]);
  const parts: string[] = [
    element("text", { x: width / 2, y: 26, "text-anchor": "middle", "font-size": 17 }, t.title),
    rows.svg,
  ];
  parts.push(...yGrid(box, yt, y, 12));
  for (const v of xt) {
    parts.push(element("line", { x1: x(v), x2: x(v), y1: box.bottom, y2: box.bottom + 4, stroke: "#333" }));
    parts.push(
      element(
        "text",
        { x: x(v), y: box.bottom + 18, "text-anchor": "middle", "font-size": 12 },
        formatNumber(v),
      ),
    );
  }
  parts.push(plotFrame(box, "#333"));
  if (t.xLabel) {
    parts.push(
      element("text", {
        x: (box.left + box.right) / 2,
        y: box.bottom + 42,
        "text-anchor": "middle",
        "font-size": 14,
      }, t.xLabel),
    );
  }
  if (t.yLabel) {
    const cy = (box.top + box.bottom) / 2;
    parts.push(
      element(
        "text",
        { x: 18, y: cy, "text-anchor": "middle", "font-size": 14, transform: `rotate(-90 18 ${cy})` },
        t.yLabel,
      ),
    );
  }
  return { x, y, box, svg: parts.join("") };
}

/** One legend mark (line, box, dot or hatched box) at (x0, cy). */
function legendMark(it: LegendItem, x0: number, cy: number): string {
  if (it.shape === "line") {
    return element("line", { x1: x0, x2: x0 + 18, y1: cy, y2: cy, stroke: it.color, "stroke-width": 2.5 });
  }
  if (it.shape === "dot") return element("circle", { cx: x0 + 9, cy, r: 4.5, fill: it.color });
  return element("rect", {
    x: x0 + 2,
    y: cy - 6,
    width: 14,
    height: 12,
    fill: it.fill ?? it.color,
    "fill-opacity": it.fill ? undefined : it.opacity ?? 0.75,
    stroke: it.fill ? it.color : undefined,
  });
}

/** Width of one legend entry in a row (12 px DejaVu Sans averages about 7 px per character). */
const entryWidth = (it: LegendItem) => 24 + 7 * it.label.length + 16;

/**
 * Legend entries flowed into rows from `left` to `right` just under the title band; returns the
 * markup and the height the rows take (0 without entries).
 */
function legendRows(items: LegendItem[], left: number, right: number): { svg: string; height: number } {
  if (!items.length) return { svg: "", height: 0 };
  const parts: string[] = [];
  let x = left, row = 0;
  for (const it of items) {
    if (x > left && x + entryWidth(it) - 16 > right) {
      row++;
      x = left;
    }
    const cy = TITLE_BAND + 4 + row * 18;
    parts.push(legendMark(it, x, cy) + element("text", { x: x + 24, y: cy + 4, "font-size": 12 }, it.label));
    x += entryWidth(it);
  }
  return { svg: parts.join(""), height: (row + 1) * 18 };
}

/** A column legend at (x, y), outside the plot box (the scatter plot's class key). */
function legend(items: LegendItem[], x: number, y: number): string {
  return items.map((it, i) =>
    legendMark(it, x, y + i * 18) +
    element("text", { x: x + 24, y: y + i * 18 + 4, "font-size": 12 }, it.label)
  ).join("");
}

function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo === Infinity) return [0, 1];
  return lo === hi ? [lo - 1, hi + 1] : [lo, hi];
}

/** One line of a {@link lineChart}. */
export interface LineSeries {
  /** Legend label. */
  label: string;
  /** x values. */
  x: ArrayLike<number>;
  /** y values (non-finite ones break the line). */
  y: ArrayLike<number>;
}

/**
 * Lines over a shared x axis (training curves, accuracy vs gamma, ...).
 *
 * @example
 * ```ts
 * import { lineChart } from "./charts.ts";
 * const svg = lineChart({ title: "t", series: [{ label: "a", x: [0, 1], y: [0, 1] }, { label: "b", x: [0, 1], y: [1, 0] }] });
 * console.log(svg.split("<polyline").length - 1); // 2
 * ```
 */
export function lineChart(opts: ChartText & { series: LineSeries[]; yRange?: [number, number] }): string {
  const xs = opts.series.flatMap((s) => Array.from(s.x)), ys = opts.series.flatMap((s) => Array.from(s.y));
  const n = opts.series.length;
  const items = opts.series.map((s, i) => ({
    label: s.label,
    color: categoricalColor(i, n),
    shape: "line" as const,
  }));
  const a = axes(opts, extent(xs), opts.yRange ?? extent(ys), { legend: items });
  const lines = opts.series.map((s, i) => {
    const color = categoricalColor(i, n);
    const runs: string[][] = [[]];
    // Few points (e.g. the first epochs of a run) also get markers, so a single point shows.
    const markers: string[] = [];
    for (let j = 0; j < s.x.length; j++) {
      if (Number.isFinite(s.y[j])) {
        runs.at(-1)!.push(`${a.x(s.x[j]).toFixed(1)},${a.y(s.y[j]).toFixed(1)}`);
        if (s.x.length <= 40) {
          markers.push(element("circle", { cx: a.x(s.x[j]), cy: a.y(s.y[j]), r: 3, fill: color }));
        }
      } else if (runs.at(-1)!.length) runs.push([]);
    }
    return runs.filter((r) => r.length).map((r) =>
      element("polyline", { points: r.join(" "), fill: "none", stroke: color, "stroke-width": 2 })
    ).join("") + markers.join("");
  }).join("");
  return svgDocument(opts.width ?? 640, opts.height ?? 440, a.svg + lines);
}

/** One group member of a {@link barChart}. */
export interface BarSeries {
  /** Legend label. */
  label: string;
  /** One value per category. */
  values: ArrayLike<number>;
}

/**
 * Grouped bars: one group per category, one bar per series.
 *
 * @example
 * ```ts
 * import { barChart } from "./charts.ts";
 * const svg = barChart({ title: "acc", categories: ["KD", "oracle"], series: [{ label: "top-1", values: [70, 72] }] });
 * console.log(svg.includes(">oracle<")); // true
 * ```
 */
export function barChart(opts: ChartText & { categories: string[]; series: BarSeries[] }): string {
  const vals = opts.series.flatMap((s) => Array.from(s.values));
  const [lo, hi] = extent([0, ...vals]);
  const nc = opts.categories.length, ns = opts.series.length;
  const items = opts.series.map((s, i) => ({ label: s.label, color: categoricalColor(i, ns), opacity: 1 }));
  const a = axes(opts, [0, nc], [lo, hi + 0.05 * (hi - lo)], { xTicks: [], legend: items });
  const groupW = (a.box.right - a.box.left) / nc, barW = (groupW * 0.8) / ns;
  const parts: string[] = [];
  opts.categories.forEach((c, i) => {
    const gx = a.box.left + i * groupW + groupW * 0.1;
    parts.push(
      element("text", {
        x: gx + groupW * 0.4,
        y: a.box.bottom + 34,
        "text-anchor": "middle",
        "font-size": 12,
      }, c),
    );
    opts.series.forEach((s, j) => {
      const v = s.values[i], y0 = a.y(0), y1 = a.y(v);
      parts.push(element("rect", {
        x: gx + j * barW,
        y: Math.min(y0, y1),
        width: barW * 0.95,
        height: Math.abs(y1 - y0),
        fill: categoricalColor(j, ns),
      }));
    });
  });
  return svgDocument(opts.width ?? 640, opts.height ?? 440, a.svg + parts.join(""));
}

/**
 * Counts of `values` in `bins` equal-width bins over [lo, hi] (values outside are clamped
 * into the end bins; non-finite ones are skipped).
 *
 * @example
 * ```ts
 * import { histogramCounts } from "./charts.ts";
 * console.log(Array.from(histogramCounts([0, 0.1, 0.6, 1, 5], 2, 0, 1))); // [2, 3]
 * ```
 */
export function histogramCounts(
  values: ArrayLike<number>,
  bins: number,
  lo: number,
  hi: number,
): Float64Array {
  const c = new Float64Array(bins);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    const b = Math.floor(((v - lo) / (hi - lo)) * bins);
    c[Math.min(bins - 1, Math.max(0, b))]++;
  }
  return c;
}

/** One distribution of a {@link histogram}. */
export interface HistogramSeries {
  /** Legend label. */
  label: string;
  /** Samples. */
  values: ArrayLike<number>;
}

/**
 * Overlaid histograms (translucent bars) of several samples on shared bins, as densities
 * (each integrates to 1) unless `density` is false.
 *
 * @example
 * ```ts
 * import { histogram } from "./charts.ts";
 * const svg = histogram({ title: "entropy", xLabel: "nats", series: [{ label: "teacher", values: [0.1, 0.5, 0.9] }], bins: 4, range: [0, 1] });
 * console.log(svg.split('fill-opacity="0.55"').length - 1); // 3 non-empty bins
 * ```
 */
export function histogram(
  opts: ChartText & { series: HistogramSeries[]; bins?: number; range?: [number, number]; density?: boolean },
): string {
  const bins = opts.bins ?? 30;
  const [lo, hi] = opts.range ?? extent(opts.series.flatMap((s) => Array.from(s.values)));
  const width = (hi - lo) / bins;
  const heights = opts.series.map((s) => {
    const c = histogramCounts(s.values, bins, lo, hi);
    const total = c.reduce((x, y) => x + y, 0);
    return opts.density === false ? c : c.map((v) => (total > 0 ? v / (total * width) : 0));
  });
  const top = Math.max(...heights.flatMap((h) => Array.from(h)), 1e-12);
  const n = opts.series.length;
  const items = opts.series.map((s, i) => ({
    label: s.label,
    color: categoricalColor(i, n),
    ...(n > 1 ? { shape: "line" as const } : { opacity: 0.55 }),
  }));
  const a = axes({ yLabel: opts.density === false ? "count" : "density", ...opts }, [lo, hi], [
    0,
    1.05 * top,
  ], { legend: items });
  // Several series are drawn as outlined steps (overlaid translucent fills would blend into
  // colours the legend does not show); one series as filled bars.
  const outline = (h: Float64Array, color: string) => {
    const pts: string[] = [`${a.x(lo).toFixed(1)},${a.y(0).toFixed(1)}`];
    h.forEach((v, b) => {
      pts.push(`${a.x(lo + b * width).toFixed(1)},${a.y(v).toFixed(1)}`);
      pts.push(`${a.x(lo + (b + 1) * width).toFixed(1)},${a.y(v).toFixed(1)}`);
    });
    pts.push(`${a.x(hi).toFixed(1)},${a.y(0).toFixed(1)}`);
    return element("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 2 });
  };
  const bars = n > 1
    ? heights.map((h, i) => outline(h, categoricalColor(i, n))).join("")
    : heights.map((h, i) =>
      Array.from(h).map((v, b) =>
        v > 0
          ? element("rect", {
            x: a.x(lo + b * width),
            y: a.y(v),
            width: Math.max(0.5, a.x(lo + (b + 1) * width) - a.x(lo + b * width)),
            height: a.y(0) - a.y(v),
            fill: categoricalColor(i, n),
            "fill-opacity": 0.55,
          })
          : ""
      ).join("")
    ).join("");
  return svgDocument(opts.width ?? 640, opts.height ?? 440, a.svg + bars);
}

/** One confidence bin (fractions), as `MetricsAccumulator.result().bins` gives. */
export interface ReliabilityBin {
  /** Lower edge. */
  lo: number;
  /** Upper edge. */
  hi: number;
  /** Samples in the bin. */
  count: number;
  /** Mean confidence of the bin. */
  confidence: number;
  /** Accuracy of the bin. */
  accuracy: number;
}

/** Compact count labels: 950, 9.5k, 12k. */
function compactCount(v: number): string {
  if (v < 1000) return String(v);
  return v < 10_000 ? `${(v / 1000).toFixed(1)}k` : `${Math.round(v / 1000)}k`;
}

const ACCURACY_BLUE = "#1f77b4";
const GAP_RED = "#d62728";
const COUNT_GREY = "#8c8c8c";
/** Red diagonal stripes on transparent: over a blue bar they stay red and blue (no blended colour). */
const HATCH = `<defs><pattern id="gap-hatch" patternUnits="userSpaceOnUse" width="6" height="6" ` +
  `patternTransform="rotate(45)"><line x1="1.5" y1="0" x2="1.5" y2="6" stroke="${GAP_RED}" ` +
  `stroke-width="2.5"/></pattern></defs>`;

/**
 * Reliability diagram: accuracy per confidence bin (blue bars), the gap between each bin's
 * accuracy and its mean confidence (red hatching, outlined), the diagonal of perfect calibration,
 * the ECE (percent) in the title, and under the plot a panel of images per bin with their counts.
 * The legend sits between the title and the plot and names every colour drawn.
 *
 * @example
 * ```ts
 * import { reliabilityDiagram } from "./charts.ts";
 * const bins = [{ lo: 0, hi: 0.5, count: 10, confidence: 0.4, accuracy: 0.3 }, { lo: 0.5, hi: 1, count: 30, confidence: 0.9, accuracy: 0.8 }];
 * console.log(reliabilityDiagram({ title: "teacher", bins, ece: 10 }).includes("ECE = 10.00%")); // true
 * ```
 */
export function reliabilityDiagram(
  opts: ChartSize & { title: string; bins: ReliabilityBin[]; ece: number },
): string {
  const footer = 120;
  const t: ChartText = {
    ...opts,
    title: `${opts.title} (ECE = ${opts.ece.toFixed(2)}%)`,
    xLabel: "confidence (top-class probability)",
    yLabel: "accuracy",
    width: opts.width ?? 520,
    height: opts.height ?? 640,
  };
  const items: LegendItem[] = [
    { label: "accuracy", color: ACCURACY_BLUE, opacity: 1 },
    { label: "gap to mean confidence", color: GAP_RED, fill: "url(#gap-hatch)" },
    { label: "perfect calibration", color: "#555", shape: "line" },
    { label: "images per bin", color: COUNT_GREY, opacity: 1 },
  ];
  const a = axes(t, [0, 1], [0, 1], { legend: items, footer });
  const parts: string[] = [HATCH];
  for (const b of opts.bins) {
    if (b.count === 0) continue;
    const x0 = a.x(b.lo), w = a.x(b.hi) - x0;
    parts.push(element("rect", {
      x: x0,
      y: a.y(b.accuracy),
      width: w,
      height: a.y(0) - a.y(b.accuracy),
      fill: ACCURACY_BLUE,
      stroke: "white",
      "stroke-width": 0.5,
    }));
    const [g0, g1] = [Math.min(b.accuracy, b.confidence), Math.max(b.accuracy, b.confidence)];
    parts.push(element("rect", {
      x: x0,
      y: a.y(g1),
      width: w,
      height: a.y(g0) - a.y(g1),
      fill: "url(#gap-hatch)",
      stroke: GAP_RED,
      "stroke-width": 1.2,
    }));
  }
  parts.push(element("line", {
    x1: a.x(0),
    y1: a.y(0),
    x2: a.x(1),
    y2: a.y(1),
    stroke: "#555",
    "stroke-dasharray": "6 4",
  }));
  // Images per bin: a panel under the x axis title, bars scaled to the largest bin, counts on top.
  const panelTop = a.box.bottom + 68, panelBottom = a.box.bottom + footer + 30;
  const maxCount = Math.max(1, ...opts.bins.map((b) => b.count));
  const cy = (panelTop + panelBottom) / 2;
  parts.push(
    element("line", { x1: a.box.left, x2: a.box.right, y1: panelBottom, y2: panelBottom, stroke: "#333" }),
    element(
      "text",
      { x: 18, y: cy, "text-anchor": "middle", "font-size": 12, transform: `rotate(-90 18 ${cy})` },
      "images",
    ),
  );
  for (const b of opts.bins) {
    const x0 = a.x(b.lo), w = a.x(b.hi) - x0;
    const h = ((panelBottom - panelTop - 14) * b.count) / maxCount;
    if (b.count > 0) {
      parts.push(element("rect", {
        x: x0 + 1,
        y: panelBottom - h,
        width: w - 2,
        height: h,
        fill: COUNT_GREY,
      }));
    }
    parts.push(element("text", {
      x: x0 + w / 2,
      y: panelBottom - h - 3,
      "text-anchor": "middle",
      "font-size": w < 24 ? 8 : 10,
    }, compactCount(b.count)));
  }
  return svgDocument(t.width!, t.height!, a.svg + parts.join(""));
}

/** One bin of a {@link countHistogram}. */
export interface CountBin {
  /** Lower edge. */
  lo: number;
  /** Upper edge. */
  hi: number;
  /** Samples in the bin. */
  count: number;
}

/**
 * A histogram of precomputed bin counts on a numeric x axis (e.g. the confidence bins of a
 * reliability diagram), with the count over each bar.
 *
 * @example
 * ```ts
 * import { countHistogram } from "./charts.ts";
 * const svg = countHistogram({ title: "confidence", xLabel: "confidence", yLabel: "images", bins: [{ lo: 0, hi: 0.5, count: 3 }, { lo: 0.5, hi: 1, count: 9 }] });
 * console.log(svg.includes(">9<")); // true
 * ```
 */
export function countHistogram(opts: ChartText & { bins: CountBin[]; label?: string }): string {
  const lo = Math.min(...opts.bins.map((b) => b.lo)), hi = Math.max(...opts.bins.map((b) => b.hi));
  const top = Math.max(1, ...opts.bins.map((b) => b.count));
  const color = categoricalColor(0, 1);
  const items = opts.label ? [{ label: opts.label, color, opacity: 1 }] : [];
  const a = axes(opts, [lo, hi], [0, 1.1 * top], { legend: items });
  const parts = opts.bins.map((b) => {
    const x0 = a.x(b.lo), w = a.x(b.hi) - x0;
    return (b.count > 0
      ? element("rect", {
        x: x0 + 0.5,
        y: a.y(b.count),
        width: Math.max(0.5, w - 1),
        height: a.y(0) - a.y(b.count),
        fill: color,
      })
      : "") +
      element("text", {
        x: x0 + w / 2,
        y: a.y(b.count) - 3,
        "text-anchor": "middle",
        "font-size": w < 24 ? 8 : 10,
      }, compactCount(b.count));
  });
  return svgDocument(opts.width ?? 640, opts.height ?? 440, a.svg + parts.join(""));
}

/**
 * A colour key for many classes: a vertical strip of one cell per class at (x, top), with the
 * class index and name every few cells.
 */
function colourKey(classNames: string[], x: number, top: number, bottom: number): string {
  const k = classNames.length, cell = (bottom - top - 20) / k;
  const parts = [element("text", { x, y: top + 4, "font-size": 12 }, "class colours")];
  const every = Math.ceil(k / 12);
  for (let i = 0; i < k; i++) {
    const y = top + 14 + i * cell;
    parts.push(element("rect", { x, y, width: 16, height: cell + 0.3, fill: categoricalColor(i, k) }));
    if (i % every === 0) {
      const name = classNames[i].length > 14 ? classNames[i].slice(0, 13) + "…" : classNames[i];
      parts.push(element("text", { x: x + 22, y: y + cell / 2 + 4, "font-size": 11 }, `${i} ${name}`));
    }
  }
  return parts.join("");
}

/**
 * 2-D points coloured by class with a legend (up to 20 classes; more get a colour key strip
 * with every few classes named). `subtitle` goes under the title (e.g. silhouette scores).
 *
 * @example
 * ```ts
 * import { scatterPlot } from "./charts.ts";
 * const svg = scatterPlot({ title: "t-SNE", points: new Float32Array([0, 0, 1, 1]), labels: new Int32Array([0, 1]), classNames: ["cat", "dog"] });
 * console.log(svg.split("<circle").length - 1); // 4: two points, two legend dots
 * ```
 */
export function scatterPlot(
  opts: ChartText & {
    points: Float32Array;
    labels: Int32Array;
    classNames: string[];
    subtitle?: string;
    radius?: number;
  },
): string {
  const n = opts.labels.length;
  if (opts.points.length !== 2 * n) {
    throw new Error(`scatter: ${opts.points.length / 2} points for ${n} labels`);
  }
  const k = opts.classNames.length;
  const withLegend = k <= 20;
  const xs = Array.from({ length: n }, (_, i) => opts.points[2 * i]);
  const ys = Array.from({ length: n }, (_, i) => opts.points[2 * i + 1]);
  // The key's width follows its longest label (12 px DejaVu Sans: about 7 px a character).
  const keyWidth = withLegend
    ? Math.max(140, 40 + 7 * Math.max(...opts.classNames.map((c) => c.length)))
    : 140;
  const width = opts.width ?? 620 + keyWidth, height = opts.height ?? 600;
  const a = axes({ ...opts, width, height }, extent(xs), extent(ys), { legendWidth: keyWidth });
  const r = opts.radius ?? (n > 3000 ? 1.6 : n > 500 ? 2.4 : 3.5);
  const dots = xs.map((x, i) =>
    element("circle", {
      cx: a.x(x),
      cy: a.y(ys[i]),
      r,
      fill: categoricalColor(opts.labels[i], k),
      "fill-opacity": 0.8,
    })
  ).join("");
  const sub = opts.subtitle
    ? element("text", {
      x: (a.box.left + a.box.right) / 2,
      y: TITLE_BAND + 2,
      "text-anchor": "middle",
      "font-size": 12,
    }, opts.subtitle)
    : "";
  const items = withLegend
    ? opts.classNames.map((c, i) => ({ label: c, color: categoricalColor(i, k), shape: "dot" as const }))
    : [];
  const key = withLegend
    ? legend(items, a.box.right + 16, a.box.top + 8)
    : colourKey(opts.classNames, a.box.right + 16, a.box.top, a.box.bottom);
  return svgDocument(width, height, a.svg + sub + dots + key);
}
