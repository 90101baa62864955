/**
 * `deno task sweep run|status|report|cell`: the command line of sweeps, a thin layer over
 * app/sweep. `cli.ts` hands it every argument after `sweep`.
 *
 * @example
 * ```ts
 * import { runSweepCli } from "./cli.ts";
 * const lines: string[] = [];
 * const code = await runSweepCli(["status", "/nonexistent"], { stream: { write: (s) => lines.push(s) } });
 * console.log(code, lines[0].startsWith("error: /nonexistent/sweep.json")); // 1 true
 * ```
 * @module
 */

import { Command, Option } from "../../lib/deps.ts";
import type { ProgressStream } from "../../lib/progress.ts";
import { progressLine, runLocal } from "./local.ts";
import { planSweep, type SweepPlan } from "./plan.ts";
import { writeSweepReport } from "./report.ts";
import { runCell } from "./runner.ts";
import { submitSlurm } from "./slurm.ts";
import { loadSweepSpec, parseOverrides } from "./spec.ts";
import { loadPlan, savePlan, sweepState, writeSweepState } from "./state.ts";

/** Where the sweep command writes. */
export interface SweepCliIO {
  /** Progress, results and errors. */
  stream: ProgressStream;
  /** Ctrl-C (local runs stop with checkpoints). */
  signal?: AbortSignal;
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got "${v}"`);
  return n;
}

/**
 * Runs `sweep <subcommand> ...` and returns the exit status (errors print one line).
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runSweepCli(Deno.args.slice(1), { stream: Deno.stderr }));
 * ```
 */
export async function runSweepCli(args: string[], io: SweepCliIO): Promise<number> {
  const say = (s: string) => io.stream.write(s + "\n");
  let code = 0;
  const program = new Command("sweep")
    .description("run a study: many distill/train runs from one spec, locally or on Slurm, and its report")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stream.write(s), writeErr: (s) => io.stream.write(s) });

  program.command("run")
    .description("run (or continue) every cell of SPEC (.yaml or .json); finished cells are skipped")
    .argument("<spec>", "sweep spec file")
    .option("--out <dir>", "sweep folder (default runs/sweep_<spec name>)")
    .addOption(new Option("--executor <e>", "where cells run").choices(["local", "slurm"]).default("local"))
    .option("--jobs <n>", "local: cells at once (the cores are divided between them)", "1")
    .option("--cores <n>", "local: cores to divide (default: all)")
    .option("--set <key=value...>", "override a setting in every cell (e.g. --set epochs=1 --set subset=500)")
    .option("--dry-run", "print the cells and write the plan, run nothing")
    .option("--partition <p>", "slurm: partition")
    .option("--time <t>", "slurm: time limit per cell, e.g. 1-00:00:00")
    .option("--cpus-per-task <n>", "slurm: CPUs per cell (also its engine threads)", "1")
    .option("--gpus <n>", "slurm: GPUs per cell (--gres=gpu:N)")
    .option("--mem <m>", "slurm: memory per cell, e.g. 4G")
    .option("--max-parallel <n>", "slurm: most cells running at once")
    .option("--sbatch-line <line...>", "slurm: extra #SBATCH line(s), e.g. --sbatch-line '--qos=long'")
    .option("--sbatch <path>", "slurm: sbatch program", "sbatch")
    .action(async (spec: string, opts) => {
      const s = await loadSweepSpec(spec, parseOverrides(opts.set ?? []));
      const plan = planSweep(s, opts.out ?? `runs/sweep_${s.name.replace(/[^\w.-]+/g, "_")}`);
      await savePlan(plan);
      if (opts.dryRun) {
        for (const c of plan.cells) say(`${String(c.index).padStart(4)}  ${c.command.padEnd(7)} ${c.name}`);
        say(`${plan.cells.length} cells; plan in ${plan.outDir}/sweep.json`);
        return;
      }
      if (opts.executor === "slurm") {
        const sub = await submitSlurm(plan, {
          partition: opts.partition,
          time: opts.time,
          cpusPerTask: positiveInt("--cpus-per-task", opts.cpusPerTask),
          gpus: positiveInt("--gpus", opts.gpus),
          mem: opts.mem,
          maxParallel: positiveInt("--max-parallel", opts.maxParallel),
          extra: opts.sbatchLine ?? [],
          sbatch: opts.sbatch,
        });
        say(
          sub.cells.length === 0
            ? `sweep    every cell of ${plan.name} is done or running; nothing submitted`
            : `sweep    submitted ${sub.cells.length} cells as job ${sub.jobIds.join(" + ")}; ` +
              `follow with: deno task sweep status ${plan.outDir}`,
        );
        return;
      }
      const state = await runLocal(plan, {
        jobs: positiveInt("--jobs", opts.jobs),
        cores: positiveInt("--cores", opts.cores),
        stream: io.stream,
        signal: io.signal,
        // On a terminal, Ctrl-C reaches every run itself.
        forwardInterrupt: !Deno.stdin.isTerminal(),
      });
      for (const c of state.cells.filter((x) => x.status === "failed")) {
        say(`failed   ${c.name}: ${c.reason}`);
      }
      if (state.counts.failed > 0) code = 1;
      else if (io.signal?.aborted) code = 130;
      else say(`sweep    finished; report with: deno task sweep report ${plan.outDir}`);
    });

  program.command("status")
    .description("progress of the sweep in DIR, read from its run folders (also writes state.json)")
    .argument("<dir>", "sweep folder")
    .action(async (dir: string) => {
      const plan = await loadPlan(dir);
      const state = await sweepState(plan);
      await writeSweepState(plan, state);
      for (const c of state.cells) {
        say(
          `${c.status.padEnd(11)} ${`${c.epochsDone}/${c.epochs}`.padStart(7)}  ${c.name}${
            c.reason ? `: ${c.reason}` : ""
          }`,
        );
      }
      say(progressLine(state, 1, 0));
    });

  program.command("report")
    .description("write results.md, results.json and results.png into the sweep folder DIR")
    .argument("<dir>", "sweep folder")
    .option("--no-figure", "skip the PNG figure")
    .action(async (dir: string, opts) => {
      const plan = await loadPlan(dir);
      const r = await writeSweepReport(plan, { figure: opts.figure });
      say(`report   ${r.done}/${r.total} cells finished -> ${r.files.join(", ")}`);
    });

  program.command("cell")
    .description("run one cell of the sweep in DIR (what each Slurm array task runs)")
    .argument("<dir>", "sweep folder")
    .requiredOption("--index <i>", "cell index (SLURM_ARRAY_TASK_ID)")
    .option("--threads <n>", "engine threads (default: the environment's)")
    .action(async (dir: string, opts) => {
      const plan: SweepPlan = await loadPlan(dir);
      const i = Number(opts.index);
      const cell = plan.cells[i];
      if (!Number.isInteger(i) || !cell) {
        throw new Error(`--index must be a cell index 0..${plan.cells.length - 1}, got "${opts.index}"`);
      }
      // scancel sends SIGTERM: stop the run with a checkpoint where it still can.
      const ac = new AbortController();
      const onTerm = () => ac.abort();
      Deno.addSignalListener("SIGTERM", onTerm);
      io.signal?.addEventListener("abort", onTerm);
      const job = Deno.env.get("SLURM_ARRAY_JOB_ID");
      try {
        const out = await runCell(plan, cell, {
          threads: positiveInt("--threads", opts.threads),
          signal: ac.signal,
          slurm: job ? `${job}_${Deno.env.get("SLURM_ARRAY_TASK_ID")}` : undefined,
        });
        say(`${out.status.padEnd(8)} ${cell.name}${out.reason ? `: ${out.reason}` : ""}`);
        code = out.status === "failed" ? 1 : out.status === "interrupted" ? 130 : 0;
      } finally {
        Deno.removeSignalListener("SIGTERM", onTerm);
      }
    });

  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith("commander.")) {
      return err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 1;
    }
    if (Deno.env.get("OKD_DEBUG")) say(err.stack ?? "");
    say(`error: ${err.message.split("\n")[0]}`);
    return 1;
  }
  return code;
}
