/**
 * The Slurm executor: submits a sweep's unfinished cells as one job array through `sbatch`
 * (teachers the sweep trains go first, as a second array the rest depend on). Each array task
 * runs `deno run -A cli.ts sweep cell <sweep folder> --index $SLURM_ARRAY_TASK_ID`, which runs
 * its cell exactly as the local executor does, so cancelling (`scancel`) and submitting again
 * picks up where it stopped: finished cells are skipped, interrupted ones resume.
 *
 * @example
 * ```ts
 * import { sbatchScript } from "./slurm.ts";
 * const s = sbatchScript({ outDir: "/s", indices: [0, 2, 3], cpusPerTask: 4, partition: "gpu", gpus: 1 });
 * console.log(s.split("\n").filter((l) => l.startsWith("#SBATCH --array") || l.startsWith("#SBATCH --gres")));
 * // ["#SBATCH --array=0,2-3", "#SBATCH --gres=gpu:1"]
 * ```
 * @module
 */

import * as path from "node:path";
import { writeFileAtomic } from "../../lib/atomic_file.ts";
import type { SweepPlan } from "./plan.ts";
import { CLI_ENTRY, THREAD_ENVS } from "./runner.ts";
import { sweepState } from "./state.ts";

/** Job settings of a sweep's arrays. */
export interface SlurmOptions {
  /** Partition (`--partition`). */
  partition?: string;
  /** Time limit per task (`--time`, e.g. `1-00:00:00`). */
  time?: string;
  /** CPUs per task (`--cpus-per-task`; also the runs' engine threads). */
  cpusPerTask?: number;
  /** GPUs per task (`--gres=gpu:N`). */
  gpus?: number;
  /** Memory per task (`--mem`, e.g. `4G`). */
  mem?: string;
  /** Most tasks running at once (`--array=...%N`). */
  maxParallel?: number;
  /** Further `#SBATCH` lines, with or without the `#SBATCH ` prefix. */
  extra?: string[];
  /** Job name (default `oracle-kd-<sweep>`). */
  jobName?: string;
  /** The `sbatch` program (default `sbatch`). */
  sbatch?: string;
  /** The `squeue` program (default `squeue`). */
  squeue?: string;
}

/**
 * Compresses indices into Slurm's array syntax.
 *
 * @example
 * ```ts
 * import { arraySpec } from "./slurm.ts";
 * console.log(arraySpec([5, 0, 2, 3, 4])); // 0,2-5
 * ```
 */
export function arraySpec(indices: number[]): string {
  const xs = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(j > i ? `${xs[i]}-${xs[j]}` : `${xs[i]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/**
 * The batch script of one array over the cells `indices` of the sweep in `outDir`.
 *
 * @example
 * ```ts
 * import { sbatchScript } from "./slurm.ts";
 * console.log(sbatchScript({ outDir: "/s", indices: [1], extra: ["--qos=long"] }).includes("#SBATCH --qos=long")); // true
 * ```
 */
export function sbatchScript(
  o: SlurmOptions & { outDir: string; indices: number[]; dependency?: string; cwd?: string },
): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = [
    "#!/bin/bash",
    `#SBATCH --job-name=${o.jobName ?? "oracle-kd-sweep"}`,
    `#SBATCH --array=${arraySpec(o.indices)}${o.maxParallel ? `%${o.maxParallel}` : ""}`,
    `#SBATCH --output=${path.join(o.outDir, "logs", "slurm_%A_%a.out")}`,
    `#SBATCH --cpus-per-task=${o.cpusPerTask ?? 1}`,
    `#SBATCH --ntasks=1`,
  ];
  if (o.partition) lines.push(`#SBATCH --partition=${o.partition}`);
  if (o.time) lines.push(`#SBATCH --time=${o.time}`);
  if (o.mem) lines.push(`#SBATCH --mem=${o.mem}`);
  if (o.gpus) lines.push(`#SBATCH --gres=gpu:${o.gpus}`);
  if (o.dependency) lines.push(`#SBATCH --dependency=${o.dependency}`);
  for (const e of o.extra ?? []) lines.push(e.startsWith("#SBATCH") ? e : `#SBATCH ${e}`);
  lines.push(
    "set -u",
    `cd ${q(o.cwd ?? Deno.cwd())}`,
    ...THREAD_ENVS.map((k) => `export ${k}="\${SLURM_CPUS_PER_TASK:-1}"`),
    `exec ${q(Deno.execPath())} run -A ${q(CLI_ENTRY)} sweep cell ${
      q(o.outDir)
    } --index "$SLURM_ARRAY_TASK_ID"`,
    "",
  );
  return lines.join("\n");
}

/** What a submission did. */
export interface SlurmSubmission {
  /** Job ids, teachers' array first. */
  jobIds: string[];
  /** Cells submitted. */
  cells: string[];
  /** Batch scripts written. */
  scripts: string[];
}

/**
 * Submits every cell of `plan` that is not done (nor running) as job arrays and records the
 * submission in `slurm.json`.
 *
 * @example
 * ```ts ignore
 * const s = await submitSlurm(plan, { cpusPerTask: 4, time: "1-00:00:00" });
 * ```
 */
export async function submitSlurm(plan: SweepPlan, o: SlurmOptions = {}): Promise<SlurmSubmission> {
  let history: { jobIds?: string[] }[] = [];
  try {
    history = JSON.parse(await Deno.readTextFile(path.join(plan.outDir, "slurm.json")));
  } catch { /* first submission */ }
  // Submitting again while earlier arrays still wait or run would queue their cells twice.
  const earlier = history.flatMap((h) => h.jobIds ?? []);
  if (earlier.length) {
    const q = await new Deno.Command(o.squeue ?? "squeue", {
      args: ["-h", "-o", "%i", "-j", earlier.join(",")],
      stdout: "piped",
      stderr: "piped",
    }).output().catch(() => null);
    const queued = q?.success ? new TextDecoder().decode(q.stdout).trim() : "";
    if (queued) {
      const ids = [...new Set(queued.split(/\s+/).map((x) => x.split("_")[0]))].join(" ");
      throw new Error(
        `job ${ids} of this sweep is still queued or running (squeue); wait for it or cancel it (scancel ${ids}) ` +
          `and submit again`,
      );
    }
  }
  const state = await sweepState(plan);
  const todo = plan.cells.filter((_, i) =>
    state.cells[i].status !== "done" && state.cells[i].status !== "running"
  );
  const teachers = todo.filter((c) => c.kind === "teacher");
  const rest = todo.filter((c) => c.kind !== "teacher");
  const jobIds: string[] = [];
  const scripts: string[] = [];
  await Deno.mkdir(path.join(plan.outDir, "slurm"), { recursive: true });
  await Deno.mkdir(path.join(plan.outDir, "logs"), { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  const submit = async (cells: typeof todo, tag: string, dependency?: string) => {
    const script = sbatchScript({
      ...o,
      jobName: o.jobName ?? `oracle-kd-${plan.name}`.replace(/[^\w.-]+/g, "_"),
      outDir: plan.outDir,
      indices: cells.map((c) => c.index),
      dependency,
    });
    const file = path.join(plan.outDir, "slurm", `${stamp}_${tag}.sh`);
    await writeFileAtomic(file, script);
    scripts.push(file);
    const r = await new Deno.Command(o.sbatch ?? "sbatch", {
      args: ["--parsable", file],
      stdout: "piped",
      stderr: "piped",
    })
      .output().catch((e) => {
        throw new Error(`cannot run ${o.sbatch ?? "sbatch"}: ${(e as Error).message.split("\n")[0]}`);
      });
    const err = new TextDecoder().decode(r.stderr).trim();
    if (!r.success) throw new Error(`sbatch refused ${file}: ${err.split("\n").at(-1) || `exit ${r.code}`}`);
    const id = new TextDecoder().decode(r.stdout).trim().split(";")[0];
    if (!/^\d+$/.test(id)) throw new Error(`sbatch printed no job id for ${file} (got "${id}")`);
    jobIds.push(id);
    return id;
  };
  let dep: string | undefined;
  if (teachers.length) dep = `afterany:${await submit(teachers, "teachers")}`;
  const waitsForTeacher = rest.some((c) => c.dependsOn.some((d) => teachers.some((t) => t.name === d)));
  if (rest.length) await submit(rest, "cells", waitsForTeacher ? dep : undefined);
  const record = { submitted: new Date().toISOString(), jobIds, cells: todo.map((c) => c.name), scripts };
  await writeFileAtomic(
    path.join(plan.outDir, "slurm.json"),
    JSON.stringify([...history, record], null, 2) + "\n",
  );
  return { jobIds, cells: todo.map((c) => c.name), scripts };
}
