/**
 * Sweep specifications: one YAML or JSON file describing a study. Fixed `settings`, teacher ->
 * student `pairs`, `methods` (`train`: CE only, `plain`: Hinton KD, `oracle`: the paper's oracle
 * KD) and `axes` (lists of values of any distill/train setting, crossed). Teachers the sweep
 * trains itself are named under `teachers` and referenced as `"@name"`. Every setting is
 * validated through the typed configuration ({@link resolveConfig}); errors name the spec file.
 *
 * @example
 * ```ts
 * import { parseSweepSpec } from "./spec.ts";
 * const spec = parseSweepSpec({
 *   settings: { data: "synthetic", epochs: 1 },
 *   pairs: [{ teacher: "t.onnx", student: "resnet8" }],
 *   methods: ["plain", "oracle"],
 *   axes: { seed: [0, 1] },
 * }, "study.json");
 * console.log(spec.methods, spec.axes.seed); // ["plain", "oracle"] [0, 1]
 * ```
 * @module
 */

import { parseYaml } from "../../lib/deps.ts";
import { DISTILL_FIELDS, type DistillConfig, flagName, parseField, resolveConfig } from "../../lib/config.ts";

/** How a cell trains: CE only (`train`), Hinton KD (`plain`) or the paper's oracle KD (`oracle`). */
export type SweepMethod = "train" | "plain" | "oracle";

/** The methods, in report column order. */
export const SWEEP_METHODS: readonly SweepMethod[] = ["train", "plain", "oracle"];

/** One teacher -> student pair, with optional further settings for its cells. */
export interface SweepPair {
  /** Teacher: zoo name, .pth/.onnx path, or `@name` of a teacher trained by the sweep. */
  teacher: string;
  /** Student architecture. */
  student: string;
  /** Further settings of this pair's cells (validated). */
  settings: Record<string, unknown>;
}

/** A parsed, validated sweep specification. */
export interface SweepSpec {
  /** Study name (default: the file's base name). */
  name: string;
  /** The file it came from (named in errors). */
  file: string;
  /** Settings shared by every cell (camelCase keys). */
  settings: Record<string, unknown>;
  /** Teachers trained by the sweep (CE-only cells that run first), by name. */
  teachers: Record<string, Record<string, unknown>>;
  /** Teacher -> student pairs (empty: teacher and student come from settings/axes). */
  pairs: SweepPair[];
  /** Methods crossed with everything else. */
  methods: SweepMethod[];
  /** Settings crossed, in file order (camelCase keys, validated values). */
  axes: Record<string, unknown[]>;
}

/** Settings a sweep manages itself (per cell) and refuses in a spec. */
export const MANAGED_SETTINGS = ["out", "resume", "studentOut"] as const;

/** Thrown for a bad spec; the message starts with the spec file. */
export class SweepSpecError extends Error {
  /** Error name. */
  override name = "SweepSpecError";
}

const TOP_KEYS = ["name", "settings", "teachers", "pairs", "methods", "axes"];

/**
 * Reads a spec file (`.yaml`, `.yml` or `.json`; YAML is a superset of JSON) and validates it.
 * `overrides` (`--set key=value`) replace settings everywhere, axes included.
 *
 * @example
 * ```ts
 * import { loadSweepSpec } from "./spec.ts";
 * const f = await Deno.makeTempFile({ suffix: ".yaml" });
 * await Deno.writeTextFile(f, "settings: {data: synthetic}\npairs: [{teacher: t.onnx, student: resnet8}]\n");
 * console.log((await loadSweepSpec(f)).methods); // ["plain", "oracle"]
 * ```
 */
export async function loadSweepSpec(
  file: string,
  overrides: Record<string, unknown> = {},
): Promise<SweepSpec> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new SweepSpecError(`${file}: cannot read the spec (${(e as Error).message.split("\n")[0]})`);
  }
  let raw: unknown;
  try {
    raw = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new SweepSpecError(
      `${file}: not valid ${/\.json$/i.test(file) ? "JSON" : "YAML"} (${
        (e as Error).message.split("\n")[0]
      })`,
    );
  }
  return parseSweepSpec(raw, file, overrides);
}

/**
 * Validates a spec object (as read from `file`) and applies `overrides`.
 *
 * @example
 * ```ts
 * import { parseSweepSpec } from "./spec.ts";
 * try { parseSweepSpec({ settings: { epoch: 3 } }, "s.yaml"); }
 * catch (e) { console.log((e as Error).message.slice(0, 41)); } // s.yaml: settings: unknown setting "epoch"
 * ```
 */
export function parseSweepSpec(
  raw: unknown,
  file: string,
  overrides: Record<string, unknown> = {},
): SweepSpec {
  const fail = (msg: string): never => {
    throw new SweepSpecError(`${file}: ${msg}`);
  };
  if (!isObject(raw)) fail("the spec must be a mapping with settings, pairs, methods, axes");
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!TOP_KEYS.includes(k)) fail(`unknown key "${k}"; a spec has ${TOP_KEYS.join(", ")}`);
  }
  const name = o.name === undefined
    ? file.replace(/^.*[\\/]/, "").replace(/\.\w+$/, "")
    : typeof o.name === "string"
    ? o.name
    : fail("name must be a string");
  const over = settingsBlock(overrides, "--set", fail);
  const settings = { ...settingsBlock(o.settings ?? {}, "settings", fail), ...over };

  const teachers: Record<string, Record<string, unknown>> = {};
  if (o.teachers !== undefined) {
    if (!isObject(o.teachers)) fail("teachers must map names to settings, e.g. {t20: {student: resnet20}}");
    for (const [n, s] of Object.entries(o.teachers as Record<string, unknown>)) {
      if (!/^[\w.-]+$/.test(n)) fail(`teachers: name "${n}" may hold only letters, digits, _ . -`);
      teachers[n] = { ...settingsBlock(s ?? {}, `teachers.${n}`, fail), ...over };
      if (typeof teachers[n].student !== "string") fail(`teachers.${n} needs student: <its architecture>`);
    }
  }

  const pairs: SweepPair[] = [];
  if (o.pairs !== undefined) {
    if (!Array.isArray(o.pairs) || o.pairs.length === 0) {
      fail("pairs must be a non-empty list like [{teacher: resnet56, student: resnet20}]");
    }
    (o.pairs as unknown[]).forEach((p, i) => {
      if (!isObject(p)) fail(`pairs[${i}] must be a mapping {teacher, student}`);
      const { teacher, student, ...rest } = p as Record<string, unknown>;
      if (typeof teacher !== "string" || !teacher) fail(`pairs[${i}] needs a teacher (name, file or @name)`);
      if (typeof student !== "string" || !student) fail(`pairs[${i}] needs a student architecture`);
      const t = teacher as string;
      if (t.startsWith("@") && !(t.slice(1) in teachers)) {
        fail(`pairs[${i}]: teacher ${t} is not defined under teachers`);
      }
      pairs.push({
        teacher: t,
        student: student as string,
        settings: settingsBlock(rest, `pairs[${i}]`, fail),
      });
    });
  }

  let methods: SweepMethod[] = ["plain", "oracle"];
  if (o.methods !== undefined) {
    const m = Array.isArray(o.methods) ? o.methods : [o.methods];
    if (m.length === 0) fail("methods must list at least one of train, plain, oracle");
    for (const x of m) {
      if (!SWEEP_METHODS.includes(x as SweepMethod)) {
        fail(`methods: "${x}" is not one of ${SWEEP_METHODS.join(", ")} (train = CE only)`);
      }
    }
    methods = [...new Set(m as SweepMethod[])];
  }

  const axes: Record<string, unknown[]> = {};
  if (o.axes !== undefined) {
    if (!isObject(o.axes)) fail("axes must map settings to lists of values, e.g. {seed: [0, 1, 2]}");
    for (const [rawKey, vals] of Object.entries(o.axes as Record<string, unknown>)) {
      const key = camel(rawKey);
      checkKey(key, rawKey, "axes", fail);
      if (key in over) continue; // --set fixes it
      if (!Array.isArray(vals) || vals.length === 0) fail(`axes.${rawKey} must be a non-empty list`);
      axes[key] = (vals as unknown[]).map((v) => {
        try {
          return parseField(key as keyof DistillConfig, v);
        } catch (e) {
          return fail(`axes.${rawKey}: ${(e as Error).message}`);
        }
      });
      if (new Set(axes[key].map((v) => JSON.stringify(v))).size !== axes[key].length) {
        fail(`axes.${rawKey} lists a value twice`);
      }
    }
  }
  if (pairs.length === 0 && methods.some((m) => m !== "train") && !("teacher" in settings) && !axes.teacher) {
    fail("no teacher: give pairs [{teacher, student}] or a teacher setting");
  }
  return { name, file, settings, teachers, pairs, methods, axes };
}

/** Validates a block of settings (camelCase or kebab-case keys) and returns it camelCased. */
function settingsBlock(
  raw: unknown,
  where: string,
  fail: (msg: string) => never,
): Record<string, unknown> {
  if (!isObject(raw)) fail(`${where} must be a mapping of settings, e.g. {epochs: 10}`);
  const out: Record<string, unknown> = {};
  for (const [rawKey, v] of Object.entries(raw as Record<string, unknown>)) {
    const key = camel(rawKey);
    checkKey(key, rawKey, where, fail);
    try {
      out[key] = parseField(key as keyof DistillConfig, v);
    } catch (e) {
      fail(`${where}: ${(e as Error).message}`);
    }
  }
  try {
    resolveConfig(out);
  } catch (e) {
    fail(`${where}: ${(e as Error).message}`);
  }
  return out;
}

function checkKey(key: string, rawKey: string, where: string, fail: (msg: string) => never): void {
  if (!(key in DISTILL_FIELDS)) {
    const known = Object.keys(DISTILL_FIELDS).filter((k) =>
      !(MANAGED_SETTINGS as readonly string[]).includes(k)
    )
      .map(flagName).join(", ");
    fail(`${where}: unknown setting "${rawKey}"; known settings: ${known}`);
  }
  if (key === "response") fail(`${where}: "${rawKey}" is chosen by methods: [train, plain, oracle]`);
  if ((MANAGED_SETTINGS as readonly string[]).includes(key)) {
    fail(`${where}: "${rawKey}" is set by the sweep for each cell (cells/<name>/); remove it`);
  }
}

/** `batch-size` -> `batchSize`. */
function camel(k: string): string {
  return k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function isObject(x: unknown): boolean {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * Parses `--set key=value` strings into an overrides object (values stay strings; the typed
 * configuration parses them).
 *
 * @example
 * ```ts
 * import { parseOverrides } from "./spec.ts";
 * console.log(parseOverrides(["epochs=1", "subset=500"])); // { epochs: "1", subset: "500" }
 * ```
 */
export function parseOverrides(sets: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of sets) {
    const i = s.indexOf("=");
    if (i <= 0) throw new SweepSpecError(`--set ${s}: expected key=value, e.g. --set epochs=1`);
    out[s.slice(0, i).trim()] = s.slice(i + 1).trim();
  }
  return out;
}
