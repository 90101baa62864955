/**
 * The command line: one entry point for every task (`deno task distill|train|test|convert|...`).
 * A thin layer over the library: it parses flags (generated from the typed config where one
 * exists), wires Ctrl-C and the terminal, and prints errors as one line.
 *
 * @example
 * ```sh
 * deno task distill --data cifar100 --teacher resnet56 --student resnet20
 * deno task test --model weights/student.onnx
 * ```
 * @module
 */

import process from "node:process";
import { Command, Option } from "./lib/deps.ts";
import {
  DISTILL_DEFAULTS,
  DISTILL_FIELDS,
  type DistillConfig,
  flagName,
  resolveConfig,
} from "./lib/config.ts";
import { runDistill } from "./lib/app/distill.ts";
import { convertModel } from "./lib/app/convert.ts";
import { datasetMetadata } from "./lib/app/dataset_metadata.ts";
import { evaluateModel, formatReport } from "./lib/app/evaluate.ts";
import { runAnalyze } from "./lib/app/analyze.ts";
import { runDemo } from "./lib/app/demo.ts";

/** Adds every config field as a kebab-case flag (help text and default from the field spec). */
function addConfigOptions(cmd: Command, defaults: Partial<DistillConfig> = {}): Command {
  for (const [field, spec] of Object.entries(DISTILL_FIELDS)) {
    const key = field as keyof DistillConfig;
    const flag = flagName(field);
    const def = defaults[key] ?? DISTILL_DEFAULTS[key];
    const shown = Array.isArray(def) ? def.join(",") : String(def);
    const help = `${spec.doc}${spec.choices ? ` (${spec.choices.join("|")})` : ""} [default: ${
      shown || '""'
    }]`;
    const opt = spec.type === "boolean"
      ? new Option(`--${flag} [bool]`, help)
      : new Option(`--${flag} <value>`, help);
    cmd.addOption(opt);
  }
  cmd.addOption(new Option("--config <file.json>", "read settings from a JSON file (flags win)"));
  return cmd;
}

/** Merges defaults, --config file and flags into a validated config. */
async function configFrom(
  opts: Record<string, unknown>,
  defaults: Partial<DistillConfig> = {},
): Promise<DistillConfig> {
  const fromFlags: Record<string, unknown> = {};
  for (const field of Object.keys(DISTILL_FIELDS)) {
    const v = opts[field];
    if (v !== undefined) fromFlags[field] = v === true ? "true" : v;
  }
  let fromFile: Record<string, unknown> = {};
  if (typeof opts.config === "string") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await Deno.readTextFile(opts.config));
    } catch (e) {
      throw new Error(`${opts.config}: cannot read settings (${(e as Error).message.split("\n")[0]})`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error(`${opts.config}: settings must be a JSON object like {"epochs": 10}`);
    }
    fromFile = parsed as Record<string, unknown>;
    try {
      resolveConfig(fromFile); // errors in the file name the file
    } catch (e) {
      throw new Error(`${opts.config}: ${(e as Error).message}`);
    }
  }
  return resolveConfig(defaults as Record<string, unknown>, fromFile, fromFlags);
}

/** Ctrl-C: the first one stops after the current step with a checkpoint, a second one exits. */
function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  const onInt = () => {
    if (ac.signal.aborted) Deno.exit(130);
    console.error("\nstopping after this step (Ctrl-C again to quit without saving)...");
    ac.abort();
  };
  Deno.addSignalListener("SIGINT", onInt);
  return ac.signal;
}

const out = process.stderr.isTTY ? process.stderr : process.stdout;

const program = new Command("oracle-kd")
  .description("Knowledge distillation from an explainable oracle teacher (Lee et al., BMVC 2023)")
  .showHelpAfterError();

addConfigOptions(
  program.command("distill").description(
    "distill a student from a (oracle) teacher; defaults: the paper's run",
  ),
).action(async (opts) => {
  const c = await configFrom(opts);
  const s = await runDistill(c, { stream: out, signal: interruptSignal() }, "distill");
  if (s.status === "interrupted") Deno.exit(130);
});

addConfigOptions(
  program.command("train").description("train a network from scratch with cross-entropy (e.g. a teacher)"),
  { response: "plain", ceWeight: 1, alpha: 0 },
).action(async (opts) => {
  const c = await configFrom(opts, { response: "plain", ceWeight: 1, alpha: 0 });
  const s = await runDistill(c, { stream: out, signal: interruptSignal() }, "train");
  if (s.status === "interrupted") Deno.exit(130);
});

program.command("convert")
  .description("convert a .pth or ONNX network to ONNX for onnxruntime, with a summary")
  .requiredOption("--from <file>", "source .pth or .onnx")
  .requiredOption("--out <file.onnx>", "destination ONNX file")
  .option("--arch <name>", "architecture of a .pth source (inferred when omitted)")
  .option("--opset <n>", "ONNX opset (13-17)", "13")
  .option("--keep-batchnorm", "keep BatchNormalization nodes instead of folding them")
  .option(
    "--dataset <name>",
    "embed this dataset's normalisation and class names (cifar10, cifar100, fashion-mnist)",
  )
  .action(async (opts) => {
    const summary = await convertModel({
      from: opts.from,
      out: opts.out,
      arch: opts.arch,
      opset: Number(opts.opset),
      keepBatchNorm: Boolean(opts.keepBatchnorm),
      dataset: opts.dataset ? datasetMetadata(opts.dataset) : undefined,
    });
    console.log(summary);
  });

/** Parses "0.5,1" into numbers, naming the flag on error. */
function numberList(flag: string, raw: string): number[] {
  const xs = raw.split(",").filter((s) => s.trim()).map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) {
    throw new Error(`${flag} must be a comma-separated list of numbers, got "${raw}"`);
  }
  return xs;
}

/** A non-negative number flag, or an error naming the flag. */
function nonNegative(flag: string, raw: string): number {
  const x = Number(raw);
  if (!Number.isFinite(x) || x < 0) throw new Error(`${flag} must be a non-negative number, got "${raw}"`);
  return x;
}

program.command("test")
  .description("evaluate an ONNX classifier on a test set: accuracy, NLL, ECE/MCE, per-class accuracy, speed")
  .requiredOption("--model <file.onnx>", "the classifier (students exported here need no other flag)")
  .option("--data <name>", "dataset (default: from the model's metadata)")
  .option("--data-dir <dir>", "where datasets are looked for", "./data")
  .option("--download", "download a missing dataset")
  .addOption(
    new Option("--device <device>", "where to run").choices(["cpu", "cuda", "webgpu", "auto"]).default("cpu"),
  )
  .option("--batch-size <n>", "images per inference call", "256")
  .option("--limit <n>", "evaluate only the first N test images")
  .option("--mean <list>", "override the normalisation mean (comma separated)")
  .option("--std <list>", "override the normalisation std (comma separated)")
  .option("--json", "print the report as JSON")
  .option("--plots <dir>", "write a reliability diagram and a confidence histogram (PNG) into <dir>")
  .option("--oracle", "also evaluate --teacher on x (gamma 0) and as an oracle on x* (gamma > 0)")
  .option("--teacher <file|name>", "teacher for --oracle")
  .option("--teacher-arch <arch>", "architecture of a .pth teacher")
  .option("--gamma <list>", "oracle step sizes to compare", "0,0.5")
  .option("--rec-num <n>", "oracle steps", "1")
  .addOption(
    new Option("--reduction <r>", "CE reduction of the oracle gradient").choices(["mean", "sum"]).default(
      "mean",
    ),
  )
  .addOption(
    new Option("--relevance <rule>", "relevance behind x* (LRP rules run the teacher on tfjs-wasm)").choices([
      "grad-input",
      "lrp-epsilon",
      "lrp-gamma",
      "lrp-zplus",
    ]).default("grad-input"),
  )
  .option("--lrp-epsilon <e>", "epsilon of --relevance lrp-epsilon", "0.25")
  .option("--lrp-gamma <g>", "gamma of --relevance lrp-gamma (not the oracle step)", "0.25")
  .addOption(
    new Option("--engine <engine>", "engine for the teacher's gradients").choices([
      "onnxruntime",
      "tfjs",
      "webgpu",
      "auto",
    ])
      .default(
        "onnxruntime",
      ),
  )
  .addOption(
    new Option("--backend <backend>", "tfjs backend").choices(["wasm", "cpu", "tensorflow"]).default("wasm"),
  )
  .action(async (opts) => {
    const int = (flag: string, v: string | undefined) => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got "${v}"`);
      return n;
    };
    if (opts.oracle && !opts.teacher) throw new Error("--oracle needs --teacher <file|name>");
    const report = await evaluateModel({
      model: opts.model,
      data: opts.data,
      dataDir: opts.dataDir,
      download: Boolean(opts.download),
      device: opts.device,
      batchSize: int("--batch-size", opts.batchSize),
      limit: int("--limit", opts.limit),
      mean: opts.mean ? numberList("--mean", opts.mean) : undefined,
      std: opts.std ? numberList("--std", opts.std) : undefined,
      plotsDir: opts.plots,
      oracle: opts.oracle
        ? {
          teacher: opts.teacher,
          teacherArch: opts.teacherArch,
          gammas: numberList("--gamma", opts.gamma),
          recNum: int("--rec-num", opts.recNum)!,
          reduction: opts.reduction,
          relevance: opts.relevance,
          lrp: {
            epsilon: nonNegative("--lrp-epsilon", opts.lrpEpsilon),
            gamma: nonNegative("--lrp-gamma", opts.lrpGamma),
          },
          engine: { engine: opts.engine, backend: opts.backend },
        }
        : undefined,
    });
    console.log(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
  });

program.command("analyze")
  .description(
    "the paper's figures for a teacher: heatmaps, reliability/ECE, entropy, UMAP + silhouettes (HTML report)",
  )
  .requiredOption("--teacher <file|name>", "teacher .pth/.onnx file or zoo name (published checkpoint)")
  .option("--teacher-arch <arch>", "architecture of a .pth teacher")
  .requiredOption("--data <name>", "dataset (test split is used)")
  .option("--data-dir <dir>", "where datasets are looked for", "./data")
  .option("--download", "download missing data and teachers")
  .option("--gamma <g>", "oracle step size", "0.5")
  .option("--rec-num <n>", "oracle steps", "1")
  .addOption(new Option("--reduction <r>", "CE reduction").choices(["mean", "sum"]).default("mean"))
  .addOption(
    new Option("--relevance <rule>", "relevance rule").choices([
      "grad-input",
      "lrp-epsilon",
      "lrp-gamma",
      "lrp-zplus",
    ])
      .default("grad-input"),
  )
  .option("--lrp-epsilon <e>", "epsilon of --relevance lrp-epsilon", "0.25")
  .option("--lrp-gamma <g>", "gamma of --relevance lrp-gamma (not the oracle step)", "0.25")
  .option("--limit <n>", "test images analysed", "1000")
  .option("--samples <n>", "images shown as heatmaps", "8")
  .option("--out <dir>", "report folder (default reports/analyze_<teacher>_<time>)")
  .addOption(
    new Option("--backend <backend>", "tfjs backend").choices(["wasm", "cpu", "tensorflow"]).default("wasm"),
  )
  .action(async (opts) => {
    const num = (flag: string, v: string, integer: boolean) => {
      const n = Number(v);
      // Counts (images, samples, oracle steps) start at 1; step sizes and LRP parameters at 0.
      if (!Number.isFinite(n) || (integer ? !Number.isInteger(n) || n < 1 : n < 0)) {
        throw new Error(
          `${flag} must be a ${integer ? "positive integer" : "non-negative number"}, got "${v}"`,
        );
      }
      return n;
    };
    const name = opts.teacher.replace(/^.*[\\/]/, "").replace(/\.\w+$/, "");
    const report = await runAnalyze({
      teacher: opts.teacher,
      teacherArch: opts.teacherArch,
      data: opts.data,
      dataDir: opts.dataDir,
      download: Boolean(opts.download),
      gamma: num("--gamma", opts.gamma, false),
      recNum: num("--rec-num", opts.recNum, true),
      reduction: opts.reduction,
      relevance: opts.relevance,
      lrp: {
        epsilon: num("--lrp-epsilon", opts.lrpEpsilon, false),
        gamma: num("--lrp-gamma", opts.lrpGamma, false),
      },
      limit: num("--limit", opts.limit, true),
      samples: num("--samples", opts.samples, true),
      out: opts.out ??
        `reports/analyze_${name}_${new Date().toISOString().replace(/[-:]/g, "").slice(0, 15)}`,
      backend: opts.backend,
    }, { stream: out });
    const row = (s: typeof report.plain) =>
      `top-1 ${s.top1.toFixed(2)}%  ECE ${s.ece.toFixed(2)}%  entropy ${s.entropy.toFixed(3)}  silhouette ${
        s.silhouette.toFixed(3)
      }`;
    console.log(`teacher on x : ${row(report.plain)}\noracle on x*: ${row(report.oracle)}`);
  });

program.command("demo")
  .description("the whole pipeline offline in minutes: teacher, oracle distillation, ONNX, evaluation")
  .option("--epochs <n>", "epochs of each stage", "3")
  .addOption(
    new Option("--engine <engine>", "compute engine").choices(["onnxruntime", "tfjs", "webgpu", "auto"])
      .default("onnxruntime"),
  )
  .addOption(
    new Option("--backend <backend>", "tfjs backend").choices(["wasm", "cpu", "tensorflow"]).default("wasm"),
  )
  .action(async (opts) => {
    const epochs = Number(opts.epochs);
    if (!Number.isInteger(epochs) || epochs < 1) {
      throw new Error(`--epochs must be a positive integer, got "${opts.epochs}"`);
    }
    console.log(
      await runDemo({ stream: out, signal: interruptSignal() }, {
        epochs,
        engine: opts.engine,
        backend: opts.backend,
      }),
    );
  });

try {
  await program.parseAsync(Deno.args, { from: "user" });
} catch (e) {
  const err = e as Error;
  if (Deno.env.get("OKD_DEBUG")) console.error(err.stack);
  console.error(`error: ${err.message.split("\n")[0]}`);
  Deno.exit(1);
}
