/**
 * The command line: one entry point for every task (`deno task distill|train|test|convert|...`).
 * A thin layer over the library: every command's flags, `--config` file and help come from its
 * field table in lib/config.ts; the action calls the library function of the same job, wires
 * Ctrl-C and the terminal, and prints errors as one line.
 *
 * @example
 * ```sh
 * deno task distill --data cifar100 --teacher resnet56 --student resnet20
 * deno task test --model weights/student.onnx
 * deno task train --help
 * ```
 * @module
 */

import process from "node:process";
import { parseFlags, renderHelp, renderOverview } from "./lib/cli_args.ts";
import {
  checkRequired,
  type CommandName,
  COMMANDS,
  type ConfigOf,
  nearest,
  resolveFields,
} from "./lib/config.ts";
import { readSettingsFile } from "./lib/config_file.ts";
import { PACKAGE_VERSION } from "./convert/onnx_metadata.ts";
import { distill, train } from "./app/library.ts";
import { convertModel } from "./app/convert.ts";
import { datasetMetadata } from "./lib/data/metadata.ts";
import { evaluateModel, formatReport } from "./app/evaluate.ts";
import { runAnalyze } from "./app/analyze.ts";
import { runDemo } from "./app/demo.ts";
import { createCtrlC } from "./lib/interrupt.ts";
import { readRunConfig } from "./lib/run_folder.ts";
import { runSweepCli } from "./app/sweep/cli.ts";

/** Ctrl-C: quits at once while setting up; stops after the current step with a checkpoint while training. */
function interruptSignal(): { signal: AbortSignal; onPhase: (p: "setup" | "training") => void } {
  const ctrlC = createCtrlC();
  return { signal: ctrlC.signal, onPhase: ctrlC.phase };
}

const out = process.stderr.isTTY ? process.stderr : process.stdout;

/**
 * What each command does with its resolved settings: a call into the library. A new command is
 * its field table in `COMMANDS` (lib/config.ts) plus one entry here.
 */
const ACTIONS: { [K in CommandName]: (c: ConfigOf<typeof COMMANDS[K]["fields"]>) => Promise<void> } = {
  distill: async (c) => {
    const { summary } = await distill(c, { stream: out, ...interruptSignal() });
    if (summary.status === "interrupted") Deno.exit(130);
  },
  train: async (c) => {
    const { summary } = await train(c, { stream: out, ...interruptSignal() });
    if (summary.status === "interrupted") Deno.exit(130);
  },
  test: async (c) => {
    if (c.oracle && !c.teacher) throw new Error("--oracle needs --teacher <name|file>");
    const report = await evaluateModel({
      model: c.model,
      data: c.data || undefined,
      dataDir: c.dataDir,
      download: c.download,
      device: c.device,
      batchSize: c.batchSize,
      limit: c.limit || undefined,
      mean: c.mean.length ? c.mean : undefined,
      std: c.std.length ? c.std : undefined,
      plotsDir: c.plots || undefined,
      oracle: c.oracle
        ? {
          teacher: c.teacher,
          teacherArch: c.teacherArch,
          gammas: c.gamma,
          recNum: c.recNum,
          reduction: c.reduction,
          relevance: c.relevance,
          lrp: { epsilon: c.lrpEpsilon, gamma: c.lrpGamma },
          engine: { engine: c.engine, backend: c.backend },
        }
        : undefined,
    });
    console.log(c.json ? JSON.stringify(report, null, 2) : formatReport(report));
  },
  convert: async (c) => {
    console.log(
      await convertModel({
        from: c.from,
        out: c.out,
        arch: c.arch || undefined,
        opset: c.opset,
        keepBatchNorm: c.keepBatchnorm,
        allowNonFinite: c.allowNonFinite,
        dataset: c.dataset ? datasetMetadata(c.dataset) : undefined,
        mean: c.mean,
        std: c.std,
        imageSize: c.imageSize || undefined,
      }),
    );
  },
  analyze: async (c) => {
    const name = c.teacher.replace(/^.*[\\/]/, "").replace(/\.\w+$/, "");
    const report = await runAnalyze({
      ...c,
      teacherArch: c.teacherArch || undefined,
      lrp: { epsilon: c.lrpEpsilon, gamma: c.lrpGamma },
      out: c.out || `reports/analyze_${name}_${new Date().toISOString().replace(/[-:]/g, "").slice(0, 15)}`,
    }, { stream: out });
    const row = (s: typeof report.plain) =>
      `top-1 ${s.top1.toFixed(2)}%  ECE ${s.ece.toFixed(2)}%  entropy ${s.entropy.toFixed(3)}  silhouette ${
        s.silhouette.toFixed(3)
      }`;
    console.log(`teacher on x : ${row(report.plain)}\noracle on x*: ${row(report.oracle)}`);
  },
  demo: async (c) => {
    console.log(await runDemo({ stream: out, ...interruptSignal() }, c));
  },
};

/** Parses `args` (`<command> [flags]`) and runs the command. */
async function main(args: string[]): Promise<void> {
  const [command, ...rest] = args;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    console.log(withSweep(renderOverview(COMMANDS, PACKAGE_VERSION)));
    return;
  }
  if (command === "sweep") return await sweepCommand(rest);
  if (command === "--version" || command === "-V") {
    console.log(`oracle-kd ${PACKAGE_VERSION}`);
    return;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    const near = nearest(command, Object.keys(COMMANDS));
    throw new Error(
      `unknown command "${command}"${near ? ` (did you mean ${near}?)` : ""}; commands: ${
        Object.keys(COMMANDS).join(", ")
      }`,
    );
  }
  const name = command as CommandName;
  const spec = COMMANDS[name];
  const flags = parseFlags(name, spec.fields, rest);
  if (flags.help) {
    console.log(renderHelp(name, spec));
    return;
  }
  let fromFile: Record<string, unknown> = {};
  if (flags.config !== undefined) {
    fromFile = await readSettingsFile(flags.config);
    try {
      resolveFields(spec.fields, fromFile); // errors in the file name the file
    } catch (e) {
      throw new Error(`${flags.config}: ${(e as Error).message}`);
    }
  }
  // --resume --out DIR continues from DIR/config.json; what is given now is compared against it.
  let fromRun: Record<string, unknown> = {};
  if (name === "distill" || name === "train") {
    const resuming = flags.values.resume === true || flags.values.resume === "true" ||
      (flags.values.resume === undefined && fromFile.resume === true);
    const runOut = flags.values.out ?? fromFile.out;
    if (resuming && typeof runOut === "string" && runOut !== "") {
      const { out: _o, resume: _r, overwrite: _w, ...saved } = await readRunConfig(runOut);
      // A train run's config.json holds the full distillation settings; keep this command's own.
      fromRun = Object.fromEntries(Object.entries(saved).filter(([k]) => Object.hasOwn(spec.fields, k)));
    }
  }
  const c = resolveFields(spec.fields, fromRun, fromFile, flags.values);
  checkRequired(spec.fields, c);
  // deno-lint-ignore no-explicit-any
  await (ACTIONS[name] as (c: any) => Promise<void>)(c);
}

// Sweeps: `sweep run|status|report|cell ...`, parsed by app/sweep/cli.ts (see `sweep --help`).
async function sweepCommand(args: string[]): Promise<void> {
  // The runs save their own checkpoints on Ctrl-C: the sweep only stops starting new ones.
  const ctrlC = createCtrlC();
  ctrlC.phase("training");
  const code = await runSweepCli(args, { stream: out, signal: ctrlC.signal });
  if (code !== 0) Deno.exit(code);
}

/** The overview with the sweep command listed among the others. */
function withSweep(overview: string): string {
  const w = Math.max(10, ...Object.keys(COMMANDS).map((c) => c.length)) + 2; // as renderOverview
  const line = `  ${
    "sweep".padEnd(w)
  }a study of many runs from one spec, locally or on Slurm, and its report`;
  return overview.replace("\n\nOptions:", `\n${line}\n\nOptions:`);
}

try {
  await main(Deno.args);
} catch (e) {
  const err = e as Error;
  if (Deno.env.get("OKD_DEBUG")) console.error(err.stack);
  if (err.name === "InterruptedError") {
    console.error(err.message.split("\n")[0]);
    Deno.exit(130);
  }
  console.error(`error: ${err.message.split("\n")[0]}`);
  Deno.exit(1);
}
