/**
 * `deno task test --model <file.onnx>`: evaluates a classifier on a dataset's test split with
 * onnxruntime, with the calibration metrics the paper argues with (ECE, MCE, NLL) next to top-1
 * and top-5; optionally the oracle effect of a teacher (accuracy and ECE on x for gamma 0 and on
 * x* for gamma > 0). Dataset, normalisation and class names come from the model's metadata when
 * this package exported it; flags override them.
 *
 * @example
 * ```ts ignore
 * import { evaluateModel, formatReport } from "./evaluate.ts";
 * const report = await evaluateModel({ model: "weights/student.onnx", dataDir: "data" });
 * console.log(formatReport(report));
 * ```
 * @module
 */

import * as path from "node:path";
import { writeFileAtomic } from "../lib/atomic_file.ts";
import type { ImageDataset } from "../lib/data/dataset.ts";
import { loadDataset } from "../lib/data/load.ts";
import { BatchLoader } from "../lib/data/loader.ts";
import type { GradReduction } from "../lib/engines/engine.ts";
import {
  type LrpParams,
  oracleResponse,
  type RelevanceRule,
  validateOracleOptions,
} from "../lib/oracle/mod.ts";
import { createEngine, type EngineChoice } from "../lib/engines/registry.ts";
import { type Device, OnnxClassifier } from "./onnx_classifier.ts";
import { type ClassificationMetrics, MetricsAccumulator } from "../lib/metrics.ts";
import { confidenceHistogramFigure, reliabilityFigure } from "../lib/plots/figures.ts";
import { belowChanceWarning } from "./normalisation.ts";
import { teacherForDataset } from "./teachers.ts";
import { countNonFinite, describeNonFinite } from "../lib/non_finite.ts";

/** Options of {@link evaluateModel}. */
export interface EvaluateOptions {
  /** The ONNX classifier to evaluate. */
  model: string;
  /** Dataset (default: the model's metadata). */
  data?: string;
  /** An in-memory dataset to evaluate on instead of loading `data`. */
  dataset?: ImageDataset;
  /** Where datasets are looked for. */
  dataDir?: string;
  /** Download a missing dataset. */
  download?: boolean;
  /** cpu (default), cuda, webgpu, or auto (CUDA when installed, else WebGPU on a hardware GPU, else CPU). */
  device?: Device;
  /** Images per inference call (default 256). */
  batchSize?: number;
  /** Evaluate only the first N test images. */
  limit?: number;
  /** Override the normalisation mean. */
  mean?: number[];
  /** Override the normalisation std. */
  std?: number[];
  /** Write a reliability diagram and a confidence histogram (PNG) into this folder. */
  plotsDir?: string;
  /** Also evaluate a teacher plainly and as an oracle. */
  oracle?: {
    /** Teacher file or zoo name. */
    teacher: string;
    /** Architecture of a .pth teacher. */
    teacherArch?: string;
    /** Oracle step sizes to compare (0 = the plain teacher). */
    gammas: number[];
    /** Oracle steps. */
    recNum: number;
    /** CE reduction. */
    reduction: GradReduction;
    /** Relevance behind x* (default grad-input, the paper's); LRP rules run the teacher on tfjs-wasm. */
    relevance?: RelevanceRule;
    /** LRP rule parameters. */
    lrp?: LrpParams;
    /** Engine for the teacher's gradients. */
    engine: EngineChoice;
  };
}

/** One line of the oracle comparison. */
export interface OracleRow {
  /** Step size (0: the teacher on x). */
  gamma: number;
  /** Metrics of the teacher's response. */
  metrics: ClassificationMetrics;
}

/** Everything an evaluation measured. */
export interface EvaluationReport {
  /** Model file. */
  model: string;
  /** Dataset name. */
  dataset: string;
  /** Device used. */
  device: "cpu" | "cuda" | "webgpu";
  /** Why `auto` fell back to the CPU, if it did. */
  deviceNote?: string;
  /** Class names by index. */
  classNames: string[];
  /** Student metrics (percentages; NLL in nats). */
  metrics: ClassificationMetrics;
  /** Images per second of inference alone. */
  imagesPerSec: number;
  /** Wall seconds of the evaluation pass (data included). */
  seconds: number;
  /** Teacher plain vs oracle, when asked for. */
  oracle?: {
    /** Teacher file and description. */
    teacher: string;
    /** Relevance rule behind x*. */
    relevance: RelevanceRule;
    /** Engine that computed the teacher's responses. */
    engine: string;
    /** One row per gamma. */
    rows: OracleRow[];
  };
  /** PNG files written with `plotsDir`. */
  plots?: string[];
  /** Problems worth a look (a model or teacher scoring below chance). */
  warnings?: string[];
}

/** A PyTorch checkpoint given where an ONNX file is expected: say how to convert it. */
async function refusePytorchCheckpoint(file: string): Promise<void> {
  let head: Uint8Array;
  try {
    using f = await Deno.open(file);
    head = new Uint8Array(2);
    await f.read(head);
  } catch {
    return; // the ONNX reader reports unreadable files
  }
  const zip = head[0] === 0x50 && head[1] === 0x4b;
  if (zip || head[0] === 0x80 || /\.(pth|pt|tar)$/i.test(file)) {
    const onnx = file.replace(/\.(pth|pt|tar)$/i, "") + ".onnx";
    throw new Error(
      `${file} is a PyTorch checkpoint; test evaluates ONNX files: convert it first with ` +
        `\`deno task convert --from ${file} --out ${onnx} --dataset <cifar10|cifar100|fashion-mnist>\`` +
        ` (add --arch <name> if its architecture cannot be inferred), then \`deno task test --model ${onnx}\``,
    );
  }
}

/**
 * Runs the evaluation.
 *
 * @example
 * ```ts ignore
 * const r = await evaluateModel({ model: "m.onnx", data: "cifar100", limit: 1000 });
 * ```
 */
export async function evaluateModel(o: EvaluateOptions): Promise<EvaluationReport> {
  await refusePytorchCheckpoint(o.model);
  const clf = await OnnxClassifier.open(o.model, o.device ?? "cpu");
  try {
    const name = o.dataset?.name ?? o.data ?? clf.metadata.dataset;
    if (!name) {
      throw new Error(
        `${o.model}: the model does not say which dataset it was trained on; pass --data <name>`,
      );
    }
    const dataset = o.dataset ?? await loadDataset(name, {
      dataDir: o.dataDir ?? "./data",
      download: o.download ?? false,
      testOnly: true,
      hint: "Pass --data-dir <folder> holding the files, or --download.",
    });
    clf.checkFits(dataset.shape, dataset.numClasses);
    const channels = dataset.shape[0];
    const normalised: ImageDataset = {
      ...dataset,
      mean: checkNormalisation(o.mean, "--mean", channels, dataset.name) ??
        checkNormalisation(clf.metadata.mean, `${o.model}: metadata mean`, channels, dataset.name) ??
        dataset.mean,
      std: checkNormalisation(o.std, "--std", channels, dataset.name, true) ??
        checkNormalisation(clf.metadata.std, `${o.model}: metadata std`, channels, dataset.name, true) ??
        dataset.std,
    };
    // The metadata's class names name the model's training classes; another --data has its own.
    const sameData = o.data === undefined || clf.metadata.dataset === undefined ||
      o.data === clf.metadata.dataset;
    const metaNames = clf.metadata.classNames;
    const classNames = sameData && metaNames?.length === dataset.numClasses ? metaNames : dataset.classNames;
    const loader = new BatchLoader(normalised, "test", {
      batchSize: o.batchSize ?? 256,
      limit: o.limit,
      worker: true,
    });
    const acc = new MetricsAccumulator(dataset.numClasses);
    let inferMs = 0;
    const t0 = performance.now();
    try {
      for await (const b of loader.epochBatches()) {
        const s = performance.now();
        const logits = await clf.run(b.x, b.n, b.shape);
        inferMs += performance.now() - s;
        acc.add(logits, b.y);
      }
    } finally {
      await loader.close();
    }
    const metrics = acc.result();
    const warning = belowChanceWarning(
      metrics.top1,
      dataset.numClasses,
      path.basename(o.model),
      dataset.name,
    );
    const report: EvaluationReport = {
      model: o.model,
      dataset: dataset.name,
      device: clf.device,
      deviceNote: clf.fallbackReason,
      classNames,
      metrics,
      imagesPerSec: metrics.count / (inferMs / 1000),
      seconds: (performance.now() - t0) / 1000,
      warnings: warning ? [warning] : undefined,
    };
    if (o.oracle) {
      const oracle = report.oracle = await oracleComparison(normalised, o);
      const plain = oracle?.rows.find((r) => r.gamma === 0);
      const w = plain &&
        belowChanceWarning(
          plain.metrics.top1,
          dataset.numClasses,
          `teacher ${o.oracle.teacher}`,
          dataset.name,
        );
      if (w) report.warnings = [...report.warnings ?? [], w];
    }
    if (o.plotsDir) report.plots = await writePlots(o.plotsDir, report);
    return report;
  } finally {
    await clf.close();
  }
}

/** `values` (a --mean/--std flag or the metadata's) when it has one finite value per channel. */
function checkNormalisation(
  values: number[] | undefined,
  what: string,
  channels: number,
  dataset: string,
  positive = false,
): number[] | undefined {
  if (values === undefined) return undefined;
  if (values.length !== channels || values.some((v) => !Number.isFinite(v) || (positive && v <= 0))) {
    throw new Error(
      `${what} needs ${channels} ${positive ? "positive" : "finite"} number${
        channels === 1 ? "" : "s"
      } (one per channel of ${dataset}'s images), got [${values.join(", ")}]`,
    );
  }
  return values;
}

async function oracleComparison(
  dataset: ImageDataset,
  o: EvaluateOptions,
): Promise<EvaluationReport["oracle"]> {
  const spec = o.oracle!;
  const t = await teacherForDataset(spec.teacher, dataset, {
    weightsDir: "weights",
    download: o.download ?? false,
    arch: spec.teacherArch,
  });
  const relevance = spec.relevance ?? "grad-input";
  const options = (gamma: number) => ({
    gamma,
    recNum: spec.recNum,
    reduction: spec.reduction,
    relevance,
    lrp: spec.lrp,
  });
  spec.gammas.forEach((g) => validateOracleOptions(options(g)));
  const engine = await createEngine(spec.engine);
  const teacher = await engine.loadFrozen(t.graph, t.weights);
  // Batches of 64 as the paper trains: with the mean reduction, x* depends on the batch size.
  const loader = new BatchLoader(dataset, "test", { batchSize: 64, limit: o.limit, worker: false });
  const rows: OracleRow[] = [];
  try {
    for (const gamma of spec.gammas) {
      const acc = new MetricsAccumulator(dataset.numClasses);
      for await (const b of loader.epochBatches()) {
        const logits = (await oracleResponse(teacher, b, options(gamma))).logits;
        const bad = countNonFinite(`teacher logits at gamma ${gamma}`, logits);
        if (bad) {
          throw new Error(
            `${spec.teacher}: the teacher gives non-finite outputs: ${describeNonFinite([bad])}; ` +
              `no metrics are computed from NaN/Inf logits`,
          );
        }
        acc.add(logits, b.y);
      }
      rows.push({ gamma, metrics: acc.result() });
    }
  } finally {
    await loader.close();
    teacher.dispose();
  }
  return { teacher: `${spec.teacher} (${t.description})`, relevance, engine: engine.name, rows };
}

/**
 * Reliability diagram and confidence histogram of the model (and of the oracle rows). Every file
 * name starts with the model's name (and the oracle's also name the teacher), so runs of other
 * models written into one folder never overwrite each other.
 */
async function writePlots(dir: string, r: EvaluationReport): Promise<string[]> {
  const name = path.basename(r.model).replace(/\.onnx$/i, "");
  const files: [string, Uint8Array][] = [];
  files.push([
    `${name}_reliability.png`,
    await reliabilityFigure(r.metrics.bins, r.metrics.ece, `${name} on ${r.dataset}`),
  ]);
  files.push([
    `${name}_confidence.png`,
    await confidenceHistogramFigure(r.metrics.bins, `${name}: confidence of the top class`),
  ]);
  const teacher = r.oracle
    ? safeName(path.basename(r.oracle.teacher.split(" (")[0]).replace(/\.\w+$/, ""))
    : "";
  for (const row of r.oracle?.rows ?? []) {
    const rule = r.oracle!.relevance === "grad-input" ? "" : `${r.oracle!.relevance}_`;
    const tag = row.gamma === 0 ? `teacher_${teacher}_x` : `oracle_${teacher}_${rule}gamma${row.gamma}`;
    const title = row.gamma === 0
      ? `teacher ${teacher} on x`
      : `oracle teacher ${teacher} on x* (gamma ${row.gamma})`;
    files.push([
      `${name}_${tag}_reliability.png`,
      await reliabilityFigure(row.metrics.bins, row.metrics.ece, title),
    ]);
  }
  const written: string[] = [];
  for (const [file, bytes] of files) {
    const p = path.join(dir, file);
    await writeFileAtomic(p, bytes);
    written.push(p);
  }
  return written;
}

/**
 * A readable terminal report.
 *
 * @example
 * ```ts ignore
 * console.log(formatReport(report));
 * ```
 */
export function formatReport(r: EvaluationReport): string {
  const m = r.metrics;
  const pc = m.perClass.map((v, i) => [v, i] as const).filter(([v]) => Number.isFinite(v)).sort((a, b) =>
    a[0] - b[0]
  );
  const cls = (i: number) => r.classNames[i] ?? String(i);
  const lines = [
    `model    ${r.model}`,
    `data     ${r.dataset} test split, ${m.count} images`,
    `device   ${r.device}${r.deviceNote ? ` (--device auto fell back to the CPU: ${r.deviceNote})` : ""}`,
    "",
    "  top-1     top-5     NLL      ECE      MCE     img/s",
    `  ${pct(m.top1)}  ${pct(m.top5)}  ${m.nll.toFixed(4).padStart(7)}  ${pct(m.ece, 6)}  ${pct(m.mce, 6)}  ${
      r.imagesPerSec.toFixed(0).padStart(7)
    }`,
    "",
    `per-class top-1: worst ${pc.slice(0, 3).map(([v, i]) => `${cls(i)} ${v.toFixed(1)}%`).join(", ")}; ` +
    `best ${pc.slice(-3).reverse().map(([v, i]) => `${cls(i)} ${v.toFixed(1)}%`).join(", ")}`,
  ];
  if (r.oracle) {
    lines.push(
      "",
      `teacher  ${r.oracle.teacher}`,
      `oracle   relevance ${r.oracle.relevance} on ${r.oracle.engine}`,
      "  gamma   input   top-1     ECE      NLL     entropy",
    );
    for (const row of r.oracle.rows) {
      const mm = row.metrics;
      lines.push(
        `  ${String(row.gamma).padEnd(6)}  ${row.gamma === 0 ? "x " : "x*"}    ${pct(mm.top1)}  ${
          pct(mm.ece, 6)
        }  ${mm.nll.toFixed(4).padStart(7)}  ${mm.entropy.toFixed(4).padStart(7)}`,
      );
    }
  }
  if (r.plots?.length) lines.push("", `plots    ${r.plots.join(", ")}`);
  for (const w of r.warnings ?? []) lines.push("", w);
  return lines.join("\n");
}

function pct(v: number, width = 7): string {
  return `${v.toFixed(2)}%`.padStart(width + 1);
}

/** A name safe in a file name: letters, digits, `.`, `_` and `-`. */
function safeName(s: string): string {
  return s.replace(/[^\w.-]+/g, "_");
}
