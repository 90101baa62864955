/**
 * Run logs that people open in their usual tools, next to `metrics.jsonl`: `metrics.csv` (one row
 * per epoch, for spreadsheets and pandas) and `curves.png` (loss, train/test top-1, test ECE and the
 * learning rate per epoch). Both are rewritten from the whole history after every epoch, atomically.
 *
 * @example
 * ```ts
 * import { metricsCsv } from "./run_logs.ts";
 * const rec = { epoch: 1, lr: 0.1, train_loss: 2.1, train_ce: 2.1, train_kd: 0, train_top1: 20, train_top5: 60,
 *   teacher_train_top1: null, test_top1: 25, test_top5: 70, test_nll: 2, test_ece: 4, images_per_sec: 900, epoch_seconds: 30 };
 * console.log(metricsCsv([rec]).split("\n")[1]); // 1,0.1,2.1,2.1,0,20,60,,25,70,2,4,900,30
 * ```
 * @module
 */

import * as path from "node:path";
import { writeFileAtomic } from "./atomic_file.ts";
import { lineChart, type LineSeries } from "./plots/charts.ts";
import { renderSvg } from "./plots/render.ts";
import { svgDocument } from "./plots/svg.ts";
import type { EpochRecord } from "./trainer.ts";

/** File names of the run logs inside a run folder. */
export const RUN_LOG_FILES = { csv: "metrics.csv", curves: "curves.png" } as const;

/** The CSV columns, in order: the fields of an epoch record. */
export const CSV_COLUMNS: readonly (keyof EpochRecord)[] = [
  "epoch",
  "lr",
  "train_loss",
  "train_ce",
  "train_kd",
  "train_top1",
  "train_top5",
  "teacher_train_top1",
  "test_top1",
  "test_top5",
  "test_nll",
  "test_ece",
  "images_per_sec",
  "epoch_seconds",
];

/**
 * The epoch records as CSV text: a header row of {@link CSV_COLUMNS}, then one row per epoch
 * (numbers as JavaScript prints them, so they read back exactly; a missing teacher is empty).
 *
 * @example
 * ```ts
 * import { metricsCsv } from "./run_logs.ts";
 * console.log(metricsCsv([]).trim()); // epoch,lr,train_loss,train_ce,train_kd,train_top1,train_top5,teacher_train_top1,test_top1,test_top5,test_nll,test_ece,images_per_sec,epoch_seconds
 * ```
 */
export function metricsCsv(records: readonly EpochRecord[]): string {
  const rows = records.map((r) => CSV_COLUMNS.map((k) => (r[k] === null ? "" : String(r[k]))).join(","));
  return [CSV_COLUMNS.join(","), ...rows].join("\n") + "\n";
}

const PANEL = { width: 520, height: 340 };

/**
 * The training-curve figure as SVG: four panels (loss; train, test and teacher top-1; test ECE;
 * learning rate) over epochs.
 *
 * @example
 * ```ts
 * import { curvesSvg } from "./run_logs.ts";
 * console.log(curvesSvg([]).startsWith("<svg")); // true
 * ```
 */
export function curvesSvg(records: readonly EpochRecord[], title = "training curves"): string {
  const x = records.map((r) => r.epoch);
  const s = (label: string, y: (r: EpochRecord) => number | null): LineSeries => ({
    label,
    x,
    y: records.map((r) => y(r) ?? NaN),
  });
  const withTeacher = records.some((r) => r.teacher_train_top1 !== null);
  const withKd = records.some((r) => r.train_kd !== 0);
  const panels = [
    lineChart({
      ...PANEL,
      title: "loss",
      xLabel: "epoch",
      yLabel: "mean training loss",
      series: [
        s("total", (r) => r.train_loss),
        ...(withKd ? [s("CE part", (r) => r.train_ce), s("KL part", (r) => r.train_kd)] : []),
      ],
    }),
    lineChart({
      ...PANEL,
      title: "top-1 accuracy",
      xLabel: "epoch",
      yLabel: "top-1 (%)",
      series: [
        s("train", (r) => r.train_top1),
        s("test", (r) => r.test_top1),
        ...(withTeacher ? [s("teacher (train)", (r) => r.teacher_train_top1)] : []),
      ],
    }),
    lineChart({
      ...PANEL,
      title: "test calibration",
      xLabel: "epoch",
      yLabel: "ECE, 15 bins (%)",
      series: [s("test ECE", (r) => r.test_ece)],
    }),
    lineChart({
      ...PANEL,
      title: "learning rate",
      xLabel: "epoch",
      yLabel: "learning rate",
      series: [s("lr", (r) => r.lr)],
      yRange: [0, 1.1 * Math.max(0, ...records.map((r) => r.lr))],
    }),
  ];
  const band = 36;
  const body = panels.map((svg, i) =>
    svg.replace("<svg ", `<svg x="${(i % 2) * PANEL.width}" y="${band + Math.floor(i / 2) * PANEL.height}" `)
  ).join("");
  const heading = `<text x="${PANEL.width}" y="25" text-anchor="middle" font-size="19">${
    title.replace(/&/g, "&amp;").replace(/</g, "&lt;")
  }</text>`;
  return svgDocument(2 * PANEL.width, band + 2 * PANEL.height, heading + body);
}

/**
 * Rewrites `metrics.csv` and `curves.png` in `runDir` from the run's epoch records.
 *
 * @example
 * ```ts
 * import { writeRunLogs } from "./run_logs.ts";
 * const dir = await Deno.makeTempDir();
 * await writeRunLogs(dir, []);
 * console.log((await Deno.readTextFile(`${dir}/metrics.csv`)).startsWith("epoch,lr")); // true
 * ```
 */
export async function writeRunLogs(
  runDir: string,
  records: readonly EpochRecord[],
  title?: string,
): Promise<void> {
  await writeFileAtomic(path.join(runDir, RUN_LOG_FILES.csv), metricsCsv(records));
  const png = await renderSvg(
    curvesSvg(records, title ?? `training curves: ${path.basename(path.resolve(runDir))}`),
  );
  await writeFileAtomic(path.join(runDir, RUN_LOG_FILES.curves), png);
}
