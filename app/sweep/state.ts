/**
 * Sweep bookkeeping. The run folders are the truth: a cell is done when its `summary.json` says
 * "completed" with every epoch; it resumes when a checkpoint is there. Each cell's runner also
 * keeps a small record (`status/<name>.json`: running with a heartbeat, failed with the reason)
 * that only it writes, so Slurm tasks never race; {@link sweepState} joins both into
 * `state.json`.
 *
 * @example
 * ```ts
 * import { cellStatus } from "./state.ts";
 * console.log((await cellStatus("/nonexistent", { epochs: 3 } as never)).action); // fresh
 * ```
 * @module
 */

import * as path from "node:path";
import { writeFileAtomic } from "../../lib/atomic_file.ts";
import { COMMANDS, type DistillConfig } from "../../lib/config.ts";
import { RUN_FILES } from "../../lib/trainer.ts";
import type { SweepCell, SweepPlan } from "./plan.ts";
import { exists } from "../../lib/fs_probe.ts";

/** Files of a sweep folder. */
export const SWEEP_FILES = {
  /** The plan (cells with configurations). */
  plan: "sweep.json",
  /** Joined status of every cell. */
  state: "state.json",
  /** Per-cell runner records. */
  status: "status",
  /** Per-cell `--config` files. */
  configs: "configs",
  /** Per-cell stdout + stderr. */
  logs: "logs",
} as const;

/** What a cell's runner records. */
export interface CellRecord {
  /** Last known state. */
  status: "running" | "done" | "failed" | "interrupted";
  /** Why it failed (the run's last stderr line). */
  reason?: string;
  /** Attempts so far. */
  attempts: number;
  /** ISO time of the last update (a running cell's heartbeat). */
  updated: string;
  /** Host and process of the runner. */
  host?: string;
  /** Slurm job and array task, when run by Slurm. */
  slurm?: string;
}

/** What the run folder says. */
export interface CellFolderStatus {
  /** done: nothing to do; resume: continue from the checkpoint; fresh: start; conflict: refuse. */
  action: "done" | "resume" | "fresh" | "conflict";
  /** Epochs finished (lines of metrics.jsonl). */
  epochsDone: number;
  /** Why a conflict. */
  reason?: string;
  /** Mean seconds per finished epoch (NaN when none). */
  epochSeconds: number;
}

/**
 * Settings that may differ between a run folder's config.json and its cell: where things are
 * (paths set per run, the data folder, e.g. on another machine) and what does not change training.
 */
const RUN_LOCAL = ["out", "resume", "studentOut", "dataDir", "download", "testTeacher"];

/**
 * Reads a cell's run folder: done, resumable, fresh, or holding another configuration.
 *
 * @example
 * ```ts
 * import { cellStatus } from "./state.ts";
 * const d = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${d}/summary.json`, JSON.stringify({ status: "completed", test_acc1s: [1, 2] }));
 * console.log((await cellStatus(d, { epochs: 2 } as never)).action); // done
 * ```
 */
export async function cellStatus(
  dir: string,
  config: DistillConfig,
  command: "distill" | "train" = "distill",
): Promise<CellFolderStatus> {
  const metrics = await readText(path.join(dir, RUN_FILES.metrics));
  const lines = metrics ? metrics.split("\n").filter((l) => l.trim()) : [];
  let seconds = 0;
  for (const l of lines) {
    try {
      seconds += Number(JSON.parse(l).epoch_seconds) || 0;
    } catch { /* a torn line */ }
  }
  const base = { epochsDone: lines.length, epochSeconds: lines.length ? seconds / lines.length : NaN };
  const saved = await readJson(path.join(dir, RUN_FILES.config));
  if (saved && typeof saved === "object") {
    // Only the command's own settings (a `train` run records the distill defaults for the rest).
    const fields: Readonly<Record<string, unknown>> = COMMANDS[command].fields;
    const diff = Object.keys(config).filter((k) =>
      Object.hasOwn(fields, k) && !RUN_LOCAL.includes(k) && k in (saved as Record<string, unknown>) &&
      JSON.stringify((saved as Record<string, unknown>)[k]) !==
        JSON.stringify(config[k as keyof DistillConfig])
    );
    if (diff.length > 0) {
      const k = diff[0] as keyof DistillConfig;
      return {
        ...base,
        action: "conflict",
        reason: `${dir} holds another run (${k} ${JSON.stringify((saved as Record<string, unknown>)[k])}, ` +
          `the sweep asks ${JSON.stringify(config[k])}); remove the folder or use another --out`,
      };
    }
  }
  const summary = await readJson(path.join(dir, RUN_FILES.summary)) as
    | { status?: string; test_acc1s?: unknown[] }
    | null;
  if (summary?.status === "completed" && (summary.test_acc1s?.length ?? 0) >= config.epochs) {
    return { ...base, action: "done" };
  }
  if (await exists(path.join(dir, RUN_FILES.checkpoint))) return { ...base, action: "resume" };
  return { ...base, action: "fresh" };
}

/**
 * Path of a cell's runner record.
 *
 * @example
 * ```ts
 * import { recordPath } from "./state.ts";
 * console.log(recordPath("/s", "train_resnet8_seed=0")); // /s/status/train_resnet8_seed=0.json
 * ```
 */
export function recordPath(outDir: string, name: string): string {
  return path.join(outDir, SWEEP_FILES.status, `${name}.json`);
}

/**
 * Reads a cell's runner record (null when none).
 *
 * @example
 * ```ts
 * import { readRecord, writeRecord } from "./state.ts";
 * const d = await Deno.makeTempDir();
 * await writeRecord(d, "a", { status: "failed", reason: "boom", attempts: 1, updated: new Date().toISOString() });
 * console.log((await readRecord(d, "a"))?.reason, await readRecord(d, "b")); // boom null
 * ```
 */
export async function readRecord(outDir: string, name: string): Promise<CellRecord | null> {
  return await readJson(recordPath(outDir, name)) as CellRecord | null;
}

/**
 * Writes a cell's runner record atomically (only that cell's runner writes it).
 *
 * @example
 * ```ts
 * import { writeRecord } from "./state.ts";
 * await writeRecord(await Deno.makeTempDir(), "a", { status: "running", attempts: 1, updated: new Date().toISOString() });
 * ```
 */
export async function writeRecord(outDir: string, name: string, r: CellRecord): Promise<void> {
  await Deno.mkdir(path.join(outDir, SWEEP_FILES.status), { recursive: true });
  await writeFileAtomic(recordPath(outDir, name), JSON.stringify(r, null, 2) + "\n");
}

/** One cell's line in `state.json`. */
export interface CellState {
  /** Cell name. */
  name: string;
  /** Run folder. */
  dir: string;
  /** done, running, failed, interrupted (checkpoint, nobody running it) or pending. */
  status: "done" | "running" | "failed" | "interrupted" | "pending";
  /** Why it failed. */
  reason?: string;
  /** Epochs finished. */
  epochsDone: number;
  /** Epochs asked. */
  epochs: number;
  /** Mean seconds per finished epoch (null when none). */
  epochSeconds: number | null;
  /** Cells of one group (method, teacher, student) take about as long per epoch (for the ETA). */
  group?: string;
}

/** The joined state of a sweep. */
export interface SweepState {
  /** Study name. */
  name: string;
  /** ISO time. */
  updated: string;
  /** Counts by status. */
  counts: Record<CellState["status"], number>;
  /** Every cell. */
  cells: CellState[];
}

/** A running record older than this (no heartbeat) counts as interrupted. */
export const HEARTBEAT_STALE_MS = 120_000;

/**
 * Joins run folders and runner records into the state of every cell. `live` names cells this
 * process is running right now (they count as running whatever their record says).
 *
 * @example
 * ```ts ignore
 * const state = await sweepState(plan);
 * console.log(state.counts.done);
 * ```
 */
export async function sweepState(
  plan: SweepPlan,
  live: ReadonlySet<string> = new Set(),
  now = Date.now(),
): Promise<SweepState> {
  const cells: CellState[] = [];
  for (const c of plan.cells) cells.push(await oneState(plan, c, live, now));
  const counts = { done: 0, running: 0, failed: 0, interrupted: 0, pending: 0 };
  for (const c of cells) counts[c.status]++;
  return { name: plan.name, updated: new Date(now).toISOString(), counts, cells };
}

async function oneState(
  plan: SweepPlan,
  c: SweepCell,
  live: ReadonlySet<string>,
  now: number,
): Promise<CellState> {
  const f = await cellStatus(c.config.out, c.config, c.command);
  const rec = await readRecord(plan.outDir, c.name);
  const base = {
    name: c.name,
    dir: c.config.out,
    epochsDone: f.epochsDone,
    epochs: c.config.epochs,
    epochSeconds: Number.isFinite(f.epochSeconds) ? f.epochSeconds : null,
    group: `${c.kind === "teacher" ? c.name : c.method}:${c.teacherLabel}:${c.student}`,
  };
  if (f.action === "done") return { ...base, status: "done" };
  if (live.has(c.name)) return { ...base, status: "running" };
  if (rec?.status === "running" && now - Date.parse(rec.updated) < HEARTBEAT_STALE_MS) {
    return { ...base, status: "running" };
  }
  if (rec?.status === "failed") return { ...base, status: "failed", reason: rec.reason };
  if (f.action === "conflict") return { ...base, status: "failed", reason: f.reason };
  if (f.action === "resume" || rec) return { ...base, status: "interrupted" };
  return { ...base, status: "pending" };
}

/**
 * Writes `state.json` into the sweep folder.
 *
 * @example
 * ```ts ignore
 * await writeSweepState(plan, await sweepState(plan));
 * ```
 */
export async function writeSweepState(plan: SweepPlan, state: SweepState): Promise<void> {
  await writeFileAtomic(path.join(plan.outDir, SWEEP_FILES.state), JSON.stringify(state, null, 2) + "\n");
}

/**
 * Saves the plan as `sweep.json` (status and report read it back).
 *
 * @example
 * ```ts ignore
 * await savePlan(plan);
 * ```
 */
export async function savePlan(plan: SweepPlan): Promise<void> {
  await Deno.mkdir(plan.outDir, { recursive: true });
  await writeFileAtomic(path.join(plan.outDir, SWEEP_FILES.plan), JSON.stringify(plan, null, 2) + "\n");
}

/**
 * Reads the plan of the sweep in `dir`, with one clear error when it is not a sweep folder.
 *
 * @example
 * ```ts
 * import { loadPlan } from "./state.ts";
 * try { await loadPlan("/nonexistent"); } catch (e) { console.log((e as Error).message.slice(0, 31)); } // /nonexistent/sweep.json: not a
 * ```
 */
export async function loadPlan(dir: string): Promise<SweepPlan> {
  const file = path.join(dir, SWEEP_FILES.plan);
  const plan = await readJson(file);
  if (!plan || typeof plan !== "object" || !Array.isArray((plan as SweepPlan).cells)) {
    throw new Error(`${file}: not a sweep folder (no readable sweep.json; start one with sweep run)`);
  }
  return plan as SweepPlan;
}

async function readText(file: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(file);
  } catch {
    return null;
  }
}

async function readJson(file: string): Promise<unknown> {
  const t = await readText(file);
  if (t === null) return null;
  try {
    return JSON.parse(t);
  } catch {
    return null;
  }
}
