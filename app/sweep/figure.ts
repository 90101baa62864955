/**
 * The sweep figure: per teacher -> student row, one marker per method column at the mean over
 * seeds with a whisker of one standard deviation and every seed's value as a small dot; one
 * panel for the last-epoch test top-1 and one for its ECE. Drawn as SVG with the project's plot
 * helpers and rendered to PNG.
 *
 * @example
 * ```ts
 * import { sweepFigureSvg } from "./figure.ts";
 * const svg = sweepFigureSvg("study", ["t -> s"], ["KD", "oracle KD"], [
 *   { title: "top-1 %", values: [[[70, 71]], [[72, 72.5]]] },
 * ]);
 * console.log(svg.startsWith("<svg"), svg.includes(">oracle KD<")); // true true
 * ```
 * @module
 */

import { categoricalColor } from "../../lib/plots/colors.ts";
import { renderSvg } from "../../lib/plots/render.ts";
import { element, linearScale, niceTicks, plotFrame, svgDocument, yGrid } from "../../lib/plots/svg.ts";

/** One panel: `values[column][row]` holds the seeds' values (empty where none finished). */
export interface FigurePanel {
  /** Panel title (the metric). */
  title: string;
  /** Values per column, per row, per seed. */
  values: number[][][];
}

const PANEL_W = 560, PANEL_H = 420, LEGEND_H = 22;

function panelSvg(p: FigurePanel, rows: string[], columns: string[], x0: number, y0: number): string {
  const spread = (vs: number[]) => {
    const m = vs.reduce((s, v) => s + v, 0) / vs.length;
    const sd = vs.length > 1 ? Math.sqrt(vs.reduce((s, v) => s + (v - m) ** 2, 0) / (vs.length - 1)) : 0;
    return { m, sd };
  };
  const all = p.values.flat(1).filter((vs) => vs.length).flatMap((vs) => {
    const { m, sd } = spread(vs);
    return [...vs, m - sd, m + sd];
  }).filter(Number.isFinite);
  let lo = all.length ? Math.min(...all) : 0, hi = all.length ? Math.max(...all) : 1;
  if (hi - lo < 1e-9) [lo, hi] = [lo - 1, hi + 1];
  const pad = 0.08 * (hi - lo);
  const ticks = niceTicks(lo - pad, hi + pad, 5);
  const box = { left: x0 + 64, right: x0 + PANEL_W - 16, top: y0 + 40, bottom: y0 + PANEL_H - 70 };
  const y = linearScale([ticks[0], ticks.at(-1)!], [box.bottom, box.top]);
  const parts = [
    element(
      "text",
      { x: (box.left + box.right) / 2, y: y0 + 22, "text-anchor": "middle", "font-size": 15 },
      p.title,
    ),
  ];
  parts.push(...yGrid(box, ticks, y, 11));
  parts.push(plotFrame(box, "#444"));
  const groupW = (box.right - box.left) / Math.max(1, rows.length);
  rows.forEach((row, r) => {
    const gx = box.left + r * groupW;
    parts.push(element("text", {
      x: gx + groupW / 2,
      y: box.bottom + 18,
      "text-anchor": "middle",
      "font-size": 11,
    }, row));
    columns.forEach((_, c) => {
      const vs = (p.values[c]?.[r] ?? []).filter(Number.isFinite);
      if (vs.length === 0) return;
      const cx = gx + groupW * (0.2 + (0.6 * (c + 0.5)) / columns.length);
      const color = categoricalColor(c, columns.length);
      const { m, sd } = spread(vs);
      parts.push(
        element("line", { x1: cx, x2: cx, y1: y(m - sd), y2: y(m + sd), stroke: color, "stroke-width": 2 }),
      );
      for (const e of [m - sd, m + sd]) {
        parts.push(
          element("line", { x1: cx - 5, x2: cx + 5, y1: y(e), y2: y(e), stroke: color, "stroke-width": 2 }),
        );
      }
      for (const v of vs) {
        parts.push(element("circle", { cx: cx + 9, cy: y(v), r: 2.5, fill: color, "fill-opacity": 0.6 }));
      }
      parts.push(element("rect", { x: cx - 5, y: y(m) - 5, width: 10, height: 10, fill: color }));
    });
  });
  return parts.join("");
}

/**
 * The figure as SVG: one panel per metric side by side, a legend of the columns below.
 *
 * @example
 * ```ts
 * import { sweepFigureSvg } from "./figure.ts";
 * console.log(sweepFigureSvg("s", [], [], []).includes("</svg>")); // true
 * ```
 */
export function sweepFigureSvg(
  title: string,
  rows: string[],
  columns: string[],
  panels: FigurePanel[],
): string {
  const width = Math.max(1, panels.length) * PANEL_W, height = PANEL_H + 30 + LEGEND_H;
  const body = [
    element("text", { x: width / 2, y: 20, "text-anchor": "middle", "font-size": 17 }, title),
    ...panels.map((p, i) => panelSvg(p, rows, columns, i * PANEL_W, 30)),
  ];
  let lx = 20;
  const ly = height - 14;
  columns.forEach((c, i) => {
    body.push(
      element("rect", { x: lx, y: ly - 9, width: 10, height: 10, fill: categoricalColor(i, columns.length) }),
    );
    body.push(element("text", { x: lx + 15, y: ly, "font-size": 12 }, c));
    lx += 30 + 7 * c.length;
  });
  body.push(element("text", {
    x: width - 10,
    y: ly,
    "text-anchor": "end",
    "font-size": 11,
  }, "square: mean over seeds, bar: ±1 sd, dots: seeds"));
  return svgDocument(width, height, body.join(""));
}

/**
 * The figure as PNG.
 *
 * @example
 * ```ts
 * import { sweepFigurePng } from "./figure.ts";
 * const png = await sweepFigurePng("s", ["a -> b"], ["KD"], [{ title: "top-1", values: [[[1, 2]]] }]);
 * console.log(png[1] === 0x50); // true
 * ```
 */
export function sweepFigurePng(
  title: string,
  rows: string[],
  columns: string[],
  panels: FigurePanel[],
): Promise<Uint8Array> {
  return renderSvg(sweepFigureSvg(title, rows, columns, panels), { scale: 2 });
}
