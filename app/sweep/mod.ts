/**
 * Experiment sweeps: a YAML/JSON spec crossed into ordinary distill/train runs, run locally
 * (`--jobs N`) or as a Slurm job array, with status from the run folders and a paper-style
 * report with seed statistics.
 *
 * @example
 * ```ts
 * import { parseSweepSpec, planSweep } from "./mod.ts";
 * const plan = planSweep(parseSweepSpec({
 *   settings: { data: "synthetic" },
 *   pairs: [{ teacher: "t.onnx", student: "resnet8" }],
 *   axes: { seed: [0, 1, 2] },
 * }, "s.yaml"), "/tmp/s");
 * console.log(plan.cells.length); // 6
 * ```
 * @module
 */

export * from "./spec.ts";
export * from "./plan.ts";
export * from "./state.ts";
export * from "./runner.ts";
export * from "./local.ts";
export * from "./slurm.ts";
export {
  type PairedDifference,
  pairedDifference,
  sampleStd,
  studentTCdf,
  studentTQuantile,
} from "./stats.ts";
export * from "./report.ts";
export * from "./figure.ts";
export { runSweepCli, type SweepCliIO } from "./cli.ts";
