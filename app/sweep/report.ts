/**
 * The sweep report: `results.md`, `results.json` and `results.png` in the sweep folder, read from
 * the cells' run folders. Laid out like the paper's table (teacher -> student rows, method
 * columns): mean and standard deviation over seeds of the last-epoch test top-1, ECE and NLL,
 * then the best test top-1 (an epoch selected on the test set, labelled so), the teacher's own
 * plain and oracle test accuracy, and the per-seed paired difference oracle KD minus plain KD
 * with a 95 % t interval.
 *
 * @example
 * ```ts ignore
 * const r = await writeSweepReport(await loadPlan("runs/sweep"));
 * console.log(r.files);
 * ```
 * @module
 */

import * as path from "node:path";
import { TEACHER_TEST_FILE, type TeacherTest } from "../../lib/run_folder.ts";
import { writeFileAtomic } from "../../lib/atomic_file.ts";
import { type EpochRecord, RUN_FILES, type RunSummary } from "../../lib/trainer.ts";
import { sweepFigurePng } from "./figure.ts";
import type { SweepCell, SweepPlan } from "./plan.ts";
import type { SweepMethod } from "./spec.ts";
import { cellStatus } from "./state.ts";
import { mean, type PairedDifference, pairedDifference, sampleStd } from "./stats.ts";

/** The numbers of one finished cell (accuracies and ECE in %). */
export interface CellResult {
  /** Cell name. */
  name: string;
  /** Seed. */
  seed: number;
  /** After the last epoch. */
  last: { top1: number; ece: number; nll: number; epoch: number };
  /** At the epoch with the best test top-1 (selected on the test set). */
  bestOnTest: { top1: number; ece: number; nll: number; epoch: number };
  /** The teacher's test metrics recorded by the run (null for CE-only or when not recorded). */
  teacher: TeacherTest | null;
  /** The supervising teacher's training top-1 in the last epoch (oracle on x* for oracle KD). */
  teacherTrainTop1: number | null;
}

/** Mean, standard deviation and the values behind them. */
export interface Summary {
  /** Mean. */
  mean: number;
  /** Sample standard deviation (null below two values). */
  std: number | null;
  /** Values, in seed order. */
  values: number[];
}

/** One table cell: a method column of a teacher -> student row over its seeds. */
export interface ResultGroup {
  /** Row label. */
  row: string;
  /** Column label. */
  column: string;
  /** Method. */
  method: SweepMethod;
  /** Seeds with finished runs. */
  seeds: number[];
  /** Cells planned in this group. */
  planned: number;
  /** Last-epoch metrics. */
  last: { top1: Summary; ece: Summary; nll: Summary };
  /** Best-epoch metrics, the epoch selected on the test set. */
  bestOnTest: { top1: Summary; ece: Summary; nll: Summary };
  /** Cell names. */
  cells: string[];
}

/** Oracle KD minus plain KD in one row, paired by seed. */
export interface ResultDifference {
  /** Row label. */
  row: string;
  /** Oracle column. */
  oracle: string;
  /** Plain KD column. */
  plain: string;
  /** Seeds paired. */
  seeds: number[];
  /** Last-epoch top-1 difference (points). */
  top1: PairedDifference;
  /** Last-epoch ECE difference (points). */
  ece: PairedDifference;
  /** Last-epoch NLL difference. */
  nll: PairedDifference;
  /** Best-on-test top-1 difference. */
  bestOnTestTop1: PairedDifference;
}

/** The teacher of a row, as the runs measured it on the test set. */
export interface TeacherRow {
  /** Row label. */
  row: string;
  /** Plain test top-1. */
  plainTop1: number | null;
  /** Oracle test top-1 per gamma. */
  oracleTop1: { gamma: number; top1: number }[];
}

/** Everything in results.json. */
export interface SweepReport {
  /** Study name. */
  name: string;
  /** ISO time. */
  generated: string;
  /** Finished cells of all. */
  done: number;
  /** Cells planned. */
  total: number;
  /** Settings the same for every cell that a reader needs (data, epochs...). */
  fixed: Record<string, unknown>;
  /** Row labels. */
  rows: string[];
  /** Column labels. */
  columns: string[];
  /** Table cells. */
  groups: ResultGroup[];
  /** Oracle minus plain KD. */
  differences: ResultDifference[];
  /** Teachers. */
  teachers: TeacherRow[];
  /** Per finished cell. */
  cells: CellResult[];
  /** Files written. */
  files: string[];
}

const METHOD_LABEL: Record<SweepMethod, string> = { train: "CE only", plain: "KD", oracle: "oracle KD" };

/**
 * Reads one finished cell's run folder (null when it is not finished).
 *
 * @example
 * ```ts ignore
 * const r = await readCellResult(plan.cells[0]);
 * ```
 */
export async function readCellResult(cell: SweepCell): Promise<CellResult | null> {
  const dir = cell.config.out;
  if ((await cellStatus(dir, cell.config, cell.command)).action !== "done") return null;
  const summary = JSON.parse(await Deno.readTextFile(path.join(dir, RUN_FILES.summary))) as RunSummary;
  const records = (await Deno.readTextFile(path.join(dir, RUN_FILES.metrics))).split("\n")
    .filter((l) => l.trim()).map((l) => JSON.parse(l) as EpochRecord);
  const last = records.at(-1)!;
  const bestEpoch = summary.best_test_acc.epoch;
  const best = records.find((r) => r.epoch === bestEpoch) ?? last;
  let teacher: TeacherTest | null = null;
  try {
    teacher = JSON.parse(await Deno.readTextFile(path.join(dir, TEACHER_TEST_FILE)));
  } catch { /* CE-only, or a run that did not test its teacher */ }
  return {
    name: cell.name,
    seed: cell.seed,
    last: { top1: last.test_top1, ece: last.test_ece, nll: last.test_nll, epoch: last.epoch },
    bestOnTest: { top1: best.test_top1, ece: best.test_ece, nll: best.test_nll, epoch: best.epoch },
    teacher,
    teacherTrainTop1: last.teacher_train_top1,
  };
}

function summarize(values: number[]): Summary {
  const s = sampleStd(values);
  return { mean: mean(values), std: Number.isFinite(s) ? s : null, values };
}

function axisText(axes: Record<string, unknown>, keys: string[]): string {
  return keys.filter((k) => k in axes).map((k) => `${k} ${axes[k]}`).join(", ");
}

/** Row label of a cell (CE-only cells have none of their own: they join every row of their student). */
function rowOf(plan: SweepPlan, c: SweepCell, teacherLabel: string): string {
  const extra = axisText(c.axes, plan.rowKeys);
  return `${teacherLabel} -> ${c.student}${extra ? ` (${extra})` : ""}`;
}

function columnOf(plan: SweepPlan, c: SweepCell): string {
  const extra = axisText(c.axes, plan.columnKeys);
  return `${METHOD_LABEL[c.method]}${extra ? ` (${extra})` : ""}`;
}

/**
 * Computes the report of a sweep from its run folders (no files written).
 *
 * @example
 * ```ts ignore
 * const report = await sweepReport(plan);
 * ```
 */
export async function sweepReport(plan: SweepPlan): Promise<SweepReport> {
  const cells = plan.cells.filter((c) => c.kind === "cell");
  const results = new Map<string, CellResult>();
  for (const c of cells) {
    const r = await readCellResult(c);
    if (r) results.set(c.name, r);
  }
  // Rows come from the distillation cells; a sweep of CE-only cells has one row per student.
  const distill = cells.filter((c) => c.method !== "train");
  const rowCells = new Map<string, { teacherLabel: string; sample: SweepCell }>();
  for (const c of distill.length ? distill : cells) {
    const label = c.method === "train" ? "(none)" : c.teacherLabel;
    const row = rowOf(plan, c, label);
    if (!rowCells.has(row)) rowCells.set(row, { teacherLabel: label, sample: c });
  }
  const columns: string[] = [];
  for (const m of ["train", "plain", "oracle"] as SweepMethod[]) {
    for (const c of cells.filter((x) => x.method === m)) {
      const col = columnOf(plan, c);
      if (!columns.includes(col)) columns.push(col);
    }
  }

  const groups: ResultGroup[] = [];
  const groupCells = new Map<string, SweepCell[]>();
  for (const [row, { sample }] of rowCells) {
    for (const c of cells) {
      const sameRowKeys = plan.rowKeys.every((k) =>
        JSON.stringify(c.axes[k]) === JSON.stringify(sample.axes[k])
      );
      const inRow = c.method === "train"
        ? c.student === sample.student && sameRowKeys
        : rowOf(plan, c, c.teacherLabel) === row;
      if (!inRow) continue;
      const key = `${row}\u0000${columnOf(plan, c)}`;
      groupCells.set(key, [...(groupCells.get(key) ?? []), c]);
    }
  }
  for (const [key, gcells] of groupCells) {
    const [row, column] = key.split("\u0000");
    const rs = gcells.map((c) => results.get(c.name)).filter((r): r is CellResult => !!r)
      .sort((a, b) => a.seed - b.seed);
    groups.push({
      row,
      column,
      method: gcells[0].method,
      seeds: rs.map((r) => r.seed),
      planned: gcells.length,
      last: {
        top1: summarize(rs.map((r) => r.last.top1)),
        ece: summarize(rs.map((r) => r.last.ece)),
        nll: summarize(rs.map((r) => r.last.nll)),
      },
      bestOnTest: {
        top1: summarize(rs.map((r) => r.bestOnTest.top1)),
        ece: summarize(rs.map((r) => r.bestOnTest.ece)),
        nll: summarize(rs.map((r) => r.bestOnTest.nll)),
      },
      cells: gcells.map((c) => c.name),
    });
  }

  // Oracle minus plain KD: each oracle column against the plain column with the same shared settings.
  const differences: ResultDifference[] = [];
  for (const row of rowCells.keys()) {
    const inRow = [...groupCells.entries()].filter(([k]) => k.startsWith(row + "\u0000"));
    for (const [ok, ocells] of inRow.filter(([, cs]) => cs[0].method === "oracle")) {
      const o0 = ocells[0];
      const match = inRow.find(([, cs]) =>
        cs[0].method === "plain" &&
        Object.keys(cs[0].axes).every((k) => JSON.stringify(cs[0].axes[k]) === JSON.stringify(o0.axes[k]))
      );
      if (!match) continue;
      const bySeed = (cs: SweepCell[]) =>
        new Map(
          cs.map((c) => results.get(c.name)).filter((r): r is CellResult => !!r).map((r) => [r.seed, r]),
        );
      const o = bySeed(ocells), p = bySeed(match[1]);
      const seeds = [...o.keys()].filter((s) => p.has(s)).sort((a, b) => a - b);
      const pd = (f: (r: CellResult) => number) =>
        pairedDifference(seeds.map((s) => f(o.get(s)!)), seeds.map((s) => f(p.get(s)!)));
      differences.push({
        row,
        oracle: ok.split("\u0000")[1],
        plain: match[0].split("\u0000")[1],
        seeds,
        top1: pd((r) => r.last.top1),
        ece: pd((r) => r.last.ece),
        nll: pd((r) => r.last.nll),
        bestOnTestTop1: pd((r) => r.bestOnTest.top1),
      });
    }
  }

  const teachers: TeacherRow[] = [];
  for (const row of rowCells.keys()) {
    const rs = distill.filter((c) => rowOf(plan, c, c.teacherLabel) === row).map((c) => results.get(c.name))
      .filter((r): r is CellResult => !!r && r.teacher !== null);
    if (rs.length === 0) continue;
    const gammas = new Map<number, number[]>();
    for (const r of rs) {
      if (r.teacher!.oracle) {
        gammas.set(r.teacher!.oracle.gamma, [
          ...(gammas.get(r.teacher!.oracle.gamma) ?? []),
          r.teacher!.oracle.top1,
        ]);
      }
    }
    teachers.push({
      row,
      plainTop1: mean(rs.map((r) => r.teacher!.plain.top1)),
      oracleTop1: [...gammas].sort(([a], [b]) => a - b).map(([gamma, v]) => ({ gamma, top1: mean(v) })),
    });
  }

  const fixed: Record<string, unknown> = {};
  for (
    const k of [
      "data",
      "epochs",
      "batchSize",
      "subset",
      "lr",
      "lrSchedule",
      "temperature",
      "gamma",
      "ceWeight",
      "alpha",
    ]
  ) {
    const vals = new Set(
      cells.map((c) => JSON.stringify((c.config as unknown as Record<string, unknown>)[k])),
    );
    if (vals.size === 1) fixed[k] = JSON.parse([...vals][0]);
  }
  return {
    name: plan.name,
    generated: new Date().toISOString(),
    done: results.size,
    total: cells.length,
    fixed,
    rows: [...rowCells.keys()],
    columns,
    groups,
    differences,
    teachers,
    cells: [...results.values()],
    files: [],
  };
}

function fmt(s: Summary, digits = 2): string {
  if (s.values.length === 0) return "–";
  return `${s.mean.toFixed(digits)} ± ${s.std === null ? "–" : s.std.toFixed(digits)} (${s.values.length})`;
}

function fmtDiff(d: PairedDifference, digits = 2): string {
  if (d.n === 0) return "–";
  const sign = (x: number) => (x >= 0 ? "+" : "") + x.toFixed(digits);
  return d.n < 2
    ? `${sign(d.mean)} (1 seed, no interval)`
    : `${sign(d.mean)} [${sign(d.low)}, ${sign(d.high)}]`;
}

function diffLabel(d: ResultDifference): string {
  return `${d.oracle} - ${d.plain}`;
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/**
 * The report as Markdown: last-epoch tables first, the test-selected best epoch after.
 *
 * @example
 * ```ts
 * import { reportMarkdown } from "./report.ts";
 * const md = reportMarkdown({ name: "s", generated: "", done: 0, total: 0, fixed: {}, rows: [], columns: [],
 *   groups: [], differences: [], teachers: [], cells: [], files: [] });
 * console.log(md.split("\n")[0]); // # Sweep s
 * ```
 */
export function reportMarkdown(r: SweepReport): string {
  const get = (row: string, col: string) => r.groups.find((g) => g.row === row && g.column === col);
  const grid = (f: (g: ResultGroup) => string) =>
    r.rows.map((row) => [
      row,
      ...r.columns.map((col) => {
        const g = get(row, col);
        return g ? f(g) + (g.seeds.length < g.planned ? ` (${g.seeds.length}/${g.planned} done)` : "") : "";
      }),
    ]);
  const fixed = Object.entries(r.fixed).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(",") : v}`).join(
    ", ",
  );
  const out = [
    `# Sweep ${r.name}`,
    "",
    `${r.done} of ${r.total} cells finished. ${fixed ? `Common settings: ${fixed}. ` : ""}` +
    "Values are mean ± sample standard deviation over seeds (number of seeds in parentheses); " +
    "top-1 and ECE in %.",
    "",
    "## Test top-1 after the last epoch",
    "",
    table(["teacher -> student", ...r.columns], grid((g) => fmt(g.last.top1))),
    "",
    "## Calibration after the last epoch: ECE (%) and NLL",
    "",
    table(
      ["teacher -> student", ...r.columns.map((c) => `${c} ECE`), ...r.columns.map((c) => `${c} NLL`)],
      r.rows.map((row) => [
        row,
        ...r.columns.map((col) => (get(row, col) ? fmt(get(row, col)!.last.ece) : "")),
        ...r.columns.map((col) => (get(row, col) ? fmt(get(row, col)!.last.nll, 3) : "")),
      ]),
    ),
    "",
    "## Oracle KD minus KD, paired by seed (last epoch)",
    "",
    "Mean per-seed difference with its 95 % t interval (mean ± t(0.975, n-1)·sd/√n); an interval " +
    "that excludes 0 means the difference is larger than the seed-to-seed variation.",
    "",
    r.differences.length
      ? table(
        ["teacher -> student", "oracle vs KD", "seeds", "top-1 (points)", "ECE (points)", "NLL"],
        r.differences.map((d) => [
          d.row,
          diffLabel(d),
          String(d.seeds.length),
          fmtDiff(d.top1),
          fmtDiff(d.ece),
          fmtDiff(d.nll, 3),
        ]),
      )
      : "(no row has both plain and oracle KD finished)",
    "",
    "## Teachers on the test set",
    "",
    r.teachers.length
      ? table(
        ["teacher -> student", "teacher top-1", "oracle top-1 (on x*, true labels)"],
        r.teachers.map((t) => [
          t.row,
          t.plainTop1 === null ? "–" : t.plainTop1.toFixed(2),
          t.oracleTop1.map((o) => `${o.top1.toFixed(2)} (gamma ${o.gamma})`).join(", ") || "–",
        ]),
      )
      : "(no finished distillation cell recorded its teacher's test accuracy)",
    "",
    "## Best test top-1 (epoch selected on the test set)",
    "",
    "The epoch with the highest test top-1, as the paper's code reports it. Choosing the epoch on " +
    "the test set is optimistic; the last-epoch table above is the unbiased one.",
    "",
    table(["teacher -> student", ...r.columns], grid((g) => fmt(g.bestOnTest.top1))),
    "",
    "## Oracle KD minus KD on the best test epoch (selected on the test set)",
    "",
    r.differences.length
      ? table(
        ["teacher -> student", "oracle vs KD", "top-1 (points)"],
        r.differences.map((d) => [d.row, diffLabel(d), fmtDiff(d.bestOnTestTop1)]),
      )
      : "(none)",
    "",
  ];
  return out.join("\n");
}

/** Options of {@link writeSweepReport}. */
export interface ReportOptions {
  /** Folder for the files (default: the sweep folder). */
  outDir?: string;
  /** Skip the PNG figure (faster; tests of the tables). */
  figure?: boolean;
}

/**
 * Writes `results.md`, `results.json` and `results.png` (last-epoch top-1 and ECE per row and method,
 * mean, standard deviation and every seed).
 *
 * @example
 * ```ts ignore
 * const r = await writeSweepReport(plan);
 * ```
 */
export async function writeSweepReport(plan: SweepPlan, o: ReportOptions = {}): Promise<SweepReport> {
  const r = await sweepReport(plan);
  const dir = o.outDir ?? plan.outDir;
  const files = [path.join(dir, "results.md"), path.join(dir, "results.json")];
  if (o.figure !== false) {
    const cellValues = (f: (g: ResultGroup) => number[]) =>
      r.columns.map((col) =>
        r.rows.map((row) => {
          const g = r.groups.find((x) => x.row === row && x.column === col);
          return g ? f(g) : [];
        })
      );
    const png = await sweepFigurePng(`${r.name}: after the last epoch, over seeds`, r.rows, r.columns, [
      { title: "test top-1 (%)", values: cellValues((g) => g.last.top1.values) },
      { title: "test ECE (%)", values: cellValues((g) => g.last.ece.values) },
    ]);
    files.push(path.join(dir, "results.png"));
    await writeFileAtomic(files[2], png);
  }
  r.files = files;
  await writeFileAtomic(files[0], reportMarkdown(r));
  await writeFileAtomic(files[1], JSON.stringify(r, null, 2) + "\n");
  return r;
}
