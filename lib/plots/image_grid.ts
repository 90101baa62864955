/**
 * A titled grid of small images as SVG: one row per sample, one column per view (image,
 * relevance heatmap, x*), optional captions and a diverging colour bar. Tiles are enlarged
 * with nearest-neighbour sampling before they are embedded as PNG, so pixels stay sharp
 * whatever the renderer's image smoothing.
 *
 * @example
 * ```ts
 * import { imageGrid } from "./image_grid.ts";
 * const tile = { rgb: new Uint8Array(4 * 4 * 3).fill(200), width: 4, height: 4 };
 * const svg = imageGrid({ title: "demo", columnTitles: ["a"], rows: [{ label: "row", tiles: [tile] }] });
 * console.log(svg.includes("data:image/png;base64,")); // true
 * ```
 * @module
 */

import { Buffer } from "node:buffer";
import { divergingColor, rgbHex } from "./colors.ts";
import { encodeRgbPng, upscaleNearest } from "./raster.ts";
import { element, svgDocument } from "./svg.ts";

/** An RGB image tile. */
export interface ImageTile {
  /** Interleaved 8-bit RGB, `width * height * 3` bytes. */
  rgb: Uint8Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Text under the tile. */
  caption?: string;
}

/** One row of the grid. */
export interface ImageRow {
  /** Text left of the row (e.g. the class name). */
  label?: string;
  /** Tiles, one per column. */
  tiles: ImageTile[];
}

/** Options of {@link imageGrid}. */
export interface ImageGridOptions {
  /** Title above the grid. */
  title: string;
  /** Heading of each column. */
  columnTitles: string[];
  /** The rows. */
  rows: ImageRow[];
  /** Displayed tile size in pixels (default 96; tiles are enlarged by a whole factor). */
  tileSize?: number;
  /** A diverging colour bar under the grid, with its end labels. */
  colorbar?: { label: string; low: string; high: string };
}

/**
 * The grid as an SVG document.
 *
 * @example
 * ```ts
 * import { imageGrid } from "./image_grid.ts";
 * const t = { rgb: new Uint8Array(2 * 2 * 3), width: 2, height: 2 };
 * const svg = imageGrid({ title: "g", columnTitles: ["x", "R"], rows: [{ tiles: [t, t] }], colorbar: { label: "relevance", low: "-1", high: "1" } });
 * console.log(svg.split("<image").length - 1); // 2
 * ```
 */
export function imageGrid(opts: ImageGridOptions): string {
  const size = opts.tileSize ?? 96, gap = 10;
  const cols = opts.columnTitles.length;
  const hasLabels = opts.rows.some((r) => r.label);
  const hasCaptions = opts.rows.some((r) => r.tiles.some((t) => t.caption));
  const left = hasLabels ? 120 : 16, top = 70, rowH = size + gap + (hasCaptions ? 16 : 0);
  const width = Math.max(left + cols * (size + gap) + 6, 360);
  const barH = opts.colorbar ? 56 : 0;
  const height = top + opts.rows.length * rowH + barH + 8;
  const parts: string[] = [
    element("text", { x: width / 2, y: 26, "text-anchor": "middle", "font-size": 17 }, opts.title),
  ];
  opts.columnTitles.forEach((c, j) => {
    parts.push(
      element("text", {
        x: left + j * (size + gap) + size / 2,
        y: top - 10,
        "text-anchor": "middle",
        "font-size": 13,
      }, c),
    );
  });
  opts.rows.forEach((row, i) => {
    const y = top + i * rowH;
    if (row.label) {
      parts.push(
        element(
          "text",
          { x: left - 10, y: y + size / 2 + 4, "text-anchor": "end", "font-size": 13 },
          row.label,
        ),
      );
    }
    row.tiles.forEach((t, j) => {
      const x = left + j * (size + gap);
      const f = Math.max(1, Math.floor(size / Math.max(t.width, t.height)));
      const png = encodeRgbPng(upscaleNearest(t.rgb, t.width, t.height, f), t.width * f, t.height * f);
      parts.push(element("image", {
        x,
        y,
        width: t.width * f,
        height: t.height * f,
        href: `data:image/png;base64,${Buffer.from(png).toString("base64")}`,
      }));
      if (t.caption) {
        parts.push(
          element(
            "text",
            { x: x + size / 2, y: y + size + 13, "text-anchor": "middle", "font-size": 11 },
            t.caption,
          ),
        );
      }
    });
  });
  if (opts.colorbar) parts.push(colorbar(opts.colorbar, width / 2 - 120, height - barH + 8, 240));
  return svgDocument(width, height, parts.join(""));
}

function colorbar(c: { label: string; low: string; high: string }, x: number, y: number, w: number): string {
  const steps = 48, parts: string[] = [];
  for (let i = 0; i < steps; i++) {
    const t = -1 + (2 * (i + 0.5)) / steps;
    parts.push(
      element("rect", {
        x: x + (i * w) / steps,
        y,
        width: w / steps + 0.5,
        height: 12,
        fill: rgbHex(divergingColor(t)),
      }),
    );
  }
  parts.push(element("rect", { x, y, width: w, height: 12, fill: "none", stroke: "#333" }));
  parts.push(element("text", { x, y: y + 28, "text-anchor": "middle", "font-size": 11 }, c.low));
  parts.push(element("text", { x: x + w / 2, y: y + 28, "text-anchor": "middle", "font-size": 11 }, "0"));
  parts.push(element("text", { x: x + w, y: y + 28, "text-anchor": "middle", "font-size": 11 }, c.high));
  parts.push(element("text", { x: x + w / 2, y: y + 44, "text-anchor": "middle", "font-size": 12 }, c.label));
  return parts.join("");
}
