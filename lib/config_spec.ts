/**
 * The mechanism behind every command's settings: a setting is a typed field spec (kind, doc,
 * help group, default, choices or range) built with {@link text}, {@link choice}, {@link num},
 * {@link int}, {@link bool}, {@link ints} or {@link nums}; a command's typed configuration is
 * {@link ConfigOf} its table; values from flags, JSON or YAML are parsed and checked by
 * {@link parseValue}, and every error is a {@link ConfigError} naming the `--flag`. The tables
 * themselves are in config.ts.
 *
 * @example
 * ```ts
 * import { choice, type ConfigOf, int, parseValue } from "./config_spec.ts";
 * const FIELDS = { epochs: int("optimiser", "epochs", 3, { min: 1 }), mode: choice("run", "mode", ["a", "b"] as const, "a") };
 * const c: ConfigOf<typeof FIELDS> = { epochs: parseValue("epochs", FIELDS.epochs, "5"), mode: "b" };
 * console.log(c.epochs); // 5
 * ```
 * @module
 */

/** Help groups, in the order help lists them. */
export const GROUPS = ["data", "model", "teacher", "oracle", "loss", "optimiser", "run", "engine"] as const;

/** A help group. */
export type Group = typeof GROUPS[number];

/** Value kinds a field can hold. */
export type FieldKind = "string" | "number" | "integer" | "boolean" | "integer[]" | "number[]";

/** How a field is parsed, checked, documented and defaulted. `T` is the value's type. */
export interface FieldSpec<T = unknown> {
  /** Value kind. */
  type: FieldKind;
  /** One-line description (the help text). */
  doc: string;
  /** Help group. */
  group: Group;
  /** Default value (`""`, `0` or `[]` can mean "decided at run time"; see `defaultText`). */
  default: T;
  /** What help shows instead of the default, when the default is computed at run time. */
  defaultText?: string;
  /** Allowed values, for closed sets (`""` is also allowed when it is the default). */
  choices?: readonly string[];
  /** Smallest allowed value (of each element, for lists). */
  min?: number;
  /** Whether the minimum itself is excluded. */
  exclusiveMin?: boolean;
  /** Largest allowed value. */
  max?: number;
  /** The command cannot run without it. */
  required?: boolean;
  /** Placeholder shown in help, e.g. `file.onnx`. */
  placeholder?: string;
  /** Further check of a parsed value: a problem sentence, or undefined when fine. */
  check?(value: T): string | undefined;
}

/** Extra spec properties accepted by the field constructors. */
type Extra<T> = Partial<Omit<FieldSpec<T>, "type" | "doc" | "group" | "default" | "choices">>;

/**
 * A free-text field.
 *
 * @example
 * ```ts
 * import { text } from "./config.ts";
 * console.log(text("data", "where datasets are", "./data").default); // ./data
 * ```
 */
export function text(group: Group, doc: string, def: string, extra: Extra<string> = {}): FieldSpec<string> {
  return { type: "string", doc, group, default: def, ...extra };
}

/**
 * A field whose value is one of `choices` (typed as their union).
 *
 * @example
 * ```ts
 * import { choice, REDUCTIONS } from "./config.ts";
 * console.log(choice("oracle", "CE reduction", REDUCTIONS, "mean").choices); // [ "mean", "sum" ]
 * ```
 */
export function choice<const C extends readonly string[], D extends C[number] | "">(
  group: Group,
  doc: string,
  choices: C,
  def: D,
  extra: Extra<C[number] | D> = {},
): FieldSpec<C[number] | D> {
  return { type: "string", doc, group, default: def, choices, ...extra };
}

/**
 * A real-number field.
 *
 * @example
 * ```ts
 * import { num } from "./config.ts";
 * console.log(num("loss", "temperature", 2, { min: 0, exclusiveMin: true }).min); // 0
 * ```
 */
export function num(group: Group, doc: string, def: number, extra: Extra<number> = {}): FieldSpec<number> {
  return { type: "number", doc, group, default: def, ...extra };
}

/**
 * An integer field.
 *
 * @example
 * ```ts
 * import { int } from "./config.ts";
 * console.log(int("optimiser", "epochs", 240, { min: 1 }).type); // integer
 * ```
 */
export function int(group: Group, doc: string, def: number, extra: Extra<number> = {}): FieldSpec<number> {
  return { type: "integer", doc, group, default: def, ...extra };
}

/**
 * A boolean field (`--x`, `--no-x`, `--x true|false`).
 *
 * @example
 * ```ts
 * import { bool } from "./config.ts";
 * console.log(bool("run", "resume", false).default); // false
 * ```
 */
export function bool(
  group: Group,
  doc: string,
  def: boolean,
  extra: Extra<boolean> = {},
): FieldSpec<boolean> {
  return { type: "boolean", doc, group, default: def, ...extra };
}

/**
 * A comma-separated list of integers (or a JSON/YAML list).
 *
 * @example
 * ```ts
 * import { ints } from "./config.ts";
 * console.log(ints("optimiser", "milestones", [150, 180]).default); // [ 150, 180 ]
 * ```
 */
export function ints(
  group: Group,
  doc: string,
  def: number[],
  extra: Extra<number[]> = {},
): FieldSpec<number[]> {
  return { type: "integer[]", doc, group, default: def, ...extra };
}

/**
 * A comma-separated list of numbers (or a JSON/YAML list).
 *
 * @example
 * ```ts
 * import { nums } from "./config.ts";
 * console.log(nums("oracle", "gammas", [0, 0.5]).type); // number[]
 * ```
 */
export function nums(
  group: Group,
  doc: string,
  def: number[],
  extra: Extra<number[]> = {},
): FieldSpec<number[]> {
  return { type: "number[]", doc, group, default: def, ...extra };
}

/** A command's table of fields. */
export type FieldTable = Readonly<Record<string, FieldSpec<unknown>>>;
/** The value type of a field spec. */
export type ValueOf<S> = S extends FieldSpec<infer T> ? T : never;
/** The typed configuration of a field table. */
export type ConfigOf<F> = { -readonly [K in keyof F]: ValueOf<F[K]> };
/** Any subset of a configuration, as a library caller writes it (lists may be readonly). */
export type Settings<C> = { [K in keyof C]?: C[K] extends (infer E)[] ? readonly E[] : C[K] };

/** The defaults of a field table. */
export function defaultsOf<F extends FieldTable>(fields: F): ConfigOf<F> {
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(fields)) {
    out[k] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
  }
  return out as ConfigOf<F>;
}

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
 * The field name of a key written in kebab-, snake- or camelCase (`batch_size` -> `batchSize`).
 *
 * @example
 * ```ts
 * import { fieldName } from "./config.ts";
 * console.log(fieldName("batch_size"), fieldName("lr-decay"), fieldName("recNum")); // batchSize lrDecay recNum
 * ```
 */
export function fieldName(key: string): string {
  return key.replace(/[-_]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Parses a raw value (CLI string, JSON or YAML value) of the field `spec`, throwing a
 * {@link ConfigError} that names `--flag`.
 *
 * @example
 * ```ts
 * import { DISTILL_FIELDS, parseValue } from "./config.ts";
 * console.log(parseValue("schedule", DISTILL_FIELDS.schedule, "150,180")); // [ 150, 180 ]
 * ```
 */
export function parseValue<T>(field: string, spec: FieldSpec<T>, raw: unknown): T {
  const flag = `--${flagName(field)}`;
  let value: unknown = raw;
  switch (spec.type) {
    case "string":
      if (typeof raw === "number") value = String(raw);
      else if (typeof raw !== "string") {
        throw new ConfigError(`${flag} must be a string, got ${JSON.stringify(raw)}`);
      }
      break;
    case "boolean":
      if (raw === "true" || raw === true) value = true;
      else if (raw === "false" || raw === false) value = false;
      else throw new ConfigError(`${flag} must be true or false, got ${JSON.stringify(raw)}`);
      break;
    case "number":
    case "integer":
      value = parseNumber(flag, spec, raw);
      break;
    case "integer[]":
    case "number[]": {
      const parts = Array.isArray(raw)
        ? raw
        : typeof raw === "number"
        ? [raw]
        : typeof raw === "string"
        ? raw.split(",").filter((s) => s.trim())
        : null;
      const what = spec.type === "integer[]" ? "integers" : "numbers";
      if (!parts) throw new ConfigError(`${flag} must be a comma-separated list of ${what}`);
      value = parts.map((p) => parseNumber(flag, spec, p, `${flag} must list ${what}`));
      break;
    }
  }
  if (spec.choices && !(value === "" && spec.default === "") && !spec.choices.includes(value as string)) {
    throw new ConfigError(`${flag} must be one of ${spec.choices.join(", ")}; got "${value}"`);
  }
  const problem = spec.check?.(value as T);
  if (problem) throw new ConfigError(`${flag}: ${problem}`);
  return value as T;
}

function parseNumber(flag: string, spec: FieldSpec<unknown>, raw: unknown, what?: string): number {
  const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
  const integer = spec.type === "integer" || spec.type === "integer[]";
  if (!Number.isFinite(n)) {
    throw new ConfigError(`${what ?? `${flag} must be a number`}, got ${JSON.stringify(raw)}`);
  }
  if (integer && !Number.isInteger(n)) {
    throw new ConfigError(`${what ?? `${flag} must be an integer`}, got ${JSON.stringify(raw)}`);
  }
  if (spec.min !== undefined && (spec.exclusiveMin ? n <= spec.min : n < spec.min)) {
    throw new ConfigError(`${flag} must be ${spec.exclusiveMin ? ">" : ">="} ${spec.min}, got ${n}`);
  }
  if (spec.max !== undefined && n > spec.max) {
    throw new ConfigError(`${flag} must be <= ${spec.max}, got ${n}`);
  }
  return n;
}

/**
 * The nearest of `names` to `key` (edit distance at most a third of its length, at least 2), if any.
 *
 * @example
 * ```ts
 * import { nearest } from "./config.ts";
 * console.log(nearest("epoch", ["epochs", "seed"]), nearest("zzz", ["epochs"])); // epochs undefined
 * ```
 */
export function nearest(key: string, names: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const n of names) {
    const d = editDistance(key.toLowerCase(), n.toLowerCase());
    if (d < bestD) [best, bestD] = [n, d];
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * Throws naming the first required field still empty.
 *
 * @example
 * ```ts
 * import { checkRequired, resolveFields, TEST_FIELDS } from "./config.ts";
 * try { checkRequired(TEST_FIELDS, resolveFields(TEST_FIELDS)); } catch (e) { console.log((e as Error).message); }
 * // --model <file.onnx> is required: the ONNX classifier to evaluate (students exported here need no other flag)
 * ```
 */
export function checkRequired(fields: FieldTable, c: Record<string, unknown>): void {
  for (const [k, spec] of Object.entries(fields)) {
    if (spec.required && (c[k] === "" || c[k] === undefined)) {
      throw new ConfigError(
        `--${flagName(k)}${spec.placeholder ? ` <${spec.placeholder}>` : ""} is required: ${spec.doc}`,
      );
    }
  }
}
