/**
 * SVG to PNG without a browser: resvg (Rust) compiled to WebAssembly, from npm, with the
 * DejaVu Sans TrueType font from npm as the only font (resvg-wasm sees no system fonts, so
 * figures render the same on every machine). Chosen over the native `@resvg/resvg-js`: no
 * per-platform binary, no `--allow-ffi`, same output everywhere.
 *
 * @example
 * ```ts
 * import { renderSvg } from "./render.ts";
 * const png = await renderSvg('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><text y="9">Hi</text></svg>');
 * console.log(png.length > 0); // true
 * ```
 * @module
 */

import { loadFigureFont, loadResvg } from "../deps.ts";
import { FONT_FAMILY } from "./svg.ts";

let font: Promise<Uint8Array> | undefined;

/** Options of {@link renderSvg}. */
export interface RenderOptions {
  /** Output pixels per SVG unit (default 1; 2 for high-resolution figures). */
  scale?: number;
}

/**
 * Renders an SVG document to PNG bytes.
 *
 * @example
 * ```ts
 * import { renderSvg } from "./render.ts";
 * import { decodePng } from "../deps.ts";
 * const png = await renderSvg('<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"/>', { scale: 2 });
 * console.log(decodePng(png).width); // 60
 * ```
 */
export async function renderSvg(svg: string, opts: RenderOptions = {}): Promise<Uint8Array> {
  const { Resvg } = await loadResvg();
  font ??= loadFigureFont();
  const scale = opts.scale ?? 1;
  const resvg = new Resvg(svg, {
    fitTo: scale === 1 ? { mode: "original" } : { mode: "zoom", value: scale },
    font: { fontBuffers: [await font], loadSystemFonts: false, defaultFontFamily: FONT_FAMILY },
  });
  try {
    const image = resvg.render();
    const png = image.asPng();
    image.free();
    return png;
  } finally {
    resvg.free();
  }
}
