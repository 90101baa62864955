/**
 * Runs one cell as a subprocess of the package's own command line, exactly as a user would:
 * `deno run -A cli.ts distill --config configs/<cell>.json --out cells/<cell>` (with `--resume`
 * when a checkpoint is there; `train` for CE-only cells). Finished cells are skipped; a failed
 * one is recorded with the run's last stderr line. The local and the Slurm executor both run
 * cells through {@link runCell}.
 *
 * @example
 * ```ts
 * import { cellCommand } from "./runner.ts";
 * const argv = cellCommand({ command: "train" } as never, "/s/configs/a.json", "/s/cells/a", true);
 * console.log(argv.slice(-6).join(" ")); // train --config /s/configs/a.json --out /s/cells/a --resume
 * ```
 * @module
 */

import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../../lib/atomic_file.ts";
import { COMMANDS } from "../../lib/config.ts";
import type { SweepCell, SweepPlan } from "./plan.ts";
import {
  type CellRecord,
  cellStatus,
  HEARTBEAT_STALE_MS,
  readRecord,
  SWEEP_FILES,
  writeRecord,
} from "./state.ts";

/** The package's command line (a file path or URL; `deno run` takes both). */
export const CLI_ENTRY: string = (() => {
  const u = new URL("../../cli.ts", import.meta.url);
  return u.protocol === "file:" ? fileURLToPath(u) : u.href;
})();

/** Environment variables that set the threads of each engine (onnxruntime, tfjs-wasm). */
export const THREAD_ENVS = ["ORACLE_KD_THREADS", "ORACLE_KD_WASM_THREADS"] as const;

/**
 * The argv of a cell's run: `deno run -A cli.ts <distill|train> --config F --out D [--resume]`.
 *
 * @example
 * ```ts
 * import { cellCommand } from "./runner.ts";
 * console.log(cellCommand({ command: "distill" } as never, "c.json", "d", false).at(-5)); // distill
 * ```
 */
export function cellCommand(cell: SweepCell, configFile: string, dir: string, resume: boolean): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    CLI_ENTRY,
    cell.command,
    "--config",
    configFile,
    "--out",
    dir,
    ...(resume ? ["--resume"] : []),
  ];
}

/** How a cell ended. */
export interface CellOutcome {
  /**
   * skipped: already done; done; failed; interrupted (stopped by a signal, checkpoint kept); busy:
   * another live runner holds the cell (its heartbeat is fresh), so it was left alone.
   */
  status: "skipped" | "done" | "failed" | "interrupted" | "busy";
  /** Why it failed. */
  reason?: string;
}

/** Options of {@link runCell}. */
export interface RunCellOptions {
  /** Threads for the run's engines (sets {@link THREAD_ENVS}); default: the engines' own. */
  threads?: number;
  /** Aborting sends the run SIGINT (it saves a checkpoint and stops), unless `forward` is false. */
  signal?: AbortSignal;
  /**
   * Whether to pass an abort on as SIGINT (default true). False where the run receives the same
   * Ctrl-C from the terminal itself: a second SIGINT would stop it without a checkpoint.
   */
  forward?: boolean;
  /** Heartbeat interval in ms (default 15 s). */
  heartbeatMs?: number;
  /** Slurm job/task id to record. */
  slurm?: string;
  /** Called with each line the run prints (stdout and stderr). */
  onLine?: (line: string) => void;
  /** Called when the run actually starts (not for finished, busy or refused cells), with `--resume` or not. */
  onStart?: (resume: boolean) => void;
}

/**
 * Runs (or skips, or resumes) one cell and records how it ended.
 *
 * @example
 * ```ts ignore
 * const outcome = await runCell(plan, plan.cells[0], { threads: 2 });
 * ```
 */
export async function runCell(
  plan: SweepPlan,
  cell: SweepCell,
  o: RunCellOptions = {},
): Promise<CellOutcome> {
  const dir = cell.config.out;
  const prev = await readRecord(plan.outDir, cell.name);
  const attempts = (prev?.attempts ?? 0) + 1;
  const record = async (status: "running" | "done" | "failed" | "interrupted", reason?: string) =>
    await writeRecord(plan.outDir, cell.name, {
      status,
      ...(reason ? { reason } : {}),
      attempts,
      updated: new Date().toISOString(),
      host: `${Deno.hostname()}:${Deno.pid}`,
      ...(o.slurm ? { slurm: o.slurm } : {}),
    });
  const fail = async (reason: string): Promise<CellOutcome> => {
    await record("failed", reason);
    return { status: "failed", reason };
  };

  if (prev?.status === "running" && await otherRunnerAlive(prev)) {
    return { status: "busy", reason: `${prev.host} is running it (heartbeat ${prev.updated})` };
  }
  const before = await cellStatus(dir, cell.config, cell.command);
  if (before.action === "done") {
    if (prev?.status !== "done") await record("done");
    return { status: "skipped" };
  }
  if (before.action === "conflict") return await fail(before.reason!);
  for (const dep of cell.dependsOn) {
    const d = plan.cells.find((c) => c.name === dep);
    if (!d || (await cellStatus(d.config.out, d.config, d.command)).action !== "done") {
      return await fail(`teacher cell ${dep} has not finished (see ${SWEEP_FILES.state})`);
    }
  }

  const configFile = path.join(plan.outDir, SWEEP_FILES.configs, `${cell.name}.json`);
  await Deno.mkdir(path.dirname(configFile), { recursive: true });
  // The command's own settings only (`train` has no teacher or loss weights), as a user's file would.
  const fields: Readonly<Record<string, unknown>> = COMMANDS[cell.command].fields;
  const settings = Object.fromEntries(
    Object.entries(cell.config).filter(([k]) => Object.hasOwn(fields, k) && k !== "out" && k !== "resume"),
  );
  await writeFileAtomic(configFile, JSON.stringify(settings, null, 2) + "\n");
  const logFile = path.join(plan.outDir, SWEEP_FILES.logs, `${cell.name}.log`);
  await Deno.mkdir(path.dirname(logFile), { recursive: true });
  const log = await Deno.open(logFile, { create: true, append: true });

  const argv = cellCommand(cell, configFile, dir, before.action === "resume");
  // A fresh cell whose folder already has files holds this cell's own leftovers (a run stopped
  // before its first checkpoint; another run's folder is a conflict above): start it again.
  if (before.action === "fresh" && await hasEntries(dir)) argv.push("--overwrite");
  const env: Record<string, string> = {};
  if (o.threads !== undefined) { for (const k of THREAD_ENVS) env[k] = String(o.threads); }
  const enc = new TextEncoder();
  await log.write(enc.encode(`# ${new Date().toISOString()} ${argv.join(" ")}\n`));
  await record("running");
  // Heartbeats are chained so that none can land after the final record.
  let beat: Promise<void> = Promise.resolve();
  const heartbeat = setInterval(() => {
    beat = beat.then(() => record("running")).catch(() => {});
  }, o.heartbeatMs ?? 15_000);

  let lastErr = "";
  try {
    o.onStart?.(before.action === "resume");
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const onAbort = () => {
      if (o.forward === false) return;
      try {
        child.kill("SIGINT");
      } catch { /* already gone */ }
    };
    o.signal?.addEventListener("abort", onAbort);
    if (o.signal?.aborted) onAbort();
    const pump = async (stream: ReadableStream<Uint8Array>, isErr: boolean) => {
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of stream) {
        await log.write(chunk);
        buf += dec.decode(chunk, { stream: true });
        const lines = buf.split(/\r?\n|\r/);
        buf = lines.pop()!;
        for (const l of lines) {
          if (isErr && l.trim()) lastErr = l.trim();
          if (l.trim()) o.onLine?.(l);
        }
      }
      if (isErr && buf.trim()) lastErr = buf.trim();
    };
    const [status] = await Promise.all([child.status, pump(child.stdout, false), pump(child.stderr, true)]);
    o.signal?.removeEventListener("abort", onAbort);
    clearInterval(heartbeat);
    await beat;
    const after = await cellStatus(dir, cell.config, cell.command);
    if (status.success && after.action === "done") {
      await record("done");
      return { status: "done" };
    }
    if (
      o.signal?.aborted || status.code === 130 || status.signal === "SIGINT" || status.signal === "SIGTERM"
    ) {
      await record("interrupted");
      return { status: "interrupted" };
    }
    return await fail(
      lastErr ||
        (status.success
          ? `the run ended without a complete summary.json (see ${logFile})`
          : status.signal
          ? `killed by ${status.signal} (see ${logFile})`
          : `exit status ${status.code} (see ${logFile})`),
    );
  } catch (e) {
    clearInterval(heartbeat);
    await beat;
    return await fail(`cannot start the run: ${(e as Error).message.split("\n")[0]}`);
  } finally {
    clearInterval(heartbeat);
    log.close();
  }
}

/** Whether a running record belongs to another runner that is still alive. */
async function otherRunnerAlive(r: CellRecord): Promise<boolean> {
  if (Date.now() - Date.parse(r.updated) >= HEARTBEAT_STALE_MS) return false;
  const [host, pid] = (r.host ?? "").split(":");
  if (host !== Deno.hostname()) return true; // another machine with a fresh heartbeat
  if (Number(pid) === Deno.pid) return false;
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return false; // no such process: it died without saying so
  }
}

async function hasEntries(dir: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(dir)) return true;
  } catch { /* absent */ }
  return false;
}
