/**
 * The local executor: runs a sweep's cells on this machine, `jobs` at a time, with the cores
 * divided between them (each run's engines get `floor(cores / jobs)` threads), teachers trained
 * by the sweep before the cells that need them, and one progress view of the whole sweep. A
 * failed cell is recorded and the rest go on; Ctrl-C (the signal) stops every run with a
 * checkpoint.
 *
 * @example
 * ```ts ignore
 * const state = await runLocal(plan, { jobs: 2, stream: Deno.stdout });
 * console.log(state.counts);
 * ```
 * @module
 */

import { formatDuration, type ProgressStream } from "../../lib/progress.ts";
import type { SweepCell, SweepPlan } from "./plan.ts";
import { type CellOutcome, runCell } from "./runner.ts";
import { type SweepState, sweepState, writeSweepState } from "./state.ts";

/** Options of {@link runLocal}. */
export interface LocalOptions {
  /** Cells run at once (default 1). */
  jobs?: number;
  /** Cores to divide (default: every logical core). */
  cores?: number;
  /** Where the progress view goes. */
  stream: ProgressStream;
  /** Milliseconds between progress lines (default 30 s; 2 s on a terminal). */
  intervalMs?: number;
  /** Stops every run with a checkpoint. */
  signal?: AbortSignal;
  /** Pass the abort on to the runs as SIGINT (default true; false when the terminal's Ctrl-C reaches them). */
  forwardInterrupt?: boolean;
  /** Runs one cell (tests inject their own; default {@link runCell}). */
  run?: typeof runCell;
}

/**
 * Threads per run when `jobs` runs share `cores`.
 *
 * @example
 * ```ts
 * import { threadsPerJob } from "./local.ts";
 * console.log(threadsPerJob(16, 3), threadsPerJob(2, 4)); // 5 1
 * ```
 */
export function threadsPerJob(cores: number, jobs: number): number {
  return Math.max(1, Math.floor(cores / Math.max(1, jobs)));
}

/**
 * Runs every unfinished cell of `plan` and returns the final state (also in `state.json`).
 *
 * @example
 * ```ts ignore
 * await runLocal(plan, { jobs: 2, stream: Deno.stderr });
 * ```
 */
export async function runLocal(plan: SweepPlan, o: LocalOptions): Promise<SweepState> {
  const jobs = Math.max(1, o.jobs ?? 1);
  const cores = o.cores ?? navigator.hardwareConcurrency ?? 1;
  const threads = threadsPerJob(cores, jobs);
  const run = o.run ?? runCell;
  const write = (s: string) => o.stream.write(s + "\n");
  const live = new Set<string>();
  const finished = new Map<string, CellOutcome>();
  const started = performance.now();

  write(
    `sweep    ${plan.name}: ${plan.cells.length} cells in ${plan.outDir}, ${jobs} at a time, ` +
      `${threads} thread${threads === 1 ? "" : "s"} each`,
  );
  const pending: SweepCell[] = [...plan.cells];
  const running = new Map<string, Promise<void>>();

  const view = async () => {
    const state = await sweepState(plan, live);
    await writeSweepState(plan, state);
    write(progressLine(state, jobs, (performance.now() - started) / 1000));
  };
  const interval = o.intervalMs ?? (o.stream.isTTY ? 2000 : 30_000);
  const timer = setInterval(() => void view().catch(() => {}), interval);

  try {
    while (pending.length > 0 || running.size > 0) {
      // Start every ready cell while there is room; a cell whose teacher failed fails too.
      for (let i = 0; i < pending.length && running.size < jobs && !o.signal?.aborted;) {
        const c = pending[i];
        const waiting = c.dependsOn.some((d) =>
          !finished.has(d) && (running.has(d) || pending.some((p) => p.name === d))
        );
        if (waiting) {
          i++;
          continue;
        }
        pending.splice(i, 1);
        live.add(c.name);
        const p = run(plan, c, {
          threads,
          signal: o.signal,
          forward: o.forwardInterrupt,
          onStart: (resume) => write(`${resume ? "resume " : "start  "}  ${c.name}`),
        }).catch((e): CellOutcome => ({ status: "failed", reason: (e as Error).message.split("\n")[0] }))
          .then(async (out) => {
            finished.set(c.name, out);
            live.delete(c.name);
            running.delete(c.name);
            if (out.status === "failed") write(`failed   ${c.name}: ${out.reason}`);
            else if (out.status === "done") write(`done     ${c.name}`);
            else if (out.status === "interrupted") write(`stopped  ${c.name} (checkpoint kept)`);
            else if (out.status === "busy") write(`busy     ${c.name}: ${out.reason}; left alone`);
            await view().catch(() => {});
          });
        running.set(c.name, p);
      }
      if (o.signal?.aborted && running.size === 0) break;
      if (running.size === 0) {
        if (pending.length === 0) break;
        // Only cells waiting for unfinished dependencies remain: impossible unless a cycle.
        throw new Error(`cells wait for each other: ${pending.map((p) => p.name).join(", ")}`);
      }
      await Promise.race(running.values());
    }
  } finally {
    clearInterval(timer);
  }
  const state = await sweepState(plan, live);
  await writeSweepState(plan, state);
  write(progressLine(state, jobs, (performance.now() - started) / 1000));
  return state;
}

/**
 * One line for the whole sweep: cells done/running/failed, each running cell's epoch, and an ETA
 * from the epochs still to run and the mean epoch time so far.
 *
 * @example
 * ```ts
 * import { progressLine } from "./local.ts";
 * const state = {
 *   name: "s", updated: "", counts: { done: 1, running: 1, failed: 0, interrupted: 0, pending: 1 },
 *   cells: [
 *     { name: "a", dir: "", status: "done", epochsDone: 2, epochs: 2, epochSeconds: 10 },
 *     { name: "b", dir: "", status: "running", epochsDone: 1, epochs: 2, epochSeconds: 10 },
 *     { name: "c", dir: "", status: "pending", epochsDone: 0, epochs: 2, epochSeconds: null },
 *   ],
 * } as const;
 * console.log(progressLine(state as never, 1, 30)); // sweep    1/3 done, 1 running, 0 failed, 1 to run | b 1/2 epochs | ETA 30s
 * ```
 */
export function progressLine(state: SweepState, jobs: number, _elapsed: number): string {
  const n = state.cells.length;
  const c = state.counts;
  const running = state.cells.filter((x) => x.status === "running")
    .map((x) => `${x.name} ${x.epochsDone}/${x.epochs} epochs`);
  // ETA: epochs still to run times the mean epoch time of their group (same method, teacher and
  // student), else of every finished epoch, shared by the parallel jobs.
  const meanOf = (cells: SweepState["cells"]) => {
    const withTimes = cells.filter((x) => x.epochSeconds !== null && x.epochsDone > 0);
    const n = withTimes.reduce((s, x) => s + x.epochsDone, 0);
    return n > 0 ? withTimes.reduce((s, x) => s + x.epochSeconds! * x.epochsDone, 0) / n : NaN;
  };
  const overall = meanOf(state.cells);
  const todo = state.cells.filter((x) => x.status !== "done" && x.status !== "failed");
  let seconds = 0;
  for (const x of todo) {
    const g = x.group === undefined ? NaN : meanOf(state.cells.filter((y) => y.group === x.group));
    seconds += Math.max(0, x.epochs - x.epochsDone) * (Number.isFinite(g) ? g : overall);
  }
  const left = todo.reduce((s, x) => s + Math.max(0, x.epochs - x.epochsDone), 0);
  const eta = left === 0
    ? "0s"
    : Number.isFinite(seconds)
    ? formatDuration(seconds / Math.max(1, jobs))
    : "?";
  return [
    `sweep    ${c.done}/${n} done, ${c.running} running, ${c.failed} failed, ${
      c.pending + c.interrupted
    } to run`,
    ...(running.length ? [running.join(", ")] : []),
    `ETA ${eta}`,
  ].join(" | ");
}
