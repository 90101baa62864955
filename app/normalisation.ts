/**
 * Which normalisation a run feeds its networks: `--mean/--std` when given, else the teacher's
 * declared one (ONNX metadata), else the data's own statistics. A teacher whose declared
 * normalisation differs from the data's is reported, since a teacher fed inputs it was not
 * trained on answers poorly without any other sign.
 *
 * @example
 * ```ts
 * import { chooseNormalisation } from "./normalisation.ts";
 * const n = chooseNormalisation({ mean: [0.5], std: [0.25] }, { mean: [0.4], std: [0.2] }, {}, 1, "mnist-like");
 * console.log(n.mean, n.source); // [ 0.4 ] teacher
 * console.log(n.note); // the teacher declares mean [0.4] std [0.2] (its ONNX metadata) but mnist-like's statistics are mean [0.5] std [0.25]; using the teacher's (override with --mean/--std)
 * ```
 * @module
 */

/** A per-channel normalisation. */
export interface Normalisation {
  /** Mean of pixel/255 per channel. */
  mean: number[];
  /** Standard deviation of pixel/255 per channel. */
  std: number[];
}

/** The chosen normalisation, where it came from, and what to tell the user. */
export interface ChosenNormalisation extends Normalisation {
  /** `flags` (--mean/--std), `teacher` (its metadata) or `data` (the dataset's statistics). */
  source: "flags" | "teacher" | "data";
  /** A line reporting a mismatch between the teacher's declared normalisation and the data's. */
  note?: string;
}

const fmt = (v: readonly number[]) => `[${v.map((x) => +x.toFixed(4)).join(", ")}]`;
const differs = (a: readonly number[], b: readonly number[]) =>
  a.length !== b.length || a.some((x, i) => Math.abs(x - b[i]) > 2e-3);

/**
 * `values` when it has one finite (positive, for std) number per channel; an error naming
 * `what` otherwise; undefined when absent or empty.
 *
 * @example
 * ```ts
 * import { checkChannels } from "./normalisation.ts";
 * try { checkChannels([0.5], "--mean", 3, "cifar10"); } catch (e) { console.log((e as Error).message); }
 * // --mean needs 3 finite numbers (one per channel of cifar10's images), got [0.5]
 * ```
 */
export function checkChannels(
  values: readonly number[] | undefined,
  what: string,
  channels: number,
  dataset: string,
  positive = false,
): number[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  if (values.length !== channels || values.some((v) => !Number.isFinite(v) || (positive && v <= 0))) {
    throw new Error(
      `${what} needs ${channels} ${positive ? "positive" : "finite"} number${
        channels === 1 ? "" : "s"
      } (one per channel of ${dataset}'s images), got [${values.join(", ")}]`,
    );
  }
  return [...values];
}

/**
 * Picks the normalisation (flags > teacher metadata > data) and reports a teacher/data mismatch.
 *
 * @example
 * ```ts
 * import { chooseNormalisation } from "./normalisation.ts";
 * const n = chooseNormalisation({ mean: [0.5], std: [0.25] }, {}, { mean: [0.1], std: [0.3] }, 1, "d");
 * console.log(n.source, n.mean, n.note); // flags [ 0.1 ] undefined
 * ```
 */
export function chooseNormalisation(
  data: Normalisation,
  teacher: Partial<Normalisation>,
  flags: Partial<Normalisation>,
  channels: number,
  dataset: string,
): ChosenNormalisation {
  const fm = checkChannels(flags.mean, "--mean", channels, dataset);
  const fs = checkChannels(flags.std, "--std", channels, dataset, true);
  const tm = checkChannels(teacher.mean, "the teacher's metadata mean", channels, dataset);
  const ts = checkChannels(teacher.std, "the teacher's metadata std", channels, dataset, true);
  const declared = tm && ts ? { mean: tm, std: ts } : undefined;
  const mismatch = declared && (differs(declared.mean, data.mean) || differs(declared.std, data.std));
  const mean = fm ?? declared?.mean ?? [...data.mean];
  const std = fs ?? declared?.std ?? [...data.std];
  const source = fm || fs ? "flags" : declared ? "teacher" : "data";
  const note = mismatch
    ? `the teacher declares mean ${fmt(declared.mean)} std ${fmt(declared.std)} (its ONNX metadata) but ` +
      `${dataset}'s statistics are mean ${fmt(data.mean)} std ${fmt(data.std)}; ` +
      (source === "flags"
        ? `using --mean ${fmt(mean)} --std ${fmt(std)} as given`
        : "using the teacher's (override with --mean/--std)")
    : undefined;
  return { mean, std, source, note };
}

/**
 * A warning when a network scores below chance on a dataset (it was probably trained on other
 * data, other classes or another normalisation), or undefined.
 *
 * @example
 * ```ts
 * import { belowChanceWarning } from "./normalisation.ts";
 * console.log(belowChanceWarning(4, 10, "teacher t.onnx", "synthetic"));
 * // warning: teacher t.onnx scores 4.00% top-1 on synthetic, below chance (10.00% for 10 classes): check that it was trained on this data with this normalisation (--mean/--std)
 * ```
 */
export function belowChanceWarning(
  top1: number,
  numClasses: number,
  what: string,
  dataset: string,
): string | undefined {
  const chance = 100 / numClasses;
  if (!(top1 < chance)) return undefined;
  return `warning: ${what} scores ${top1.toFixed(2)}% top-1 on ${dataset}, below chance (${
    chance.toFixed(2)
  }% ` +
    `for ${numClasses} classes): check that it was trained on this data with this normalisation (--mean/--std)`;
}
