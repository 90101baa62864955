/**
 * The paper's figures as PNG bytes, from the arrays analysis produces: relevance heatmaps
 * (image, relevance, x*), reliability diagrams with the ECE, entropy histograms, class-coloured
 * 2-D embeddings with silhouette scores, and plain line / bar charts. Each is an SVG chart
 * (`charts.ts`, `image_grid.ts`) rendered by `render.ts`; the `*Svg` twins return the SVG.
 *
 * @example
 * ```ts
 * import { reliabilityFigure } from "./figures.ts";
 * const bins = [{ lo: 0.5, hi: 1, count: 8, confidence: 0.9, accuracy: 0.75 }];
 * const png = await reliabilityFigure(bins, 15, "teacher");
 * console.log(png.length > 1000); // true
 * ```
 * @module
 */

import {
  barChart,
  type BarSeries,
  countHistogram,
  histogram,
  lineChart,
  type LineSeries,
  type ReliabilityBin,
  reliabilityDiagram,
  scatterPlot,
} from "./charts.ts";
import { imageGrid, type ImageRow } from "./image_grid.ts";
import { imageToRgb, pixelRelevance, relevanceToRgb } from "./raster.ts";
import { renderSvg } from "./render.ts";
import { formatNumber } from "./svg.ts";

/** Output options shared by the figures. */
export interface FigureOptions {
  /** Pixels per SVG unit (default 2: print-friendly). */
  scale?: number;
}

/** Inputs of {@link relevanceHeatmapFigure}: normalised NCHW batches as the explainer returns. */
export interface HeatmapFigureInput {
  /** Original images x, normalised. */
  images: Float32Array;
  /** Relevance R(x), same layout. */
  relevance: Float32Array;
  /** Relevance-reinforced inputs x*, same layout. */
  xStar: Float32Array;
  /** Number of images in the batches. */
  n: number;
  /** `[c, h, w]` of one image. */
  shape: readonly [number, number, number];
  /** Per-channel normalisation mean (to show images in colour). */
  mean: readonly number[];
  /** Per-channel normalisation std. */
  std: readonly number[];
  /** True labels, for row labels. */
  labels?: ArrayLike<number>;
  /** Class names, for row labels. */
  classNames?: string[];
  /** Text under the image and x* tiles of each row (e.g. the teacher's p(y) before and after). */
  captions?: { image?: string[]; xStar?: string[] };
  /** Title (default "Relevance-reinforced inputs"). */
  title?: string;
  /** Name of the relevance rule, for the column heading (default "relevance"). */
  ruleName?: string;
  /** At most this many rows (default 8). */
  maxImages?: number;
}

/**
 * SVG of {@link relevanceHeatmapFigure}. Each heatmap is the per-pixel relevance summed over
 * channels, coloured blue (negative) - white - red (positive), scaled to its own largest |R|.
 *
 * @example
 * ```ts
 * import { relevanceHeatmapSvg } from "./figures.ts";
 * const x = new Float32Array(2 * 3 * 4 * 4).map((_, i) => Math.sin(i));
 * const svg = relevanceHeatmapSvg({ images: x, relevance: x, xStar: x, n: 2, shape: [3, 4, 4], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
 * console.log(svg.split("<image").length - 1); // 6
 * ```
 */
export function relevanceHeatmapSvg(input: HeatmapFigureInput): string {
  const [, h, w] = input.shape;
  const rows: ImageRow[] = [];
  const count = Math.min(input.n, input.maxImages ?? 8);
  for (let i = 0; i < count; i++) {
    const y = input.labels?.[i];
    const label = y === undefined ? undefined : input.classNames?.[y] ?? `class ${y}`;
    rows.push({
      label,
      tiles: [
        {
          rgb: imageToRgb(input.images, i, input.shape, input.mean, input.std),
          width: w,
          height: h,
          caption: input.captions?.image?.[i],
        },
        { rgb: relevanceToRgb(pixelRelevance(input.relevance, i, input.shape), h, w), width: w, height: h },
        {
          rgb: imageToRgb(input.xStar, i, input.shape, input.mean, input.std),
          width: w,
          height: h,
          caption: input.captions?.xStar?.[i],
        },
      ],
    });
  }
  return imageGrid({
    title: input.title ?? "Relevance-reinforced inputs",
    columnTitles: ["image x", input.ruleName ?? "relevance", "x*"],
    rows,
    colorbar: { label: "relevance (per image, scaled to max |R|)", low: "-max", high: "+max" },
  });
}

/**
 * PNG of original images, relevance heatmaps and x*, one row per image.
 *
 * @example
 * ```ts
 * import { relevanceHeatmapFigure } from "./figures.ts";
 * const x = new Float32Array(3 * 8 * 8).map((_, i) => Math.cos(i));
 * const png = await relevanceHeatmapFigure({ images: x, relevance: x, xStar: x, n: 1, shape: [3, 8, 8], mean: [0, 0, 0], std: [1, 1, 1] });
 * console.log(png.length > 0); // true
 * ```
 */
export function relevanceHeatmapFigure(
  input: HeatmapFigureInput,
  opts: FigureOptions = {},
): Promise<Uint8Array> {
  return renderSvg(relevanceHeatmapSvg(input), { scale: opts.scale ?? 2 });
}

/**
 * PNG reliability diagram from `MetricsAccumulator` bins, with the ECE (percent) in the title.
 *
 * @example
 * ```ts
 * import { reliabilityFigure } from "./figures.ts";
 * import { MetricsAccumulator } from "../metrics.ts";
 * const acc = new MetricsAccumulator(2);
 * acc.add(new Float32Array([3, 0, 0, 1, 2, 0]), new Int32Array([0, 0, 1]));
 * const m = acc.result();
 * console.log((await reliabilityFigure(m.bins, m.ece, "toy")).length > 0); // true
 * ```
 */
export function reliabilityFigure(
  bins: ReliabilityBin[],
  ece: number,
  title: string,
  opts: FigureOptions = {},
): Promise<Uint8Array> {
  return renderSvg(reliabilityDiagram({ title, bins, ece }), { scale: opts.scale ?? 2 });
}

/**
 * PNG histogram of the top-class confidence over the reliability bins (numeric x axis from 0
 * to 1, the image count over each bar).
 *
 * @example
 * ```ts
 * import { confidenceHistogramFigure } from "./figures.ts";
 * const png = await confidenceHistogramFigure([{ lo: 0, hi: 0.5, count: 3, confidence: 0.4, accuracy: 0.3 }, { lo: 0.5, hi: 1, count: 9, confidence: 0.8, accuracy: 0.7 }], "student");
 * console.log(png.length > 0); // true
 * ```
 */
export function confidenceHistogramFigure(
  bins: ReliabilityBin[],
  title: string,
  opts: FigureOptions = {},
): Promise<Uint8Array> {
  const svg = countHistogram({
    title,
    xLabel: "confidence (top-class probability)",
    yLabel: "images",
    bins,
  });
  return renderSvg(svg, { scale: opts.scale ?? 2 });
}

/** One model's predictive entropies for {@link entropyHistogramFigure}. */
export interface EntropySeries {
  /** Legend label (e.g. "teacher on x", "oracle on x*"). */
  label: string;
  /** Entropy per sample, nats. */
  entropy: ArrayLike<number>;
}

/**
 * PNG of overlaid predictive-entropy histograms (densities); with `numClasses` the axis spans
 * [0, ln K], the range of entropies. The legend shows each series' mean.
 *
 * @example
 * ```ts
 * import { entropyHistogramFigure } from "./figures.ts";
 * const png = await entropyHistogramFigure([{ label: "teacher", entropy: [0.1, 0.4, 1.2] }], "entropy", { numClasses: 10 });
 * console.log(png.length > 0); // true
 * ```
 */
export function entropyHistogramFigure(
  series: EntropySeries[],
  title: string,
  opts: FigureOptions & { numClasses?: number; bins?: number } = {},
): Promise<Uint8Array> {
  const svg = histogram({
    title,
    xLabel: "predictive entropy (nats)",
    series: series.map((s) => ({
      label: `${s.label} (mean ${formatNumber(mean(s.entropy))})`,
      values: s.entropy,
    })),
    bins: opts.bins ?? 40,
    range: opts.numClasses ? [0, Math.log(opts.numClasses)] : undefined,
  });
  return renderSvg(svg, { scale: opts.scale ?? 2 });
}

/** Silhouette scores shown with an embedding. */
export interface SilhouetteScores {
  /** In the 2-D embedding. */
  embedded: number;
  /** In the original response space. */
  original?: number;
}

/**
 * PNG of a 2-D embedding of teacher responses coloured by true class, with the silhouette
 * scores under the title.
 *
 * @example
 * ```ts
 * import { embeddingFigure } from "./figures.ts";
 * const pts = new Float32Array([0, 0, 0.1, 0.2, 3, 3, 3.2, 2.9]);
 * const png = await embeddingFigure(pts, new Int32Array([0, 0, 1, 1]), ["cat", "dog"], { embedded: 0.9 }, "oracle");
 * console.log(png.length > 0); // true
 * ```
 */
export function embeddingFigure(
  points2d: Float32Array,
  labels: Int32Array,
  classNames: string[],
  silhouette: SilhouetteScores,
  title: string,
  opts: FigureOptions = {},
): Promise<Uint8Array> {
  const sub = `silhouette ${silhouette.embedded.toFixed(3)} (2-D)` +
    (silhouette.original === undefined ? "" : `, ${silhouette.original.toFixed(3)} (original space)`);
  const svg = scatterPlot({ title, points: points2d, labels, classNames, subtitle: sub });
  return renderSvg(svg, { scale: opts.scale ?? 2 });
}

/**
 * PNG line chart (training curves, accuracy against gamma, ...).
 *
 * @example
 * ```ts
 * import { lineFigure } from "./figures.ts";
 * const png = await lineFigure("top-1", [{ label: "student", x: [1, 2], y: [40, 55] }], { xLabel: "epoch", yLabel: "%" });
 * console.log(png.length > 0); // true
 * ```
 */
export function lineFigure(
  title: string,
  series: LineSeries[],
  opts: FigureOptions & { xLabel?: string; yLabel?: string } = {},
): Promise<Uint8Array> {
  return renderSvg(lineChart({ title, series, xLabel: opts.xLabel, yLabel: opts.yLabel }), {
    scale: opts.scale ?? 2,
  });
}

/**
 * PNG grouped bar chart (e.g. accuracy or ECE per method).
 *
 * @example
 * ```ts
 * import { barFigure } from "./figures.ts";
 * const png = await barFigure("ECE", ["KD", "oracle"], [{ label: "ECE %", values: [5.1, 2.3] }]);
 * console.log(png.length > 0); // true
 * ```
 */
export function barFigure(
  title: string,
  categories: string[],
  series: BarSeries[],
  opts: FigureOptions & { yLabel?: string } = {},
): Promise<Uint8Array> {
  return renderSvg(barChart({ title, categories, series, yLabel: opts.yLabel }), { scale: opts.scale ?? 2 });
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return v.length ? s / v.length : NaN;
}
