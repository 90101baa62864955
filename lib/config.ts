/**
 * Every setting of every command, declared once. A setting is a typed field spec (kind, doc,
 * help group, default, choices or range); a command is a table of such fields. The CLI builds its
 * flags and its help from these tables, `--config file.json|yaml` supplies any subset (keys in
 * kebab-, camel- or snake_case), flags win over the file, and the typed configuration of each
 * command ({@link DistillConfig}, {@link TestConfig}, ...) is derived from its table, so closed
 * sets are unions built from one `as const` array each.
 *
 * The mechanism (field constructors, parsing) is config_spec.ts; settings files are read by
 * config_file.ts and flags and help by cli_args.ts. Adding a setting is one line in a command's table, e.g.
 * `threads: int("engine", "onnxruntime intra-op threads (0: every core)", 0, { min: 0 }),`.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * const c = resolveConfig({ epochs: 2 });
 * console.log(c.student, c.temperature, c.epochs); // resnet20 2 2
 * ```
 * @module
 */

import { DATASET_NAMES } from "./data/load.ts";
import { ENGINE_NAMES } from "./engines/registry.ts";
import { TFJS_BACKENDS } from "./engines/tfjs/backend.ts";
import { DEVICES } from "./engines/devices.ts";
import { GRAD_REDUCTIONS, RELEVANCE_RULES } from "./oracle/options.ts";
import { buildModel, MODEL_NAMES } from "./models/zoo.ts";
import {
  bool,
  choice,
  ConfigError,
  type ConfigOf,
  defaultsOf,
  fieldName,
  type FieldSpec,
  type FieldTable,
  flagName,
  int,
  ints,
  nearest,
  num,
  nums,
  parseValue,
  text,
} from "./config_spec.ts";

export * from "./config_spec.ts";

// ---------------------------------------------------------------------------------------------
// Closed sets: one source array each; the types are unions derived from them.

/** Teacher responses that supervise the student. */
export const RESPONSES = ["oracle", "plain"] as const;
/** A teacher response. */
export type Response = typeof RESPONSES[number];
/** CE reductions behind the oracle's input gradient. */
export const REDUCTIONS = GRAD_REDUCTIONS;
/** A CE reduction. */
export type Reduction = typeof REDUCTIONS[number];
/** Whether the teacher runs on a worker thread of its own, overlapping the student's step. */
export const OVERLAP_MODES = ["auto", "on", "off"] as const;
/** An overlap mode. */
export type OverlapMode = typeof OVERLAP_MODES[number];
/** Learning-rate schedules. */
export const LR_SCHEDULES = ["multistep", "cosine"] as const;
/** A learning-rate schedule. */
export type LrSchedule = typeof LR_SCHEDULES[number];
import { METADATA_DATASETS } from "./data/metadata.ts";

export { METADATA_DATASETS, type MetadataDataset } from "./data/metadata.ts";

/**
 * Why `name` is not a zoo architecture (with the valid names), or undefined when it is one.
 *
 * @example
 * ```ts
 * import { archProblem } from "./config.ts";
 * console.log(archProblem("resnet20"), archProblem("resnet18")?.startsWith('"resnet18" is not')); // undefined true
 * ```
 */
export function archProblem(name: string): string | undefined {
  try {
    buildModel(name, { numClasses: 10 });
    return undefined;
  } catch {
    return `"${name}" is not a zoo architecture; choose one of ${MODEL_NAMES.join(", ")} ` +
      `(or any resnet<6n+2>, resnet<6n+2>x4, wrn_<6n+4>_<k>)`;
  }
}

/** A teacher is a file path or a zoo name. */
function teacherProblem(spec: string): string | undefined {
  if (spec === "" || /[\\/]|\.(pth|pt|tar|onnx)$/i.test(spec)) return undefined;
  const p = archProblem(spec);
  return p &&
    `${p.replace(" is not a zoo architecture", " is neither a .pth/.onnx file nor a zoo architecture")}`;
}

const positiveList = (what: string) => (v: number[]) =>
  v.some((x) => x <= 0) ? `${what} must be positive, got ${v.join(",")}` : undefined;

// Shared field specs: a command takes these as they are or with its own default.
const F = {
  data: text(
    "data",
    `dataset: ${DATASET_NAMES.join(", ")}, or a PNG folder (<root>/{train,test}/<class>/*.png)`,
    "cifar100",
    {
      placeholder: "name|dir",
    },
  ),
  dataDir: text("data", "folder holding (or receiving) dataset files", "./data", { placeholder: "dir" }),
  download: bool("data", "download missing datasets and teachers (checksums pinned)", true),
  mean: nums("data", "normalisation mean per channel (comma separated)", [], {
    defaultText: "the teacher's metadata, else the data's statistics",
  }),
  std: nums("data", "normalisation std per channel (comma separated)", [], {
    defaultText: "the teacher's metadata, else the data's statistics",
    check: positiveList("--std"),
  }),
  seed: int("run", "random seed (initialisation, shuffling, augmentation)", 0, { min: 0 }),
  subset: int("data", "seeded training subset size (0: all)", 0, { min: 0 }),
  teacher: text("teacher", "teacher: zoo name (the paper's checkpoint) or .pth/.onnx path", "resnet56", {
    placeholder: "name|file",
    check: teacherProblem,
  }),
  teacherArch: text("teacher", "architecture of a .pth teacher", "", {
    defaultText: "inferred from its tensors",
    placeholder: "arch",
    check: (v) => v === "" ? undefined : archProblem(v),
  }),
  student: text("model", "student architecture", "resnet20", { placeholder: "arch", check: archProblem }),
  response: choice("oracle", "teacher response: oracle (x*) or plain (Hinton KD on x)", RESPONSES, "oracle"),
  relevance: choice(
    "oracle",
    "relevance behind x* (LRP rules need a larger --gamma; see README)",
    RELEVANCE_RULES,
    "grad-input",
  ),
  lrpEpsilon: num("oracle", "epsilon of --relevance lrp-epsilon", 0.25, { min: 0 }),
  lrpGamma: num("oracle", "gamma of --relevance lrp-gamma (not the oracle step)", 0.25, { min: 0 }),
  gamma: num("oracle", "oracle step: x* = x - gamma*|x|*dCE/dx (0: plain KD)", 0.5, { min: 0 }),
  recNum: int("oracle", "oracle steps applied (rec_num)", 1, { min: 1 }),
  reduction: choice(
    "oracle",
    "CE reduction behind the input gradient (mean: the paper's, depends on the batch size)",
    REDUCTIONS,
    "mean",
  ),
  temperature: num("loss", "softmax temperature T of the KL term", 2, { min: 0, exclusiveMin: true }),
  ceWeight: num("loss", "weight of CE(student, y)", 0.5, { min: 0 }),
  alpha: num("loss", "weight of T^2 * KL(teacher || student)", 1, { min: 0 }),
  lr: num("optimiser", "initial learning rate", 0.05, { min: 0, exclusiveMin: true }),
  lrDecay: num("optimiser", "multistep decay factor", 0.1, { min: 0, exclusiveMin: true }),
  schedule: ints("optimiser", "multistep milestones (epochs, comma separated)", [150, 180, 210], { min: 1 }),
  lrSchedule: choice("optimiser", "learning-rate schedule", LR_SCHEDULES, "multistep"),
  epochs: int("optimiser", "training epochs", 240, { min: 1 }),
  batchSize: int("optimiser", "images per batch", 64, { min: 1 }),
  weightDecay: num("optimiser", "L2 weight decay", 2.5e-4, { min: 0 }),
  momentum: num("optimiser", "SGD momentum", 0.9, { min: 0 }),
  nesterov: bool("optimiser", "Nesterov momentum", false),
  engine: choice(
    "engine",
    "compute engine (auto: webgpu on a hardware GPU, else onnxruntime)",
    ENGINE_NAMES,
    "auto",
  ),
  backend: choice("engine", "tfjs backend", TFJS_BACKENDS, "wasm"),
  resume: bool("run", "resume the run in --out from its checkpoint", false),
  overwrite: bool("run", "replace the run in a non-empty --out folder (refused without it)", false),
  checkpointEvery: int("run", "also checkpoint every N training steps (0: at epoch ends and on Ctrl-C)", 0, {
    min: 0,
  }),
  limit: int("data", "use only the first N test images (0: all)", 0, { min: 0 }),
} as const;

/** The SGD schedule and seed, shared by `distill` and `train` (in this order in both). */
const OPTIMISER_FIELDS = {
  lr: F.lr,
  lrDecay: F.lrDecay,
  schedule: F.schedule,
  lrSchedule: F.lrSchedule,
  epochs: F.epochs,
  batchSize: F.batchSize,
  weightDecay: F.weightDecay,
  momentum: F.momentum,
  nesterov: F.nesterov,
  seed: F.seed,
} as const;

/** Fields of `distill`, in help order. Defaults: the paper's resnet56 -> resnet20 CIFAR-100 run. */
export const DISTILL_FIELDS = {
  data: F.data,
  dataDir: F.dataDir,
  download: F.download,
  mean: F.mean,
  std: F.std,
  subset: F.subset,
  teacher: F.teacher,
  teacherArch: F.teacherArch,
  testTeacher: bool("teacher", "evaluate the teacher (plain and oracle) before training", true),
  student: F.student,
  response: F.response,
  relevance: F.relevance,
  lrpEpsilon: F.lrpEpsilon,
  lrpGamma: F.lrpGamma,
  gamma: F.gamma,
  recNum: F.recNum,
  reduction: F.reduction,
  temperature: F.temperature,
  ceWeight: F.ceWeight,
  alpha: F.alpha,
  ...OPTIMISER_FIELDS,
  out: text("run", "run folder (config, metrics, checkpoints)", "", {
    defaultText: "runs/<teacher>_to_<student>_<time>",
    placeholder: "dir",
  }),
  studentOut: text(
    "run",
    "final student ONNX (the best one goes beside it as .best.onnx)",
    "weights/student.onnx",
    {
      placeholder: "file.onnx",
    },
  ),
  resume: F.resume,
  overwrite: F.overwrite,
  checkpointEvery: F.checkpointEvery,
  engine: F.engine,
  backend: F.backend,
  overlap: choice(
    "engine",
    "teacher on a worker thread of its own, one batch ahead (auto: off; README)",
    OVERLAP_MODES,
    "auto",
  ),
  teacherThreads: int("engine", "onnxruntime threads of the teacher (0: every core)", 0, { min: 0 }),
  studentThreads: int("engine", "onnxruntime threads of the student (0: every core)", 0, { min: 0 }),
} as const;

/** Fields of `train` (plain cross-entropy from scratch, e.g. a teacher for a new dataset). */
export const TRAIN_FIELDS = {
  data: F.data,
  dataDir: F.dataDir,
  download: F.download,
  mean: { ...F.mean, defaultText: "the data's statistics" },
  std: { ...F.std, defaultText: "the data's statistics" },
  subset: F.subset,
  student: { ...F.student, doc: "architecture to train" },
  ...OPTIMISER_FIELDS,
  out: { ...DISTILL_FIELDS.out, defaultText: "runs/train_to_<student>_<time>" },
  studentOut: {
    ...DISTILL_FIELDS.studentOut,
    doc: "trained network's ONNX",
    default: "",
    defaultText: "weights/<data>_<student>.onnx",
  },
  resume: F.resume,
  overwrite: F.overwrite,
  checkpointEvery: F.checkpointEvery,
  engine: F.engine,
  backend: F.backend,
} as const;

/** Fields of `test`. */
export const TEST_FIELDS = {
  model: text("model", "the ONNX classifier to evaluate (students exported here need no other flag)", "", {
    required: true,
    placeholder: "file.onnx",
  }),
  data: { ...F.data, default: "", defaultText: "from the model's metadata" },
  dataDir: F.dataDir,
  download: F.download,
  mean: { ...F.mean, defaultText: "the model's metadata, else the data's statistics" },
  std: { ...F.std, defaultText: "the model's metadata, else the data's statistics" },
  limit: F.limit,
  batchSize: int("optimiser", "images per inference call", 256, { min: 1 }),
  oracle: bool("oracle", "also evaluate --teacher on x (gamma 0) and as an oracle on x* (gamma > 0)", false),
  teacher: {
    ...F.teacher,
    doc: "teacher for --oracle: zoo name or .pth/.onnx path",
    default: "",
    defaultText: "none",
  },
  teacherArch: F.teacherArch,
  gamma: nums("oracle", "oracle step sizes to compare (comma separated)", [0, 0.5], { min: 0 }),
  recNum: F.recNum,
  reduction: F.reduction,
  relevance: F.relevance,
  lrpEpsilon: F.lrpEpsilon,
  lrpGamma: F.lrpGamma,
  json: bool("run", "print the report as JSON", false),
  plots: text("run", "write reliability and confidence figures (PNG) into this folder", "", {
    defaultText: "none",
    placeholder: "dir",
  }),
  device: choice("engine", "where the classifier runs (auto: CUDA when installed)", DEVICES, "cpu"),
  engine: { ...F.engine, doc: "engine for the teacher's gradients (--oracle)" },
  backend: F.backend,
} as const;

/** Fields of `convert`. */
export const CONVERT_FIELDS = {
  from: text("model", "source .pth or .onnx file", "", { required: true, placeholder: "file" }),
  out: text("model", "destination ONNX file", "", { required: true, placeholder: "file.onnx" }),
  arch: text("model", "architecture of a .pth source", "", {
    defaultText: "inferred from its tensors",
    placeholder: "arch",
    check: (v) => v === "" ? undefined : archProblem(v),
  }),
  opset: int("model", "ONNX opset", 13, { min: 13, max: 17 }),
  keepBatchnorm: bool("model", "keep BatchNormalization nodes instead of folding them", false),
  allowNonFinite: bool(
    "model",
    "read and write weights holding NaN/Inf instead of refusing them (the output will not import)",
    false,
  ),
  dataset: choice(
    "data",
    "embed this dataset's normalisation, input size and class names",
    METADATA_DATASETS,
    "",
    {
      defaultText: "the source's metadata",
    },
  ),
  mean: { ...F.mean, defaultText: "--dataset's, else the source's metadata" },
  std: { ...F.std, defaultText: "--dataset's, else the source's metadata" },
  imageSize: int("data", "input height and width", 0, { min: 0, defaultText: "--dataset's, else 32" }),
} as const;

/** Fields of `analyze`. */
export const ANALYZE_FIELDS = {
  teacher: { ...F.teacher, required: true, default: "" },
  teacherArch: F.teacherArch,
  data: { ...F.data, required: true, default: "" },
  dataDir: F.dataDir,
  download: F.download,
  mean: F.mean,
  std: F.std,
  limit: { ...F.limit, doc: "test images analysed", default: 1000, min: 1 },
  samples: int("run", "images shown as heatmaps", 8, { min: 1 }),
  gamma: F.gamma,
  recNum: F.recNum,
  reduction: F.reduction,
  relevance: F.relevance,
  lrpEpsilon: F.lrpEpsilon,
  lrpGamma: F.lrpGamma,
  out: text("run", "report folder", "", {
    defaultText: "reports/analyze_<teacher>_<time>",
    placeholder: "dir",
  }),
  engine: F.engine,
  backend: F.backend,
} as const;

/** Fields of `demo`. */
export const DEMO_FIELDS = {
  epochs: { ...F.epochs, doc: "epochs of each student (the teacher trains 15)", default: 8 },
  engine: F.engine,
  backend: F.backend,
} as const;

/** Every setting of a distillation (or plain training) run. */
export type DistillConfig = ConfigOf<typeof DISTILL_FIELDS>;
/** Settings of `train`. */
export type TrainConfig = ConfigOf<typeof TRAIN_FIELDS>;
/** Settings of `test`. */
export type TestConfig = ConfigOf<typeof TEST_FIELDS>;
/** Settings of `convert`. */
export type ConvertConfig = ConfigOf<typeof CONVERT_FIELDS>;
/** Settings of `analyze`. */
export type AnalyzeConfig = ConfigOf<typeof ANALYZE_FIELDS>;
/** Settings of `demo`. */
export type DemoConfig = ConfigOf<typeof DEMO_FIELDS>;

/** A command: what it does, an example, and its fields. */
export interface CommandSpec {
  /** One line. */
  summary: string;
  /** An example invocation (`deno task ...`). */
  example: string;
  /** Its settings. */
  fields: FieldTable;
  /**
   * How it is invoked, without options, for help and error hints: `deno task <command>` when
   * absent (a script without a task states its own, e.g. `deno run -A tools/x.ts`).
   */
  usage?: string;
}

/** Every command of the CLI, in help order. */
export const COMMANDS = {
  distill: {
    summary: "distill a student from an (oracle) teacher; defaults: the paper's CIFAR-100 run",
    example: "deno task distill --data cifar10 --teacher resnet56 --student resnet20 --epochs 240",
    fields: DISTILL_FIELDS,
  },
  train: {
    summary: "train a network from scratch with cross-entropy (e.g. a teacher for a new dataset)",
    example: "deno task train --data data/my_pngs --student resnet56 --epochs 200",
    fields: TRAIN_FIELDS,
  },
  test: {
    summary: "evaluate an ONNX classifier: accuracy, NLL, ECE/MCE, per-class accuracy, speed",
    example: "deno task test --model weights/student.onnx --oracle --teacher resnet56",
    fields: TEST_FIELDS,
  },
  convert: {
    summary: "convert a .pth or ONNX network to ONNX for onnxruntime, with a summary",
    example: "deno task convert --from teacher.pth --out teacher.onnx --dataset cifar100",
    fields: CONVERT_FIELDS,
  },
  analyze: {
    summary: "the paper's figures for a teacher: heatmaps, reliability, entropy, UMAP (HTML report)",
    example: "deno task analyze --teacher resnet56 --data cifar100 --limit 1000",
    fields: ANALYZE_FIELDS,
  },
  demo: {
    summary: "the whole pipeline offline in minutes: teacher, oracle distillation, ONNX, evaluation",
    example: "deno task demo --epochs 4",
    fields: DEMO_FIELDS,
  },
} as const satisfies Record<string, CommandSpec>;

/** A command name. */
export type CommandName = keyof typeof COMMANDS;

/** The defaults: the paper's published resnet56 -> resnet20 CIFAR-100 run. */
export const DISTILL_DEFAULTS: Readonly<DistillConfig> = Object.freeze(defaultsOf(DISTILL_FIELDS));

/**
 * Parses a raw value for a field of `distill`.
 *
 * @example
 * ```ts
 * import { parseField } from "./config.ts";
 * console.log(parseField("schedule", "150,180"), parseField("nesterov", "true")); // [150, 180] true
 * ```
 */
export function parseField<K extends keyof DistillConfig>(field: K, raw: unknown): DistillConfig[K] {
  const spec = DISTILL_FIELDS[field] as FieldSpec<DistillConfig[K]> | undefined;
  if (!spec) throw new ConfigError(`unknown setting "${field}"`);
  return parseValue(field, spec, raw);
}

/**
 * Merges layers of settings over a field table's defaults (later layers win) and validates
 * every value. Keys may be camel-, kebab- or snake_case; unknown keys are errors that suggest
 * the nearest valid one. Required fields are not checked here (see {@link checkRequired}).
 *
 * @example
 * ```ts
 * import { resolveFields, TEST_FIELDS } from "./config.ts";
 * console.log(resolveFields(TEST_FIELDS, { model: "m.onnx", batch_size: 32 }).batchSize); // 32
 * ```
 */
export function resolveFields<F extends FieldTable>(
  fields: F,
  ...layers: Record<string, unknown>[]
): ConfigOf<F> {
  const out = defaultsOf(fields) as Record<string, unknown>;
  for (const layer of layers) {
    for (const [rawKey, raw] of Object.entries(layer)) {
      if (raw === undefined) continue;
      const key = fieldName(rawKey);
      const spec = Object.hasOwn(fields, key) ? fields[key] : undefined;
      if (!spec) throw new ConfigError(unknownSetting(rawKey, fields));
      out[key] = parseValue(key, spec, raw);
    }
  }
  return out as ConfigOf<F>;
}

function unknownSetting(rawKey: string, fields: FieldTable): string {
  const known = Object.keys(fields).map(flagName);
  const near = nearest(flagName(fieldName(rawKey)), known);
  const elsewhere = Object.entries(COMMANDS).filter(([, c]) => Object.hasOwn(c.fields, fieldName(rawKey)))
    .map(([name]) => name);
  return `unknown setting "${rawKey}"` +
    (near
      ? ` (did you mean "${near}"?)`
      : elsewhere.length
      ? ` (a setting of ${elsewhere.join(", ")})`
      : "") +
    `; known settings: ${known.join(", ")}`;
}

/**
 * `distill`'s configuration from layers of settings (see {@link resolveFields}).
 *
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * console.log(resolveConfig({ "batch-size": "32" }, { gamma: 0 }).batchSize); // 32
 * ```
 */
export function resolveConfig(...layers: Record<string, unknown>[]): DistillConfig {
  return resolveFields(DISTILL_FIELDS, ...layers);
}

/**
 * The distillation configuration that trains with plain cross-entropy from scratch (no teacher,
 * no KL term): what `train` runs.
 *
 * @example
 * ```ts
 * import { resolveFields, TRAIN_FIELDS, trainAsDistill } from "./config.ts";
 * const c = trainAsDistill(resolveFields(TRAIN_FIELDS, { epochs: 3 }));
 * console.log(c.ceWeight, c.alpha, c.response, c.epochs); // 1 0 plain 3
 * ```
 */
export function trainAsDistill(t: TrainConfig): DistillConfig {
  return {
    ...defaultsOf(DISTILL_FIELDS),
    ...t,
    teacher: "",
    response: "plain",
    ceWeight: 1,
    alpha: 0,
    testTeacher: false,
  };
}

/**
 * Learning rate of a 1-based epoch under the configured schedule. Multistep follows the paper's
 * code: from a milestone epoch on, the rate is multiplied by lr-decay.
 *
 * @example
 * ```ts
 * import { learningRate, resolveConfig } from "./config.ts";
 * const c = resolveConfig();
 * console.log(learningRate(c, 149), learningRate(c, 150).toFixed(4)); // 0.05 0.0050
 * ```
 */
export function learningRate(
  c: Pick<DistillConfig, "lr" | "lrDecay" | "schedule" | "lrSchedule" | "epochs">,
  epoch: number,
): number {
  if (c.lrSchedule === "cosine") return 0.5 * c.lr * (1 + Math.cos(Math.PI * (epoch - 1) / c.epochs));
  const passed = c.schedule.filter((m) => epoch >= m).length;
  return c.lr * c.lrDecay ** passed;
}
