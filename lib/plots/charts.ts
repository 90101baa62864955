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
import { element, formatNumber, linearScale, niceTicks, svgDocument } from "./svg.ts";

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
}

const TITLE_BAND = 40;

/** Draws title, frame, grid, ticks and labels, and returns the data-to-screen scales. */
function axes(
  t: ChartText,
  xDomain: [number, number],
  yDomain: [number, number],
  opts: { legendWidth?: number; xTicks?: number[]; yTicks?: number[] } = {},
): Axes {
  const width = t.width ?? 640, height = t.height ?? 440;
  const box = {
    left: 72,
    right: width - 20 - (opts.legendWidth ?? 0),
    top: TITLE_BAND + 10,
    bottom: height - 56,
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
  ];
  for (const v of yt) {
    parts.push(element("line", { x1: box.left, x2: box.right, y1: y(v), y2: y(v), stroke: "#e6e6e6" }));
    parts.push(
      element(
        "text",
        { x: box.left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 12 },
        formatNumber(v),
      ),
    );
  }
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
  parts.push(element("rect", {
    x: box.left,
    y: box.top,
    width: box.right - box.left,
    height: box.bottom - box.top,
    fill: "none",
    stroke: "#333",
  }));
  if (t.xLabel) {
    parts.push(
      element("text", {
        x: (box.left + box.right) / 2,
        y: height - 14,
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

/** Approximate width of a legend (12 px DejaVu Sans averages about 7 px per character). */
function legendWidth(items: LegendItem[]): number {
  return items.length ? 34 + 7 * Math.max(...items.map((it) => it.label.length)) : 0;
}

/** A legend on a translucent white panel; `right` aligns its right edge (top-right placement). */
function legend(items: LegendItem[], x: number, y: number, right?: number): string {
  if (!items.length) return "";
  const w = legendWidth(items);
  const x0 = right === undefined ? x : right - w - 8;
  const panel = element("rect", {
    x: x0 - 6,
    y: y - 12,
    width: w + 6,
    height: items.length * 18 + 8,
    fill: "white",
    "fill-opacity": 0.85,
    stroke: "#ccc",
  });
  return panel + items.map((it, i) => {
    const cy = y + i * 18;
    const mark = it.shape === "line"
      ? element("line", { x1: x0, x2: x0 + 18, y1: cy, y2: cy, stroke: it.color, "stroke-width": 2.5 })
      : it.shape === "dot"
      ? element("circle", { cx: x0 + 9, cy, r: 4.5, fill: it.color })
      : element("rect", {
        x: x0 + 2,
        y: cy - 6,
        width: 14,
        height: 12,
        fill: it.color,
        "fill-opacity": 0.75,
      });
    return mark + element("text", { x: x0 + 24, y: cy + 4, "font-size": 12 }, it.label);
  }).join("");
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
  const a = axes(opts, extent(xs), opts.yRange ?? extent(ys));
  const n = opts.series.length;
  const lines = opts.series.map((s, i) => {
    const color = categoricalColor(i, n);
    const runs: string[][] = [[]];
    for (let j = 0; j < s.x.length; j++) {
      if (Number.isFinite(s.y[j])) runs.at(-1)!.push(`${a.x(s.x[j]).toFixed(1)},${a.y(s.y[j]).toFixed(1)}`);
      else if (runs.at(-1)!.length) runs.push([]);
    }
    return runs.filter((r) => r.length).map((r) =>
      element("polyline", { points: r.join(" "), fill: "none", stroke: color, "stroke-width": 2 })
    ).join("");
  }).join("");
  const items = opts.series.map((s, i) => ({
    label: s.label,
    color: categoricalColor(i, n),
    shape: "line" as const,
  }));
  return svgDocument(
    opts.width ?? 640,
    opts.height ?? 440,
    a.svg + lines + legend(items, 0, a.box.top + 18, a.box.right),
  );
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
  const a = axes(opts, [0, nc], [lo, hi + 0.05 * (hi - lo)], { xTicks: [] });
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
  const items = opts.series.map((s, i) => ({ label: s.label, color: categoricalColor(i, ns) }));
  return svgDocument(
    opts.width ?? 640,
    opts.height ?? 440,
    a.svg + parts.join("") + legend(items, 0, a.box.top + 18, a.box.right),
  );
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
  const a = axes({ yLabel: opts.density === false ? "count" : "density", ...opts }, [lo, hi], [
    0,
    1.05 * top,
  ]);
  const n = opts.series.length;
  const bars = heights.map((h, i) =>
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
  const items = opts.series.map((s, i) => ({ label: s.label, color: categoricalColor(i, n) }));
  return svgDocument(
    opts.width ?? 640,
    opts.height ?? 440,
    a.svg + bars + legend(items, 0, a.box.top + 18, a.box.right),
  );
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

/**
 * Reliability diagram: accuracy per confidence bin (bars), the gap to the bin's mean
 * confidence (red), the diagonal of perfect calibration, and the ECE (percent) in the title.
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
  const t: ChartText = {
    ...opts,
    title: `${opts.title} (ECE = ${opts.ece.toFixed(2)}%)`,
    xLabel: "confidence",
    yLabel: "accuracy",
    width: opts.width ?? 480,
    height: opts.height ?? 480,
  };
  const a = axes(t, [0, 1], [0, 1], { legendWidth: 0 });
  const parts: string[] = [];
  for (const b of opts.bins) {
    if (b.count === 0) continue;
    const x0 = a.x(b.lo), w = a.x(b.hi) - x0;
    parts.push(element("rect", {
      x: x0,
      y: a.y(b.accuracy),
      width: w,
      height: a.y(0) - a.y(b.accuracy),
      fill: "#1f77b4",
      stroke: "#0b3c61",
    }));
    const [g0, g1] = [Math.min(b.accuracy, b.confidence), Math.max(b.accuracy, b.confidence)];
    parts.push(element("rect", {
      x: x0,
      y: a.y(g1),
      width: w,
      height: a.y(g0) - a.y(g1),
      fill: "#d62728",
      "fill-opacity": 0.35,
      stroke: "#d62728",
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
  const items = [{ label: "accuracy", color: "#1f77b4" }, { label: "gap to confidence", color: "#d62728" }];
  return svgDocument(
    t.width!,
    t.height!,
    a.svg + parts.join("") + legend(items, a.box.left + 12, a.box.top + 16),
  );
}

/**
 * 2-D points coloured by class with a legend (up to 20 classes; more get colours but no
 * legend). `subtitle` goes under the title (e.g. silhouette scores).
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
  const a = axes(
    { ...opts, width: opts.width ?? (withLegend ? 760 : 640), height: opts.height ?? 600 },
    extent(xs),
    extent(ys),
    {
      legendWidth: withLegend ? 140 : 0,
    },
  );
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
  const width = opts.width ?? (withLegend ? 760 : 640), height = opts.height ?? 600;
  return svgDocument(width, height, a.svg + sub + dots + legend(items, a.box.right + 16, a.box.top + 8));
}
