/**
 * The run configuration: one typed object whose every field has a default and a one-line
 * description. Defaults are the paper's published resnet56 -> resnet20 CIFAR-100 run. The CLI
 * generates its flags from {@link DISTILL_FIELDS} (kebab-case), `--config file.json` supplies
 * any subset, and flags win over the file.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * const c = resolveConfig({ epochs: 2 });
 * console.log(c.student, c.temperature, c.epochs); // resnet20 2 2
 * ```
 * @module
 */

/** Every setting of a distillation (or plain training) run. */
export interface DistillConfig {
  /** Dataset: cifar10, cifar100, fashion-mnist, synthetic, or a PNG folder path. */
  data: string;
  /** Where datasets are looked for and downloaded to. */
  dataDir: string;
  /** Download missing datasets and teachers (with pinned checksums). */
  download: boolean;
  /** Teacher: a zoo name (downloads the paper's checkpoint) or a .pth / .onnx path. */
  teacher: string;
  /** Architecture of a .pth teacher; inferred from its tensors when empty. */
  teacherArch: string;
  /** Student architecture (zoo name). */
  student: string;
  /** Teacher response that supervises the student: oracle (x*) or plain (Hinton KD on x). */
  response: string;
  /** Relevance behind x*: grad-input (the paper's code), lrp-epsilon, lrp-gamma or lrp-zplus. */
  relevance: string;
  /** LRP-epsilon's epsilon (relevance lrp-epsilon). */
  lrpEpsilon: number;
  /** LRP-gamma's positive-contribution boost (relevance lrp-gamma; not the oracle step). */
  lrpGamma: number;
  /** Softmax temperature T of the KL term. */
  temperature: number;
  /** Oracle step size: x* = x - gamma * |x| * dCE/dx (0 gives plain KD). */
  gamma: number;
  /** How many times the oracle step is applied. */
  recNum: number;
  /** CE reduction behind the input gradient: mean (paper; batch-dependent) or sum. */
  reduction: string;
  /** Weight of CE(student, y). */
  ceWeight: number;
  /** Weight of T^2 * KL(teacher || student). */
  alpha: number;
  /** Initial learning rate. */
  lr: number;
  /** Multiplier applied at each milestone of the multistep schedule. */
  lrDecay: number;
  /** Epochs (1-based) from which the learning rate is multiplied by lr-decay. */
  schedule: number[];
  /** Learning-rate schedule: multistep or cosine. */
  lrSchedule: string;
  /** Training epochs. */
  epochs: number;
  /** Images per batch. */
  batchSize: number;
  /** L2 weight decay (added to every parameter's gradient, BatchNorm included). */
  weightDecay: number;
  /** SGD momentum. */
  momentum: number;
  /** Nesterov momentum. */
  nesterov: boolean;
  /** Seed of initialisation, shuffling and augmentation. */
  seed: number;
  /** Use a seeded subset of this many training images (0: all). */
  subset: number;
  /** Compute engine: auto (default: webgpu on a hardware GPU, else onnxruntime), onnxruntime, tfjs or webgpu. */
  engine: string;
  /** tfjs backend: wasm, cpu or tensorflow. */
  backend: string;
  /** Run folder (config, metrics, checkpoints); empty: runs/<teacher>_to_<student>_<time>. */
  out: string;
  /** Where the final student ONNX is written (the best one goes beside it). */
  studentOut: string;
  /** Resume from the checkpoint in the run folder given by --out. */
  resume: boolean;
  /** Evaluate the teacher (plain and oracle) on the test set before training. */
  testTeacher: boolean;
}

/** How a field is parsed and checked. */
export interface FieldSpec {
  /** Value kind. */
  type: "string" | "number" | "integer" | "boolean" | "integer[]";
  /** One-line description (also the CLI help). */
  doc: string;
  /** Allowed values, for closed sets. */
  choices?: readonly string[];
  /** Smallest allowed value. */
  min?: number;
  /** Whether the minimum itself is excluded. */
  exclusiveMin?: boolean;
}

/** The defaults: the paper's published resnet56 -> resnet20 CIFAR-100 run. */
export const DISTILL_DEFAULTS: Readonly<DistillConfig> = Object.freeze({
  data: "cifar100",
  dataDir: "./data",
  download: true,
  teacher: "resnet56",
  teacherArch: "",
  student: "resnet20",
  response: "oracle",
  relevance: "grad-input",
  lrpEpsilon: 0.25,
  lrpGamma: 0.25,
  temperature: 2,
  gamma: 0.5,
  recNum: 1,
  reduction: "mean",
  ceWeight: 0.5,
  alpha: 1,
  lr: 0.05,
  lrDecay: 0.1,
  schedule: [150, 180, 210],
  lrSchedule: "multistep",
  epochs: 240,
  batchSize: 64,
  weightDecay: 2.5e-4,
  momentum: 0.9,
  nesterov: false,
  seed: 0,
  subset: 0,
  engine: "auto",
  backend: "wasm",
  out: "",
  studentOut: "weights/student.onnx",
  resume: false,
  testTeacher: true,
});

/** Field specifications, in help order. */
export const DISTILL_FIELDS: Readonly<Record<keyof DistillConfig, FieldSpec>> = Object.freeze({
  data: { type: "string", doc: "dataset: cifar10, cifar100, fashion-mnist, synthetic or a PNG folder" },
  dataDir: { type: "string", doc: "folder holding (or receiving) dataset files" },
  download: { type: "boolean", doc: "download missing datasets and teachers (checksums pinned)" },
  teacher: { type: "string", doc: "teacher: zoo name (paper checkpoint) or .pth/.onnx path" },
  teacherArch: { type: "string", doc: "architecture of a .pth teacher (inferred when omitted)" },
  student: { type: "string", doc: "student architecture" },
  response: {
    type: "string",
    doc: "teacher response: oracle (x*) or plain (KD on x)",
    choices: ["oracle", "plain"],
  },
  relevance: {
    type: "string",
    doc: "relevance behind x* (LRP rules need a larger --gamma; see README)",
    choices: ["grad-input", "lrp-epsilon", "lrp-gamma", "lrp-zplus"],
  },
  lrpEpsilon: { type: "number", doc: "epsilon of --relevance lrp-epsilon", min: 0 },
  lrpGamma: { type: "number", doc: "gamma of --relevance lrp-gamma (not the oracle step)", min: 0 },
  temperature: { type: "number", doc: "softmax temperature T", min: 0, exclusiveMin: true },
  gamma: { type: "number", doc: "oracle step: x* = x - gamma*|x|*dCE/dx", min: 0 },
  recNum: { type: "integer", doc: "oracle steps applied (rec_num)", min: 1 },
  reduction: { type: "string", doc: "CE reduction for the input gradient", choices: ["mean", "sum"] },
  ceWeight: { type: "number", doc: "weight of CE(student, y)", min: 0 },
  alpha: { type: "number", doc: "weight of T^2 * KL(teacher || student)", min: 0 },
  lr: { type: "number", doc: "initial learning rate", min: 0, exclusiveMin: true },
  lrDecay: { type: "number", doc: "multistep decay factor", min: 0, exclusiveMin: true },
  schedule: { type: "integer[]", doc: "multistep milestones (epochs, comma separated)", min: 1 },
  lrSchedule: { type: "string", doc: "learning-rate schedule", choices: ["multistep", "cosine"] },
  epochs: { type: "integer", doc: "training epochs", min: 1 },
  batchSize: { type: "integer", doc: "batch size", min: 1 },
  weightDecay: { type: "number", doc: "L2 weight decay", min: 0 },
  momentum: { type: "number", doc: "SGD momentum", min: 0 },
  nesterov: { type: "boolean", doc: "Nesterov momentum" },
  seed: { type: "integer", doc: "random seed", min: 0 },
  subset: { type: "integer", doc: "seeded training subset size (0: all)", min: 0 },
  engine: { type: "string", doc: "compute engine", choices: ["auto", "onnxruntime", "tfjs", "webgpu"] },
  backend: { type: "string", doc: "tfjs backend", choices: ["wasm", "cpu", "tensorflow"] },
  out: { type: "string", doc: "run folder (default runs/<teacher>_to_<student>_<time>)" },
  studentOut: { type: "string", doc: "final student ONNX path" },
  resume: { type: "boolean", doc: "resume the run in --out from its checkpoint" },
  testTeacher: { type: "boolean", doc: "evaluate the teacher (plain and oracle) before training" },
});

/** Thrown for invalid settings; the message names the flag and the allowed values. */
export class ConfigError extends Error {
  /** Error name. */
  override name = "ConfigError";
}

/**
 * kebab-case flag name of a field (`batchSize` -> `batch-size`).
 *
 * @example
 * ```ts
 * import { flagName } from "./config.ts";
 * console.log(flagName("recNum")); // rec-num
 * ```
 */
export function flagName(field: string): string {
  return field.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/**
 * Parses a raw value (CLI string or JSON value) for `field`, throwing {@link ConfigError}.
 *
 * @example
 * ```ts
 * import { parseField } from "./config.ts";
 * console.log(parseField("schedule", "150,180"), parseField("nesterov", "true")); // [150, 180] true
 * ```
 */
export function parseField<K extends keyof DistillConfig>(field: K, raw: unknown): DistillConfig[K] {
  const spec = DISTILL_FIELDS[field];
  if (!spec) throw new ConfigError(`unknown setting "${field}"`);
  const flag = `--${flagName(field)}`;
  let value: unknown = raw;
  switch (spec.type) {
    case "string":
      if (typeof raw !== "string") {
        throw new ConfigError(`${flag} must be a string, got ${JSON.stringify(raw)}`);
      }
      break;
    case "boolean":
      if (raw === "true" || raw === true) value = true;
      else if (raw === "false" || raw === false) value = false;
      else throw new ConfigError(`${flag} must be true or false, got ${JSON.stringify(raw)}`);
      break;
    case "number":
    case "integer": {
      const n = typeof raw === "number"
        ? raw
        : typeof raw === "string" && raw.trim() !== ""
        ? Number(raw)
        : NaN;
      if (!Number.isFinite(n)) throw new ConfigError(`${flag} must be a number, got ${JSON.stringify(raw)}`);
      if (spec.type === "integer" && !Number.isInteger(n)) {
        throw new ConfigError(`${flag} must be an integer, got ${JSON.stringify(raw)}`);
      }
      checkMin(flag, spec, n);
      value = n;
      break;
    }
    case "integer[]": {
      const parts = Array.isArray(raw)
        ? raw
        : typeof raw === "string"
        ? raw.split(",").filter((s) => s.trim())
        : null;
      if (!parts) throw new ConfigError(`${flag} must be a comma-separated list of integers`);
      value = parts.map((p) => {
        const n = Number(p);
        if (!Number.isInteger(n)) {
          throw new ConfigError(`${flag} must list integers, got ${JSON.stringify(p)}`);
        }
        checkMin(flag, spec, n);
        return n;
      });
      break;
    }
  }
  if (spec.choices && !spec.choices.includes(value as string)) {
    throw new ConfigError(`${flag} must be one of ${spec.choices.join(", ")}; got "${value}"`);
  }
  return value as DistillConfig[K];
}

function checkMin(flag: string, spec: FieldSpec, n: number): void {
  if (spec.min === undefined) return;
  if (spec.exclusiveMin ? n <= spec.min : n < spec.min) {
    throw new ConfigError(`${flag} must be ${spec.exclusiveMin ? ">" : ">="} ${spec.min}, got ${n}`);
  }
}

/**
 * Merges layers of settings over the defaults (later layers win) and validates every field.
 * Keys may be camelCase or kebab-case; unknown keys are errors.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * console.log(resolveConfig({ "batch-size": "32" }, { gamma: 0 }).batchSize); // 32
 * ```
 */
export function resolveConfig(...layers: Record<string, unknown>[]): DistillConfig {
  const out: Record<string, unknown> = { ...DISTILL_DEFAULTS, schedule: [...DISTILL_DEFAULTS.schedule] };
  for (const layer of layers) {
    for (const [rawKey, raw] of Object.entries(layer)) {
      if (raw === undefined) continue;
      const key = rawKey.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof DistillConfig;
      if (!(key in DISTILL_FIELDS)) {
        const known = Object.keys(DISTILL_FIELDS).map((k) => flagName(k)).join(", ");
        throw new ConfigError(`unknown setting "${rawKey}"; known settings: ${known}`);
      }
      out[key] = parseField(key, raw);
    }
  }
  return out as unknown as DistillConfig;
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
