/**
 * The benchmark's cases and runners, behind `deno task bench` (bench/bench.ts): images/s and peak
 * resident memory of the oracle-KD workloads, ours and PyTorch CPU's (tools/torch_bench.py: same
 * cases, same semantics) in both of its layouts, contiguous NCHW (the paper's code) and
 * channels_last (oneDNN's faster layout here). bench/bench.ts runs every case of ours in its own
 * process (so peak memory is per case) through this script's single-case mode, which prints
 * the case's JSON row:
 *
 *   deno run -A bench/engine_bench.ts --case kd_step [--engine onnxruntime|tfjs|webgpu]
 *       [--backend wasm|cpu] [--batch 64] [--threads N] [--quick]
 *
 * Cases (random CIFAR-shaped data, 100 classes, seeded weights; bench/step_workload.ts):
 *   kd_step       resnet56 teacher oracle (gamma 0.5, rec_num 1, mean) + resnet20 student SGD step
 *   oracle        oracle input generation alone (resnet56)
 *   train_step    plain CE training step of resnet20
 *   eval_resnet56 / eval_resnet20   eval-mode forward
 *   kd_step_b16 / kd_step_b256      the kd step at other batch sizes
 *   kd_step_t20 / kd_step_t110      the kd step with other teacher depths
 *   kd_step_overlap  the kd step with the teacher on its own worker thread, one batch ahead, while
 *                    the student steps: --threads N split between them (teacher ceil(N/2), student
 *                    floor(N/2); N >= 2), so it uses the same cores as kd_step (compared with it)
 *
 * A new case is one entry in {@link CASES} (with `torch` naming the PyTorch case it is compared
 * with, or null) plus, for a new `kind`, one branch in `runCase`'s step.
 * @module
 */

import { Command } from "../lib/deps.ts";
import { loadFrozenInWorker } from "../lib/engines/frozen_worker.ts";
import type { FrozenModel, OracleResult } from "../lib/engines/engine.ts";
import { createEngine, type EngineChoice } from "../lib/engines/registry.ts";
import type { TfjsBackendName } from "../lib/engines/tfjs/backend.ts";
import { WASM_THREADS_ENV } from "../lib/engines/tfjs/wasm_threads.ts";
import { initStateDict } from "../lib/models/init.ts";
import { workloadMacs } from "../lib/models/macs.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { median } from "../lib/metrics.ts";
import { peakRssMb } from "../lib/peak_memory.ts";
import { Rng } from "../lib/rng.ts";
import {
  randomBatch,
  STEP_CLASSES,
  STEP_LOSS,
  STEP_LR,
  STEP_ORACLE,
  STEP_SEEDS,
  STEP_SGD,
} from "./step_workload.ts";

/** What one case measures. */
export interface CaseSpec {
  /** Which step runs (one branch of runCase's switch). */
  kind: "kd" | "kd_overlap" | "oracle" | "train" | "eval";
  teacher?: string;
  student?: string;
  /** Fixed batch size; the main cases take `--batch`. */
  batch?: number;
  /** The tools/torch_bench.py case it is compared with (default: the same name; null: none). */
  torch?: string | null;
  /** Also measured on tfjs (its other cases take minutes). */
  main?: boolean;
}

/** Case table; keep the PyTorch side in step with cases() in tools/torch_bench.py. */
export const CASES: Readonly<Record<string, CaseSpec>> = {
  kd_step: { kind: "kd", teacher: "resnet56", student: "resnet20", main: true },
  oracle: { kind: "oracle", teacher: "resnet56", main: true },
  train_step: { kind: "train", student: "resnet20", main: true },
  eval_resnet56: { kind: "eval", teacher: "resnet56", main: true },
  eval_resnet20: { kind: "eval", teacher: "resnet20", main: true },
  kd_step_b16: { kind: "kd", teacher: "resnet56", student: "resnet20", batch: 16 },
  kd_step_b256: { kind: "kd", teacher: "resnet56", student: "resnet20", batch: 256 },
  kd_step_t20: { kind: "kd", teacher: "resnet20", student: "resnet20" },
  kd_step_t110: { kind: "kd", teacher: "resnet110", student: "resnet20" },
  kd_step_overlap: { kind: "kd_overlap", teacher: "resnet56", student: "resnet20", torch: "kd_step" },
};

/**
 * Dense-layer multiply-accumulates per image of a case (lib/models/macs.ts; CIFAR 32x32, 100
 * classes): eval a forward; oracle the teacher's x* generation (rec_num 1) and response; train
 * the student's SGD step; kd both.
 */
export function caseMacs(name: string): number {
  const spec = CASES[name];
  const net = (arch: string | undefined) => buildModel(arch!, { numClasses: STEP_CLASSES });
  const teacher = (w: "forward" | "oracle") =>
    workloadMacs(net(spec.teacher), [32, 32], w, STEP_ORACLE.recNum);
  const student = () => workloadMacs(net(spec.student), [32, 32], "train");
  switch (spec.kind) {
    case "eval":
      return teacher("forward");
    case "oracle":
      return teacher("oracle");
    case "train":
      return student();
    case "kd":
    case "kd_overlap":
      return teacher("oracle") + student();
  }
}

/** The PyTorch case a case of ours is compared with, or null. */
export function torchCase(name: string): string | null {
  const t = CASES[name]?.torch;
  return t === undefined ? name : t;
}

/** One measured case (one process). */
export interface Row {
  case: string;
  batch: number;
  iters: number;
  ms_median: number;
  ms_min: number;
  images_per_s: number;
  peak_rss_mb: number;
  error?: string;
}

/** Several rounds of one runner on one case: the median of the rounds' medians and every round. */
export interface Entry extends Row {
  /** Each round's median step time (ms), in round order. */
  rounds_ms: number[];
  /** Each round's images/s, in round order. */
  rounds_images_per_s: number[];
}

/**
 * PyTorch's two layouts, each as tools/torch_bench.py takes it (`--memory-format`), as its runner
 * is keyed in bench/bench.ts's results and JSON (`key`, `ratio`: ours against it) and as its
 * column is labelled (`PyTorch <label>`).
 *
 * @example
 * ```ts
 * import { TORCH_LAYOUTS } from "./engine_bench.ts";
 * console.log(TORCH_LAYOUTS.map((t) => `${t.layout}: ${t.key}`)); // ["contiguous: torch_nchw", "channels_last: torch_channels_last"]
 * ```
 */
export const TORCH_LAYOUTS = [
  { layout: "contiguous", key: "torch_nchw", ratio: "ratio_nchw", label: "NCHW" },
  { layout: "channels_last", key: "torch_channels_last", ratio: "ratio_channels_last", label: "ch.-last" },
] as const;
/** A PyTorch layout. */
export type TorchLayout = typeof TORCH_LAYOUTS[number]["layout"];

async function runCase(
  choice: EngineChoice,
  name: string,
  spec: CaseSpec,
  n: number,
  quick: boolean,
): Promise<Row> {
  const batch = randomBatch(n, new Rng(STEP_SEEDS.batch));
  const load = (arch: string, seed: number) => {
    const g = buildModel(arch, { numClasses: STEP_CLASSES });
    return { g, w: initStateDict(g, seed) };
  };
  const t = spec.teacher ? load(spec.teacher, STEP_SEEDS.teacher) : null;
  const s = spec.student ? load(spec.student, STEP_SEEDS.student) : null;
  const overlap = spec.kind === "kd_overlap";
  // The overlap splits the case's threads, so it is compared with kd_step on the same cores.
  const threads = choice.threads ?? 1;
  if (overlap && threads < 2) {
    throw new Error("kd_step_overlap splits --threads between teacher and student: needs at least 2");
  }
  const studentThreads = Math.floor(threads / 2);
  // The overlap's teacher has an engine on its worker; the student one with its share of threads.
  const engine = await createEngine(overlap ? { ...choice, threads: studentThreads } : choice);
  const teacher: FrozenModel | null = !t
    ? null
    : overlap
    ? await loadFrozenInWorker({ ...choice, threads: threads - studentThreads }, t.g, t.w)
    : await engine.loadFrozen(t.g, t.w);
  const student = s ? await engine.loadTrainable(s.g, s.w, STEP_SGD) : null;
  // kd_overlap: two batches of the same images take turns (one is on the teacher's worker).
  const ring = overlap ? [batch, { ...batch, x: batch.x.slice() }] : [];
  let turn = 0;
  let ahead: Promise<OracleResult> | null = null;
  const step = async () => {
    switch (spec.kind) {
      case "eval":
        await teacher!.forward(batch);
        return;
      case "oracle":
        await teacher!.oracle(batch, STEP_ORACLE);
        return;
      case "train":
        await student!.trainStep(batch, null, STEP_LOSS, STEP_LR);
        return;
      case "kd": {
        const logits = (await teacher!.oracle(batch, STEP_ORACLE)).logits;
        await student!.trainStep(batch, logits, STEP_LOSS, STEP_LR);
        return;
      }
      case "kd_overlap": {
        const cur = ring[turn++ % 2], next = ring[turn % 2];
        const logits = (await (ahead ?? teacher!.oracle(cur, STEP_ORACLE))).logits;
        ahead = teacher!.oracle(next, STEP_ORACLE); // the next batch's response, during this step
        await student!.trainStep(cur, logits, STEP_LOSS, STEP_LR);
        return;
      }
    }
  };
  for (let i = 0; i < 2; i++) await step();
  const [minSeconds, maxIters] = quick ? [1, 10] : [3, 30];
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxIters && (times.length < 5 || performance.now() - start < minSeconds * 1000)) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  const med = median(times);
  await ahead;
  teacher?.dispose();
  student?.dispose();
  return {
    case: name,
    batch: n,
    iters: times.length,
    ms_median: round(med),
    ms_min: round(Math.min(...times)),
    images_per_s: round((n / med) * 1000, 1),
    // VmHWM on Linux, the current resident size elsewhere.
    peak_rss_mb: round(peakRssMb() ?? Deno.memoryUsage().rss / 2 ** 20, 1),
  };
}

function round(v: number, digits = 2): number {
  return Number(v.toFixed(digits));
}

/** How to run one case of ours in a child process. */
export interface OursOptions {
  /** onnxruntime, tfjs or webgpu. */
  engine: string;
  /** tfjs backend. */
  backend: string;
  /** Batch size of the main cases. */
  batch: number;
  /** onnxruntime intra-op threads, tfjs-wasm's thread pool (ORACLE_KD_WASM_THREADS). */
  threads: number;
  /** About 1 s per case instead of 3. */
  quick: boolean;
}

/** Runs one case of ours in a child process (this script with `--case`) and parses its JSON row. */
export async function runOurs(name: string, o: OursOptions): Promise<Row> {
  const args = [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    "--case",
    name,
    "--engine",
    o.engine,
    "--backend",
    o.backend,
    "--batch",
    String(o.batch),
    "--threads",
    String(o.threads),
    ...(o.quick ? ["--quick"] : []),
  ];
  const cmd = new Deno.Command(Deno.execPath(), { args, env: { [WASM_THREADS_ENV]: String(o.threads) } });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success) {
    // The child's first error line, without terminal colours ("Uncaught Error: Kernel ... not ...").
    // deno-lint-ignore no-control-regex
    const plain = new TextDecoder().decode(out.stderr).replace(/\x1b\[[0-9;]*m/g, "");
    const line = plain.split("\n").find((l) => /error/i.test(l));
    throw new Error(
      line?.replace(/^error: (Uncaught )?(\w*Error: )?/i, "").trim() || `exit code ${out.code}`,
    );
  }
  return JSON.parse(text) as Row;
}

/** Debian's python3 with PyTorch (the `python3` on PATH may lack it). */
export const TORCH_PYTHON = "/usr/bin/python3";

/** Whether {@link TORCH_PYTHON} imports torch; its version, or null. */
export async function torchVersion(): Promise<string | null> {
  try {
    const out = await new Deno.Command(TORCH_PYTHON, {
      args: ["-c", "import torch; print(torch.__version__)"],
    })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** Runs one case of tools/torch_bench.py in a child process, in one memory layout. */
export async function runTorch(
  name: string,
  batch: number,
  threads: number,
  quick: boolean,
  layout: TorchLayout,
): Promise<Row> {
  const script = new URL("../tools/torch_bench.py", import.meta.url).pathname;
  const args = [script, "--case", name, "--batch", String(batch), "--threads", String(threads)];
  args.push("--memory-format", layout);
  if (quick) args.push("--quick");
  const out = await new Deno.Command(TORCH_PYTHON, { args }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).trim().split("\n").at(-1));
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!) as Row;
}

/** Median of the rounds' medians (and the best minimum), as one entry with every round's value. */
export function combine(rows: Row[]): Entry {
  const med = round(median(rows.map((r) => r.ms_median)));
  return {
    ...rows[0],
    iters: rows.reduce((a, r) => a + r.iters, 0),
    ms_median: med,
    ms_min: Math.min(...rows.map((r) => r.ms_min)),
    images_per_s: round((rows[0].batch / med) * 1000, 1),
    peak_rss_mb: Math.max(...rows.map((r) => r.peak_rss_mb)),
    rounds_ms: rows.map((r) => r.ms_median),
    rounds_images_per_s: rows.map((r) => r.images_per_s),
  };
}

/** One contender of a case: a label and how to run one round of it. */
export interface Runner {
  label: string;
  run: () => Promise<Row>;
}

/**
 * Runs every runner `rounds` times, alternating: round r runs them all, starting at runner
 * r mod count (so none always runs first, right after a cold start or another's heat). Returns
 * each runner's combined entry, or its last error message when no round succeeded.
 */
export async function alternate(
  runners: Runner[],
  rounds: number,
  onRound?: (label: string, row: Row | string) => void,
): Promise<Record<string, Entry | string>> {
  const rows = new Map<string, Row[]>(runners.map((r) => [r.label, []]));
  const errors = new Map<string, string>();
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < runners.length; k++) {
      const runner = runners[(r + k) % runners.length];
      try {
        const row = await runner.run();
        rows.get(runner.label)!.push(row);
        onRound?.(runner.label, row);
      } catch (e) {
        errors.set(runner.label, (e as Error).message);
        onRound?.(runner.label, (e as Error).message);
      }
    }
  }
  return Object.fromEntries(
    runners.map((r) => {
      const got = rows.get(r.label)!;
      return [r.label, got.length ? combine(got) : errors.get(r.label) ?? "not run"];
    }),
  );
}

/** The 1, 5 and 15 minute load averages, or "n/a". */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

/** The CPU's model name from /proc/cpuinfo, or "unknown". */
export function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1].trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** Batch size of a case when the main cases run at `batch`. */
export function caseBatch(name: string, batch: number): number {
  return CASES[name]?.batch ?? batch;
}

if (import.meta.main) await main();

/** The single-case mode: runs `--case` in this process and prints its JSON row. */
async function main() {
  const program = new Command()
    .name("engine_bench")
    .description("runs one benchmark case and prints its JSON row (deno task bench runs every case this way)")
    .requiredOption("--case <name>", `the case (${Object.keys(CASES).join(", ")})`)
    .option("--engine <name>", "onnxruntime, tfjs or webgpu (a GPU through Deno's WebGPU)", "onnxruntime")
    .option("--backend <name>", "tfjs backend (wasm, cpu, tensorflow)", "wasm")
    .option("--batch <n>", "batch size of the main cases", "64")
    .option(
      "--threads <n>",
      "onnxruntime's intra-op threads, tfjs-wasm's pool",
      String(navigator.hardwareConcurrency || 1),
    )
    .option("--quick", "about 1 s instead of 3");
  program.parse(["deno", "engine_bench", ...Deno.args]);
  const o = program.opts<
    { case: string; engine: string; backend: string; batch: string; threads: string; quick?: boolean }
  >();
  const spec = CASES[o.case];
  if (!spec) throw new Error(`unknown case ${o.case}; cases: ${Object.keys(CASES).join(", ")}`);
  const choice: EngineChoice = {
    engine: o.engine as EngineChoice["engine"],
    backend: o.backend as TfjsBackendName,
    threads: Number(o.threads),
  };
  const row = await runCase(choice, o.case, spec, caseBatch(o.case, Number(o.batch)), !!o.quick);
  console.log(JSON.stringify(row));
}
