/**
 * Figures without a browser: every figure renders to a PNG of the expected size that is not
 * blank (pixel variance, many colours), has its title text drawn (dark pixels in the title
 * band, which holds nothing else), and shows what it claims (class colours, diverging reds and
 * blues, the de-normalised image). Helpers are checked on exact values.
 */
import assert from "node:assert/strict";
import { decodePng } from "../lib/deps.ts";
import {
  barChart,
  countHistogram,
  histogram,
  histogramCounts,
  lineChart,
  reliabilityDiagram,
  scatterPlot,
} from "../lib/plots/charts.ts";
import { categoricalColor, divergingColor } from "../lib/plots/colors.ts";
import {
  barFigure,
  confidenceHistogramFigure,
  embeddingFigure,
  entropyHistogramFigure,
  lineFigure,
  relevanceHeatmapFigure,
  reliabilityFigure,
} from "../lib/plots/figures.ts";
import {
  encodeRgbPng,
  imageToRgb,
  pixelRelevance,
  relevanceToRgb,
  upscaleNearest,
} from "../lib/plots/raster.ts";
import { renderSvg } from "../lib/plots/render.ts";
import { escapeXml, formatNumber, niceTicks, svgDocument } from "../lib/plots/svg.ts";
import { MetricsAccumulator } from "../lib/metrics.ts";
import { Rng } from "../lib/rng.ts";
import { hasColour, type Picture, picture, pixelStats } from "./png_utils.ts";
import { SHARED_DIR, sharedTest } from "./test_utils.ts";
import {
  CIFAR100_CLASSES,
  CIFAR100_FINE_TO_COARSE,
  CIFAR100_SUPERCLASSES,
  colourGroups,
} from "../lib/data/metadata.ts";

/** A rendered figure of `w x h` SVG units at `scale`: right size, not blank, title drawn. */
function assertFigure(png: Uint8Array, w: number, h: number, scale: number, titleBand = 40): Picture {
  const p = picture(png);
  assert.equal(p.width, w * scale);
  assert.equal(p.height, h * scale);
  const all = pixelStats(p);
  assert.ok(all.variance > 100, `nearly blank: luminance variance ${all.variance}`);
  assert.ok(all.colours.size >= 8, `only ${all.colours.size} colours`);
  const title = pixelStats(p, [0, titleBand * scale]);
  assert.ok(title.dark >= 30 * scale, `no title text: ${title.dark} dark pixels in the title band`);
  return p;
}

Deno.test("text renders with the bundled font (resvg-wasm sees no system fonts)", async () => {
  const withText = svgDocument(200, 40, '<text x="8" y="28" font-size="20">Hello ECE 1.23%</text>');
  const p = picture(await renderSvg(withText));
  assert.equal(p.width, 200);
  const s = pixelStats(p);
  assert.ok(s.dark > 100, `text drew ${s.dark} dark pixels`);
  const blank = pixelStats(picture(await renderSvg(svgDocument(200, 40, ""))));
  assert.equal(blank.dark, 0);
  // Markup in labels is escaped, not interpreted.
  const tricky = lineChart({ title: 'a < b & "c"', series: [{ label: "<x>", x: [0, 1], y: [0, 1] }] });
  assert.ok(tricky.includes("a &lt; b &amp; &quot;c&quot;"));
  assert.ok(pixelStats(picture(await renderSvg(tricky)), [0, 40]).dark > 30);
});

/** The plot frame (x, y, width, height) of a chart's SVG: the one unfilled rect with a dark outline. */
function frameOf(svg: string): { x: number; y: number; w: number; h: number } {
  const m = svg.match(
    /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none" stroke="#333"\/>/,
  );
  assert.ok(m, "no plot frame");
  return { x: +m[1], y: +m[2], w: +m[3], h: +m[4] };
}

/** The y of every 12 px text (legend labels are 12 px; tick labels too, but outside the frame). */
function labelsAt(svg: string, text: string): number[] {
  return [...svg.matchAll(/<text x="[\d.]+" y="([\d.]+)" font-size="12">([^<]*)<\/text>/g)]
    .filter((m) => m[2] === text).map((m) => +m[1]);
}

/** Colours covering at least `share` of a picture's region, as hex. */
function mainColours(p: Picture, x0: number, y0: number, x1: number, y1: number, share: number): string[] {
  const counts = new Map<number, number>();
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const [r, g, b] = p.at(x, y);
      const k = (r << 16) | (g << 8) | b;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
  }
  const total = (x1 - x0) * (y1 - y0);
  return [...counts].filter(([, c]) => c >= share * total).map(([k]) =>
    "#" + k.toString(16).padStart(6, "0")
  );
}

function someMetrics(seed: number) {
  const rng = new Rng(seed);
  const acc = new MetricsAccumulator(5);
  const n = 2000;
  const logits = Float32Array.from({ length: n * 5 }, () => 1.5 * rng.normal());
  const y = Int32Array.from({ length: n }, (_, i) => i % 5);
  for (let i = 0; i < n; i++) if (i % 3 !== 0) logits[i * 5 + y[i]] += 2.5;
  acc.add(logits, y);
  return acc.result();
}

Deno.test("reliability figure: ECE in the title, accuracy bars, hatched gaps with no blended colour, counts per bin, legend above the plot", async () => {
  const m = someMetrics(1);
  const p = assertFigure(await reliabilityFigure(m.bins, m.ece, "teacher", { scale: 1 }), 520, 640, 1);
  assert.ok(hasColour(p, "#1f77b4"), "no accuracy bars");
  assert.ok(hasColour(p, "#d62728"), "no gap drawn");
  const svg = reliabilityDiagram({ title: "teacher", bins: m.bins, ece: m.ece });
  const f = frameOf(svg);
  // Every colour that fills a visible share of the plot is one the legend names (or white, the
  // grid, the axes): a translucent red over blue used to make an unexplained purple.
  const allowed = ["#ffffff", "#1f77b4", "#d62728", "#e6e6e6", "#333333", "#555555", "#8c8c8c"];
  const main = mainColours(p, f.x + 2, f.y + 2, f.x + f.w - 2, f.y + f.h - 2, 0.005);
  assert.deepEqual(main.filter((c) => !allowed.includes(c)), [], `colours outside the legend: ${main}`);
  // The same check on the old blend: a purple share of the plot would fail it.
  assert.ok(!main.includes("#5f5b83"));
  // Legend entries for every colour drawn, all above the frame (never over the data).
  for (const label of ["accuracy", "gap to mean confidence", "perfect calibration", "images per bin"]) {
    const ys = labelsAt(svg, label);
    assert.equal(ys.length, 1, label);
    assert.ok(ys[0] < f.y, `legend "${label}" at y ${ys[0]} is inside the plot (top ${f.y})`);
  }
  // Each bin's image count is written (under the plot).
  for (const b of m.bins) {
    assert.ok(svg.includes(`>${b.count}<`), `count ${b.count} missing`);
  }
  assert.equal(m.bins.reduce((s, b) => s + b.count, 0), 2000);
});

Deno.test("confidence histogram: numeric x axis from 0 to 1 with axis titles and counts", async () => {
  const m = someMetrics(2);
  const svg = countHistogram({
    title: "confidence",
    xLabel: "confidence (top-class probability)",
    yLabel: "images",
    bins: m.bins,
  });
  for (const tick of ["0", "0.2", "0.4", "0.6", "0.8", "1"]) {
    assert.match(svg, new RegExp(`text-anchor="middle" font-size="12">${tick.replace(".", "\\.")}<`), tick);
  }
  assert.ok(svg.includes(">confidence (top-class probability)<") && svg.includes(">images<"));
  assert.ok(!svg.includes(">0.07<"), "no categorical bin-edge ticks");
  for (const b of m.bins.filter((b) => b.count > 0)) assert.ok(svg.includes(`>${b.count}<`));
  const p = assertFigure(await confidenceHistogramFigure(m.bins, "student", { scale: 1 }), 640, 440, 1);
  assert.ok(hasColour(p, categoricalColor(0, 1)));
});

Deno.test("legends of line, bar and histogram charts sit above the plot, never over the data", () => {
  const charts = [
    lineChart({
      title: "t",
      series: [{ label: "first", x: [0, 1], y: [1, 1] }, { label: "second", x: [0, 1], y: [0, 1] }],
    }),
    barChart({ title: "t", categories: ["a", "b"], series: [{ label: "first", values: [5, 9] }] }),
    histogram({
      title: "t",
      series: [{ label: "first", values: [0.1, 0.9] }, { label: "second", values: [0.5] }],
    }),
  ];
  for (const svg of charts) {
    const f = frameOf(svg);
    for (const y of labelsAt(svg, "first")) assert.ok(y < f.y, `legend at ${y}, plot top ${f.y}`);
  }
});

Deno.test("entropy histogram figure over [0, ln K] with two series", async () => {
  const rng = new Rng(2);
  const a = Float64Array.from({ length: 300 }, () => Math.abs(rng.normal()));
  const b = Float64Array.from({ length: 300 }, () => 0.3 * Math.abs(rng.normal()));
  const p = assertFigure(
    await entropyHistogramFigure(
      [{ label: "teacher", entropy: a }, { label: "oracle", entropy: b }],
      "entropy",
      {
        numClasses: 10,
        scale: 1,
      },
    ),
    640,
    440,
    1,
  );
  assert.ok(pixelStats(p).colours.size > 20);
});

Deno.test("embedding figure: one colour per class and a legend", async () => {
  const rng = new Rng(3);
  const n = 90, labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const pts = Float32Array.from({ length: 2 * n }, (_, i) => 5 * labels[i >> 1] + rng.normal());
  const names = ["cat", "dog", "ship"];
  const png = await embeddingFigure(
    pts,
    labels,
    names,
    { embedded: 0.71, original: 0.52 },
    "oracle responses",
    {
      scale: 1,
    },
  );
  const p = assertFigure(png, 760, 600, 1);
  for (let c = 0; c < 3; c++) assert.ok(hasColour(p, categoricalColor(c, 3)), `class ${c} colour missing`);
  assert.ok(!hasColour(p, categoricalColor(3, 3)), "a fourth class colour appeared");
  const svg = scatterPlot({
    title: "t",
    points: pts,
    labels,
    classNames: names,
    subtitle: "silhouette 0.710",
  });
  assert.equal(svg.split("<circle").length - 1, n + 3);
  assert.ok(svg.includes(">ship<") && svg.includes("silhouette 0.710"));
});

Deno.test("line and bar figures render", async () => {
  assertFigure(
    await lineFigure("top-1", [{ label: "KD", x: [1, 2, 3], y: [10, 20, 25] }, {
      label: "oracle",
      x: [1, 2, 3],
      y: [12, 24, 30],
    }], { scale: 1 }),
    640,
    440,
    1,
  );
  const p = assertFigure(
    await barFigure("ECE", ["KD", "oracle"], [{ label: "ECE %", values: [5, 2] }], { scale: 1 }),
    640,
    440,
    1,
  );
  assert.ok(hasColour(p, categoricalColor(0, 1)));
});

Deno.test("relevance heatmap figure: image, diverging heatmap and x* tiles", async () => {
  const n = 2, shape = [3, 8, 8] as const, mean = [0.5, 0.5, 0.5], std = [0.25, 0.25, 0.25];
  const rng = new Rng(4);
  const images = Float32Array.from({ length: n * 192 }, () => rng.normal());
  const relevance = Float32Array.from({ length: n * 192 }, (_, i) => (i % 64 < 32 ? 1 : -1) * (1 + (i % 7)));
  const xStar = images.map((v) => 1.5 * v);
  const png = await relevanceHeatmapFigure({
    images,
    relevance,
    xStar,
    n,
    shape,
    mean,
    std,
    labels: [1, 0],
    classNames: ["cat", "dog"],
    captions: { image: ["p(y)=0.20", "p(y)=0.40"], xStar: ["p(y)=0.60", "p(y)=0.90"] },
  }, { scale: 1 });
  const p = picture(png);
  assert.ok(p.width >= 360 && p.height > 2 * 96);
  assert.ok(pixelStats(p).variance > 100);
  assert.ok(pixelStats(p, [0, 40]).dark > 30, "no title");
  // Full red and blue of the diverging map (heatmap extremes).
  assert.ok(hasColour(p, "#b2182b") && hasColour(p, "#2166ac"), "heatmap lacks red and blue");
  // The first tile shows image 0 de-normalised: tiles start at (120, 70), 12x12 blocks.
  const rgb = imageToRgb(images, 0, shape, mean, std);
  for (const [px, py] of [[0, 0], [3, 5], [7, 7]]) {
    const got = p.at(120 + 12 * px + 6, 70 + 12 * py + 6),
      want = rgb.subarray((py * 8 + px) * 3, (py * 8 + px) * 3 + 3);
    got.forEach((v, k) => assert.ok(Math.abs(v - want[k]) <= 2, `pixel (${px}, ${py}): ${got} vs ${want}`));
  }
});

Deno.test("raster helpers: de-normalisation, channel sums, diverging colours, upscaling, PNG round trip", () => {
  const x = new Float32Array([2, -2, 0, 10]); // 1 channel 2x2, mean 0.5 std 0.25
  assert.deepEqual(Array.from(imageToRgb(x, 0, [1, 2, 2], [0.5], [0.25]).filter((_, i) => i % 3 === 0)), [
    255,
    0,
    128,
    255,
  ]);
  assert.deepEqual(Array.from(pixelRelevance(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), 1, [2, 1, 2])), [
    12,
    14,
  ]);
  const heat = relevanceToRgb(new Float32Array([-2, 0, 2, 1]), 2, 2);
  assert.deepEqual(Array.from(heat.subarray(0, 3)), divergingColor(-1));
  assert.deepEqual(Array.from(heat.subarray(6, 9)), divergingColor(1));
  assert.deepEqual(divergingColor(0), [247, 247, 247]);
  const up = upscaleNearest(new Uint8Array([1, 2, 3, 4, 5, 6]), 2, 1, 2);
  assert.deepEqual(Array.from(up.subarray(0, 12)), [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
  const back = decodePng(encodeRgbPng(up, 4, 2));
  assert.equal(back.width, 4);
  assert.deepEqual(Array.from(back.data as Uint8Array), Array.from(up));
  assert.throws(() => encodeRgbPng(up, 3, 3), /RGB image/);
});

Deno.test("svg helpers: nice ticks, number labels, escaping, histogram counts", () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 97, 4), [0, 20, 40, 60, 80, 100]);
  assert.equal(formatNumber(0.1 + 0.2), "0.3");
  assert.equal(formatNumber(123456), "1.23e+5");
  assert.equal(escapeXml("<&>"), "&lt;&amp;&gt;");
  assert.deepEqual(Array.from(histogramCounts([0, 0.1, 0.5, 0.99, 1, -3, NaN], 2, 0, 1)), [3, 3]);
});

Deno.test("embedding figure with 100 classes: a colour key strip naming every few classes", () => {
  const k = 100, n = 300;
  const labels = Int32Array.from({ length: n }, (_, i) => i % k);
  const pts = Float32Array.from(
    { length: 2 * n },
    (_, i) => (i % 2 ? labels[i >> 1] % 10 : labels[i >> 1] / 10),
  );
  const names = Array.from({ length: k }, (_, i) => `class_${i}`);
  const svg = scatterPlot({ title: "t", points: pts, labels, classNames: names });
  assert.ok(svg.includes(">class colours<"), "no colour key");
  for (const c of [0, 50, 99]) {
    assert.ok(svg.includes(`fill="${categoricalColor(c, k)}"`), `class ${c} swatch`);
  }
  assert.ok(svg.includes(">0 class_0<") && svg.includes(">9 class_9<"), "key labels");
});

sharedTest(
  "CIFAR-100 superclasses: the fine-to-coarse map and names agree with the official records; 5 classes each",
  () => {
    const dir = new URL("data/cifar-100-binary/", SHARED_DIR);
    const pairs = Deno.readFileSync(new URL("test_labels.official_order.bin", dir)); // (coarse, fine) per image
    assert.equal(pairs.length, 20_000);
    for (let i = 0; i < pairs.length; i += 2) assert.equal(CIFAR100_FINE_TO_COARSE[pairs[i + 1]], pairs[i]);
    const names = Deno.readTextFileSync(new URL("coarse_label_names.txt", dir)).split("\n").filter(Boolean);
    assert.deepEqual(names, [...CIFAR100_SUPERCLASSES]);
    for (let c = 0; c < 20; c++) assert.equal(CIFAR100_FINE_TO_COARSE.filter((v) => v === c).length, 5);
  },
);

Deno.test("colour groups: CIFAR-100 points are coloured by superclass with a 20-entry legend; others keep classes", async () => {
  const labels = Int32Array.from({ length: 200 }, (_, i) => i % 100);
  const g = colourGroups(labels, [...CIFAR100_CLASSES]);
  assert.equal(g.names.length, 20);
  assert.equal(g.note, "colour: CIFAR-100 superclass");
  assert.equal(g.names[g.labels[CIFAR100_CLASSES.indexOf("seal")]], "aquatic_mammals");
  const pts = Float32Array.from({ length: 400 }, (_, i) => (i % 2 ? g.labels[i >> 1] : labels[i >> 1] % 7));
  const svg = scatterPlot({
    title: "CIFAR-100 superclasses",
    points: pts,
    labels: g.labels,
    classNames: g.names,
  });
  for (const name of CIFAR100_SUPERCLASSES) assert.ok(svg.includes(`>${name}<`), `legend lacks ${name}`);
  const p = assertFigure(await renderSvg(svg), 620 + 40 + 7 * 30, 600, 1);
  for (const c of [0, 19]) assert.ok(hasColour(p, categoricalColor(c, 20)));
  const other = colourGroups(Int32Array.of(0, 1), ["a", "b"]);
  assert.deepEqual([other.names, other.note], [["a", "b"], ""]);
});
