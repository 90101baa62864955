/**
 * Expands a {@link SweepSpec} into cells: one ordinary run (`distill` or `train`) per
 * combination of pair, method and axis values, each with a full validated configuration and a
 * run folder `cells/<name>` under the sweep folder. Settings a method does not use (gamma for
 * plain KD, the teacher for CE-only training) are left out of its cells' names, so equal runs
 * collapse into one cell (the CE baseline of a student is shared by all its teachers).
 *
 * @example
 * ```ts
 * import { parseSweepSpec } from "./spec.ts";
 * import { planSweep } from "./plan.ts";
 * const spec = parseSweepSpec({
 *   settings: { data: "synthetic", epochs: 1 },
 *   pairs: [{ teacher: "t.onnx", student: "resnet8" }],
 *   methods: ["train", "plain", "oracle"],
 *   axes: { seed: [0, 1], gamma: [0.5, 1] },
 * }, "s.yaml");
 * const plan = planSweep(spec, "/tmp/sweep");
 * console.log(plan.cells.length, plan.cells[0].name); // 8 train_resnet8_seed=0
 * ```
 * @module
 */

import * as path from "node:path";
import { type DistillConfig, resolveConfig } from "../../lib/config.ts";
import { type SweepMethod, type SweepSpec, SweepSpecError } from "./spec.ts";

/** One run of the sweep. */
export interface SweepCell {
  /** Position in the plan (Slurm array index). */
  index: number;
  /** Folder name under `cells/`, unique in the sweep. */
  name: string;
  /** `teacher`: a teacher trained for later cells; `cell`: a result cell. */
  kind: "teacher" | "cell";
  /** Training method. */
  method: SweepMethod;
  /** CLI command of the run. */
  command: "distill" | "train";
  /** Teacher as labelled in the report ("" for CE-only). */
  teacherLabel: string;
  /** Student architecture. */
  student: string;
  /** Values of the varying axes that this method uses (seed, teacher and student excluded). */
  axes: Record<string, unknown>;
  /** Seed. */
  seed: number;
  /** Names of cells that must finish first (teachers trained by the sweep). */
  dependsOn: string[];
  /** The full configuration (out and studentOut point into the cell's run folder). */
  config: DistillConfig;
}

/** The expanded sweep. */
export interface SweepPlan {
  /** Study name. */
  name: string;
  /** The spec file. */
  specFile: string;
  /** Absolute sweep folder. */
  outDir: string;
  /** Axis keys shared by every method (report rows), seed excluded. */
  rowKeys: string[];
  /** Axis keys only some methods use (report columns). */
  columnKeys: string[];
  /** Cells, teachers first. */
  cells: SweepCell[];
}

/** Settings each method does not use (left out of its cells' identity and names). */
export const METHOD_IGNORES: Readonly<Record<SweepMethod, readonly string[]>> = {
  train: [
    "teacher",
    "teacherArch",
    "relevance",
    "lrpEpsilon",
    "lrpGamma",
    "temperature",
    "gamma",
    "recNum",
    "reduction",
    "ceWeight",
    "alpha",
    "testTeacher",
  ],
  plain: ["relevance", "lrpEpsilon", "lrpGamma", "gamma", "recNum", "reduction"],
  oracle: [],
};

/** Settings of a CE-only run (as `deno task train`). */
const TRAIN_LAYER = { response: "plain", ceWeight: 1, alpha: 0, teacher: "", teacherArch: "" };

/**
 * The run folder of a cell.
 *
 * @example
 * ```ts
 * import { cellDir } from "./plan.ts";
 * console.log(cellDir("/s", "oracle_resnet56-resnet20_seed=0")); // /s/cells/oracle_resnet56-resnet20_seed=0
 * ```
 */
export function cellDir(outDir: string, name: string): string {
  return path.join(outDir, "cells", name);
}

/**
 * Expands `spec` into the cells of a sweep writing under `outDir`.
 *
 * @example
 * ```ts
 * import { parseSweepSpec } from "./spec.ts";
 * import { planSweep } from "./plan.ts";
 * const spec = parseSweepSpec({
 *   settings: { data: "synthetic" },
 *   teachers: { t20: { student: "resnet20", epochs: 2 } },
 *   pairs: [{ teacher: "@t20", student: "resnet8" }],
 *   methods: ["oracle"],
 * }, "s.yaml");
 * const plan = planSweep(spec, "/tmp/sw");
 * console.log(plan.cells.map((c) => c.name), plan.cells[1].config.teacher); // ["teacher_t20", "oracle_t20-resnet8"] /tmp/sw/cells/teacher_t20/student.onnx
 * ```
 */
export function planSweep(spec: SweepSpec, outDir: string): SweepPlan {
  const abs = path.resolve(outDir);
  const fail = (msg: string): never => {
    throw new SweepSpecError(`${spec.file}: ${msg}`);
  };
  const resolve = (where: string, ...layers: Record<string, unknown>[]) => {
    try {
      return resolveConfig(...layers);
    } catch (e) {
      return fail(`${where}: ${(e as Error).message}`);
    }
  };
  const cells: SweepCell[] = [];
  const teacherOut = new Map<string, { file: string; data: string; name: string }>();
  for (const [n, settings] of Object.entries(spec.teachers)) {
    const name = `teacher_${n}`;
    const dir = cellDir(abs, name);
    const config = resolve(`teachers.${n}`, spec.settings, settings, TRAIN_LAYER, {
      out: dir,
      studentOut: path.join(dir, "student.onnx"),
    });
    teacherOut.set(n, { file: config.studentOut, data: config.data, name });
    cells.push({
      index: cells.length,
      name,
      kind: "teacher",
      method: "train",
      command: "train",
      teacherLabel: "",
      student: config.student,
      axes: {},
      seed: config.seed,
      dependsOn: [],
      config,
    });
  }

  const axisKeys = Object.keys(spec.axes);
  const ignoredBySome = new Set(spec.methods.flatMap((m) => METHOD_IGNORES[m]));
  const labelled = axisKeys.filter((k) => !["seed", "teacher", "student"].includes(k));
  const columnKeys = labelled.filter((k) => ignoredBySome.has(k));
  const rowKeys = labelled.filter((k) => !ignoredBySome.has(k));
  const pairs = spec.pairs.length > 0
    ? spec.pairs
    : [{ teacher: undefined, student: undefined, settings: {} }];
  const seeds = spec.axes.seed ?? [undefined];
  const otherKeys = axisKeys.filter((k) => k !== "seed");
  const combos = cross(otherKeys.map((k) => spec.axes[k].map((v) => [k, v] as const)));

  const byName = new Map<string, { identity: string; cell: SweepCell }>();
  const collided = new Set<string>();
  const candidates: { name: string; identity: string; cell: SweepCell }[] = [];
  for (const seed of seeds) {
    for (const pair of pairs) {
      for (const combo of combos) {
        for (const method of spec.methods) {
          const axisLayer: Record<string, unknown> = Object.fromEntries(combo);
          if (seed !== undefined) axisLayer.seed = seed;
          const pairLayer: Record<string, unknown> = { ...pair.settings };
          if (pair.teacher !== undefined) pairLayer.teacher = pair.teacher;
          if (pair.student !== undefined) pairLayer.student = pair.student;
          const merged = { ...spec.settings, ...pairLayer, ...axisLayer };
          let teacherRef: string | undefined;
          if (typeof merged.teacher === "string" && merged.teacher.startsWith("@")) {
            teacherRef = merged.teacher.slice(1);
            const t = teacherOut.get(teacherRef);
            if (!t) return fail(`teacher ${merged.teacher} is not defined under teachers`);
            pairLayer.teacher = t.file;
            axisLayer.teacher = axisLayer.teacher === undefined ? undefined : t.file;
          }
          const methodLayer: Record<string, unknown> = method === "train"
            ? TRAIN_LAYER
            : { response: method };
          const pre = resolve("cell", spec.settings, pairLayer, axisLayer, methodLayer);
          const ignores = METHOD_IGNORES[method];
          const usedAxes: Record<string, unknown> = {};
          for (const k of labelled) if (!ignores.includes(k)) usedAxes[k] = axisLayer[k];
          const teacherLabel = method === "train" ? "" : teacherRef ?? label(String(merged.teacher));
          const parts = [method, method === "train" ? pre.student : `${teacherLabel}-${pre.student}`];
          for (const k of otherKeys) {
            if (k !== "teacher" && k !== "student" && !ignores.includes(k)) {
              parts.push(`${k}=${label(String(axisLayer[k]))}`);
            }
          }
          if (seed !== undefined) parts.push(`seed=${seed}`);
          const name = parts.join("_");
          const identity = JSON.stringify(
            Object.entries(pre).filter(([k]) => !ignores.includes(k)).sort(([a], [b]) => a < b ? -1 : 1),
          );
          if (teacherRef !== undefined && method !== "train") {
            const t = teacherOut.get(teacherRef)!;
            if (t.data !== pre.data) {
              fail(`teacher @${teacherRef} is trained on ${t.data} but cell ${name} uses ${pre.data}`);
            }
          }
          const cell: SweepCell = {
            index: -1,
            name,
            kind: "cell",
            method,
            command: method === "train" ? "train" : "distill",
            teacherLabel,
            student: pre.student,
            axes: usedAxes,
            seed: pre.seed,
            dependsOn: teacherRef !== undefined && method !== "train"
              ? [teacherOut.get(teacherRef)!.name]
              : [],
            config: pre,
          };
          const prev = byName.get(name);
          if (prev && prev.identity !== identity) collided.add(name);
          if (!prev) byName.set(name, { identity, cell });
          candidates.push({ name, identity, cell });
        }
      }
    }
  }
  // Equal names with different settings (e.g. two pairs differing only in extra settings) get a
  // short hash of their settings; equal settings collapse into one cell.
  const seen = new Set(cells.map((c) => c.name));
  for (const c of candidates) {
    const name = collided.has(c.name) ? `${c.name}_${hash(c.identity)}` : c.name;
    if (seen.has(name)) continue;
    seen.add(name);
    const dir = cellDir(abs, name);
    c.cell.name = name;
    c.cell.index = cells.length;
    c.cell.config = { ...c.cell.config, out: dir, studentOut: path.join(dir, "student.onnx") };
    cells.push(c.cell);
  }
  // The teacher's test (plain, and oracle at the cell's settings) is the same for every seed:
  // only the first cell of each teacher and oracle setting runs it (minutes per run on a CPU).
  const tested = new Set<string>();
  for (const c of cells) {
    if (c.kind !== "cell" || c.method === "train" || !c.config.testTeacher) continue;
    const k = c.config;
    const key = JSON.stringify(
      c.method === "plain" ? [k.teacher, k.teacherArch, k.data, k.dataDir] : [
        k.teacher,
        k.teacherArch,
        k.data,
        k.dataDir,
        k.gamma,
        k.recNum,
        k.reduction,
        k.relevance,
        k.lrpEpsilon,
        k.lrpGamma,
        k.batchSize,
      ],
    );
    if (tested.has(`${c.method}:${key}`)) c.config = { ...c.config, testTeacher: false };
    tested.add(`${c.method}:${key}`);
  }
  return { name: spec.name, specFile: spec.file, outDir: abs, rowKeys, columnKeys, cells };
}

/** A file-name-safe label (a path's base name without extension). */
function label(v: string): string {
  const base = v.replace(/^.*[\\/]/, "").replace(/\.(onnx|pth|pt)$/i, "");
  return base.replace(/[^\w.+-]+/g, "-");
}

function cross<T>(lists: T[][]): T[][] {
  return lists.reduce<T[][]>((acc, l) => acc.flatMap((a) => l.map((x) => [...a, x])), [[]]);
}

function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0").slice(0, 6);
}
