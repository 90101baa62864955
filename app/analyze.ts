/**
 * `deno task analyze`: the paper's figures for any teacher and dataset. Runs the teacher on test
 * images plainly (x) and as an oracle (x*), then writes a self-contained HTML report with PNG
 * figures and a JSON of the numbers: relevance heatmaps (x, relevance, x*), reliability diagrams
 * with ECE on x and x*, entropy histograms of the responses, and 2-D embeddings (UMAP) of the
 * responses on x and x* coloured by class, with silhouette scores.
 *
 * @example
 * ```ts ignore
 * import { runAnalyze } from "./analyze.ts";
 * const r = await runAnalyze({ teacher: "resnet56", data: "cifar100", out: "reports/r56" }, { stream: Deno.stdout });
 * console.log(r.oracle.top1);
 * ```
 * @module
 */

import { colourGroups } from "../lib/data/metadata.ts";
import { encodeBase64 } from "../lib/encoding.ts";
import * as path from "node:path";
import { writeFileAtomic } from "../lib/atomic_file.ts";
import { loadDataset } from "../lib/data/load.ts";
import { BatchLoader } from "../lib/data/loader.ts";
import type { GradReduction } from "../lib/engines/engine.ts";
import type { TfjsBackendName } from "../lib/engines/tfjs/backend.ts";
import { embed2d, predictiveEntropy, silhouetteScore } from "../lib/explain/embedding.ts";
import { Explainer } from "../lib/explain/explainer.ts";
import type { EngineName } from "../lib/engines/registry.ts";
import {
  type LrpParams,
  type OracleOptions,
  type RelevanceRule,
  validateOracleOptions,
} from "../lib/oracle/mod.ts";
import { type ClassificationMetrics, MetricsAccumulator, softmaxRow } from "../lib/metrics.ts";
import {
  embeddingFigure,
  entropyHistogramFigure,
  relevanceHeatmapFigure,
  reliabilityFigure,
} from "../lib/plots/figures.ts";
import { createProgress, type ProgressStream } from "../lib/progress.ts";
import { belowChanceWarning, chooseNormalisation } from "./normalisation.ts";
import { teacherForDataset } from "./teachers.ts";

/** Options of {@link runAnalyze}. */
export interface AnalyzeOptions {
  /** Teacher file or zoo name (published checkpoint). */
  teacher: string;
  /** Architecture of a .pth teacher (inferred when absent). */
  teacherArch?: string;
  /** Dataset. */
  data: string;
  /** Where datasets are looked for. */
  dataDir?: string;
  /** Download missing data and teachers. */
  download?: boolean;
  /** Oracle step size (default 0.5). */
  gamma?: number;
  /** Oracle steps (default 1). */
  recNum?: number;
  /** CE reduction (default mean). */
  reduction?: GradReduction;
  /** Relevance rule (default grad-input). */
  relevance?: RelevanceRule;
  /** LRP parameters. */
  lrp?: LrpParams;
  /** Test images analysed (default 1000; the heatmaps use the first `samples`). */
  limit?: number;
  /** Images shown as heatmaps (default 8). */
  samples?: number;
  /** Report folder. */
  out: string;
  /** Engine of the teacher (default tfjs); every engine computes every relevance rule. */
  engine?: EngineName;
  /** tfjs backend for the teacher (default wasm). */
  backend?: TfjsBackendName;
  /** Seed of the embedding. */
  seed?: number;
  /** Normalisation mean (default: the teacher's metadata, else the data's statistics). */
  mean?: number[];
  /** Normalisation std (default: the teacher's metadata, else the data's statistics). */
  std?: number[];
}

/** Metrics of one response (teacher on x, or on x*). */
export interface ResponseSummary {
  /** Top-1, %. */
  top1: number;
  /** Top-5, %. */
  top5: number;
  /** ECE (15 bins), %. */
  ece: number;
  /** MCE, %. */
  mce: number;
  /** NLL of the true class. */
  nll: number;
  /** Mean predictive entropy, nats. */
  entropy: number;
  /** Silhouette of the logits by true class, in logit space. */
  silhouette: number;
  /** Silhouette in the 2-D embedding. */
  silhouette2d: number;
}

/** The JSON report. */
export interface AnalysisReport {
  /** Teacher description. */
  teacher: string;
  /** Dataset name. */
  dataset: string;
  /** Images analysed. */
  images: number;
  /** Oracle settings. */
  settings: { gamma: number; recNum: number; reduction: string; relevance: string };
  /** Teacher on x. */
  plain: ResponseSummary;
  /** Teacher on x*. */
  oracle: ResponseSummary;
  /** Figure files in the report folder. */
  figures: Record<string, string>;
  /** Seconds spent. */
  seconds: number;
}

/**
 * Runs the analysis and writes `index.html`, `report.json` and the PNG figures into `o.out`.
 *
 * @example
 * ```ts ignore
 * await runAnalyze({ teacher: "t.onnx", data: "synthetic", out: "reports/demo" }, { stream: Deno.stderr });
 * ```
 */
export async function runAnalyze(o: AnalyzeOptions, io: { stream: ProgressStream }): Promise<AnalysisReport> {
  const t0 = performance.now();
  const progress = createProgress({ stream: io.stream });
  const settings: OracleOptions & { relevance: RelevanceRule } = {
    gamma: o.gamma ?? 0.5,
    recNum: o.recNum ?? 1,
    reduction: o.reduction ?? "mean",
    relevance: o.relevance ?? "grad-input",
    lrp: o.lrp,
  };
  validateOracleOptions(settings);
  let dataset = await loadDataset(o.data, {
    dataDir: o.dataDir ?? "./data",
    download: o.download ?? false,
    testOnly: true,
    hint: "Pass --data-dir <folder> holding the files, or --download.",
  });
  const t = await teacherForDataset(o.teacher, dataset, {
    weightsDir: "weights",
    download: o.download ?? false,
    arch: o.teacherArch,
  });
  progress.line(`teacher  ${t.description}`);
  const norm = chooseNormalisation(dataset, t.metadata, o, dataset.shape[0], dataset.name);
  if (norm.note) progress.line(`note     ${norm.note}`);
  dataset = { ...dataset, mean: norm.mean, std: norm.std };
  const explainer = await Explainer.create(t.graph, t.weights, {
    engine: o.engine ?? "tfjs",
    backend: o.backend ?? "wasm",
  });
  const k = dataset.numClasses;
  const loader = new BatchLoader(dataset, "test", { batchSize: 64, limit: o.limit ?? 1000, worker: false });
  const samples = Math.min(o.samples ?? 8, loader.size);
  const plainAcc = new MetricsAccumulator(k), oracleAcc = new MetricsAccumulator(k);
  const plainLogits = new Float32Array(loader.size * k), oracleLogits = new Float32Array(loader.size * k);
  const labels = new Int32Array(loader.size);
  const pix = dataset.shape[0] * dataset.shape[1] * dataset.shape[2];
  const heat = {
    images: new Float32Array(samples * pix),
    relevance: new Float32Array(samples * pix),
    xStar: new Float32Array(samples * pix),
  };
  let seen = 0;
  progress.begin(`analyze ${loader.size} images`, loader.batchesPerEpoch);
  try {
    for await (const b of loader.epochBatches()) {
      const e = await explainer.explain(b, settings);
      plainAcc.add(e.logits, b.y);
      oracleAcc.add(e.oracleLogits, b.y);
      plainLogits.set(e.logits, seen * k);
      oracleLogits.set(e.oracleLogits, seen * k);
      labels.set(b.y, seen);
      const take = Math.max(0, Math.min(samples - seen, b.n));
      if (take > 0) {
        heat.images.set(b.x.subarray(0, take * pix), seen * pix);
        heat.relevance.set(e.relevance.subarray(0, take * pix), seen * pix);
        heat.xStar.set(e.xStar.subarray(0, take * pix), seen * pix);
      }
      seen += b.n;
      progress.tick(b.index + 1, { images: seen });
    }
  } finally {
    progress.end();
    await loader.close();
    explainer.dispose();
  }

  progress.begin("embeddings (UMAP)", 2);
  const seed = o.seed ?? 0;
  const emb0 = await embed2d(plainLogits, k, { seed });
  progress.tick(1);
  const embOracle = await embed2d(oracleLogits, k, { seed });
  progress.tick(2);
  progress.end();

  const summarise = (m: ClassificationMetrics, logits: Float32Array, emb: Float32Array): ResponseSummary => ({
    top1: m.top1,
    top5: m.top5,
    ece: m.ece,
    mce: m.mce,
    nll: m.nll,
    entropy: m.entropy,
    silhouette: silhouetteScore(logits, k, labels),
    silhouette2d: silhouetteScore(emb, 2, labels),
  });
  const pm = plainAcc.result(), om = oracleAcc.result();
  const warning = belowChanceWarning(pm.top1, k, `teacher ${o.teacher}`, dataset.name);
  if (warning) progress.line(warning);
  const plain = summarise(pm, plainLogits, emb0);
  const oracle = summarise(om, oracleLogits, embOracle);

  await Deno.mkdir(o.out, { recursive: true });
  const rule = settings.relevance;
  const gammaText = `gamma ${settings.gamma}`;
  const pY = (logits: Float32Array, i: number) => {
    const p = new Float64Array(k);
    softmaxRow(logits, i * k, k, p);
    return p[labels[i]];
  };
  // 100 classes get 20 superclass colours with a legend (silhouettes stay on the classes).
  const colours = colourGroups(labels, dataset.classNames);
  const colourNote = colours.note ? ` (${colours.note})` : "";
  const figures: Record<string, Uint8Array> = {
    "heatmaps.png": await relevanceHeatmapFigure({
      ...heat,
      n: samples,
      shape: dataset.shape,
      mean: dataset.mean,
      std: dataset.std,
      labels: labels.subarray(0, samples),
      classNames: dataset.classNames,
      ruleName: rule,
      title: `x, ${rule}, x* (${gammaText})`,
      captions: {
        image: Array.from({ length: samples }, (_, i) => `p(y|x) ${pY(plainLogits, i).toFixed(3)}`),
        xStar: Array.from({ length: samples }, (_, i) => `p(y|x*) ${pY(oracleLogits, i).toFixed(3)}`),
      },
    }),
    "reliability_x.png": await reliabilityFigure(pm.bins, pm.ece, "Teacher on x (gamma 0)"),
    "reliability_xstar.png": await reliabilityFigure(om.bins, om.ece, `Oracle teacher on x* (${gammaText})`),
    "entropy.png": await entropyHistogramFigure(
      [
        { label: "teacher on x", entropy: predictiveEntropy(plainLogits, k) },
        { label: "oracle on x*", entropy: predictiveEntropy(oracleLogits, k) },
      ],
      "Entropy of the teacher's responses",
      { numClasses: k },
    ),
    "embedding_x.png": await embeddingFigure(emb0, colours.labels, colours.names, {
      embedded: plain.silhouette2d,
      original: plain.silhouette,
    }, `Teacher responses on x (gamma 0), UMAP${colourNote}`),
    "embedding_xstar.png": await embeddingFigure(embOracle, colours.labels, colours.names, {
      embedded: oracle.silhouette2d,
      original: oracle.silhouette,
    }, `Oracle responses on x* (${gammaText}), UMAP${colourNote}`),
  };
  for (const [name, bytes] of Object.entries(figures)) await writeFileAtomic(path.join(o.out, name), bytes);
  const report: AnalysisReport = {
    teacher: t.description,
    dataset: dataset.name,
    images: seen,
    settings: {
      gamma: settings.gamma,
      recNum: settings.recNum,
      reduction: settings.reduction,
      relevance: rule,
    },
    plain,
    oracle,
    figures: Object.fromEntries(Object.keys(figures).map((f) => [f.replace(/\.png$/, ""), f])),
    seconds: (performance.now() - t0) / 1000,
  };
  await writeFileAtomic(path.join(o.out, "report.json"), JSON.stringify(report, null, 2) + "\n");
  await writeFileAtomic(path.join(o.out, "index.html"), html(report, figures));
  progress.line(`report   ${path.join(o.out, "index.html")}`);
  return report;
}

function html(r: AnalysisReport, figures: Record<string, Uint8Array>): string {
  const img = (name: string, alt: string) =>
    `<figure><img alt="${alt}" src="data:image/png;base64,${
      encodeBase64(figures[name])
    }"><figcaption>${alt}</figcaption></figure>`;
  const row = (label: string, s: ResponseSummary) =>
    `<tr><td>${label}</td>${
      [s.top1, s.top5, s.ece, s.mce].map((v) => `<td>${v.toFixed(2)}%</td>`).join("")
    }<td>${s.nll.toFixed(4)}</td><td>${s.entropy.toFixed(4)}</td><td>${s.silhouette.toFixed(3)}</td><td>${
      s.silhouette2d.toFixed(3)
    }</td></tr>`;
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>oracle-kd analysis: ${esc(r.teacher)}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}
figure{margin:8px 0}figcaption{text-align:center;color:#555}img{width:100%;height:auto}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:16px;align-items:start}
.single{max-width:720px}</style></head><body>
<h1>Oracle analysis</h1>
<p>Teacher: ${esc(r.teacher)}<br>Data: ${esc(r.dataset)} test split, ${r.images} images<br>
Oracle: x* = x - gamma &middot; |x| &middot; dCE/dx generalised as x + gamma &middot; sign(x) &middot; R (${
    esc(r.settings.relevance)
  }), gamma ${r.settings.gamma}, rec_num ${r.settings.recNum}, ${esc(r.settings.reduction)} reduction</p>
<table><tr><th>response</th><th>top-1</th><th>top-5</th><th>ECE</th><th>MCE</th><th>NLL</th><th>entropy</th>
<th>silhouette</th><th>silhouette 2-D</th></tr>
${row("teacher on x (gamma 0)", r.plain)}
${row(`oracle on x* (gamma ${r.settings.gamma})`, r.oracle)}</table>
<h2>Relevance-reinforced inputs</h2><div class="single">${
    img("heatmaps.png", "x, relevance and x* for sample test images")
  }</div>
<h2>Calibration</h2><div class="pair">${img("reliability_x.png", "reliability on x")}${
    img("reliability_xstar.png", "reliability on x*")
  }</div>
<h2>Entropy</h2><div class="single">${img("entropy.png", "entropy of the responses on x and on x*")}</div>
<h2>Clustering of the responses</h2><div class="pair">${
    img("embedding_x.png", "embedding of responses on x")
  }${img("embedding_xstar.png", "embedding of responses on x*")}</div>
<p>Generated in ${r.seconds.toFixed(1)} s by oracle-kd. Numbers: report.json.</p>
</body></html>
`;
}
