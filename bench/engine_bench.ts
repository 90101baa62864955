/**
 * Engine benchmark: images/s and peak resident memory of the oracle-KD workloads, optionally side
 * by side with PyTorch CPU (tools/torch_bench.py: same cases, same semantics).
 *
 *   deno run -A bench/engine_bench.ts [--engine onnxruntime|tfjs|webgpu] [--backend wasm|cpu]
 *       [--batch 64] [--threads N] [--quick] [--compare-torch] [--rounds 2] [--json]
 *
 * Cases (random CIFAR-shaped data, 100 classes, seeded weights):
 *   kd_step       resnet56 teacher oracle (gamma 0.5, rec_num 1, mean) + resnet20 student SGD step
 *   oracle        oracle input generation alone (resnet56)
 *   train_step    plain CE training step of resnet20
 *   eval_resnet56 / eval_resnet20   eval-mode forward
 *   kd_step_b16 / kd_step_b256      the kd step at other batch sizes
 *   kd_step_t20 / kd_step_t110      the kd step with other teacher depths
 *   kd_step_overlap  the kd step with the teacher on its own worker thread (--threads N), one batch
 *                    ahead, while the student steps on max(1, N/2) threads (onnxruntime and tfjs)
 * Every case runs in its own process (so peak memory is per case); with --compare-torch the two
 * engines alternate per case `--rounds` times on this machine and the medians of the rounds are
 * compared. The machine's load is printed: on a shared machine, rerun when it is busy.
 * @module
 */

import { Command } from "../lib/deps.ts";
import { loadFrozenInWorker } from "../lib/engines/frozen_worker.ts";
import type { FrozenModel, OracleResult } from "../lib/engines/engine.ts";
import { createEngine, type EngineChoice } from "../lib/engines/registry.ts";
import type { TfjsBackendName } from "../lib/engines/tfjs/backend.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { Rng } from "../lib/rng.ts";

interface CaseSpec {
  kind: "kd" | "kd_overlap" | "oracle" | "train" | "eval";
  teacher?: string;
  student?: string;
  batch: number;
}

/** Case table; keep in step with cases() in tools/torch_bench.py. */
function cases(batch: number): Record<string, CaseSpec> {
  return {
    kd_step: { kind: "kd", teacher: "resnet56", student: "resnet20", batch },
    oracle: { kind: "oracle", teacher: "resnet56", batch },
    train_step: { kind: "train", student: "resnet20", batch },
    eval_resnet56: { kind: "eval", teacher: "resnet56", batch },
    eval_resnet20: { kind: "eval", teacher: "resnet20", batch },
    kd_step_b16: { kind: "kd", teacher: "resnet56", student: "resnet20", batch: 16 },
    kd_step_b256: { kind: "kd", teacher: "resnet56", student: "resnet20", batch: 256 },
    kd_step_t20: { kind: "kd", teacher: "resnet20", student: "resnet20", batch },
    kd_step_t110: { kind: "kd", teacher: "resnet110", student: "resnet20", batch },
    kd_step_overlap: { kind: "kd_overlap", teacher: "resnet56", student: "resnet20", batch },
  };
}

/** One measured case. */
interface Row {
  case: string;
  batch: number;
  iters: number;
  ms_median: number;
  ms_min: number;
  images_per_s: number;
  peak_rss_mb: number;
  error?: string;
}

const ORACLE = { gamma: 0.5, recNum: 1, reduction: "mean" } as const;
const LOSS = { ceWeight: 0.5, alpha: 1, temperature: 2 };
const SGD = { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 };
const LR = 0.05;

async function runCase(choice: EngineChoice, name: string, spec: CaseSpec, quick: boolean): Promise<Row> {
  const engine = await createEngine(choice);
  const n = spec.batch;
  const rng = new Rng(0);
  const x = new Float32Array(n * 3 * 32 * 32);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.min(99, Math.floor(rng.uniform() * 100));
  const batch = { x, y, n, shape: [3, 32, 32] as const };
  const load = (arch: string, seed: number) => {
    const g = buildModel(arch, { numClasses: 100 });
    return { g, w: initStateDict(g, seed) };
  };
  const t = spec.teacher ? load(spec.teacher, 1) : null;
  const s = spec.student ? load(spec.student, 2) : null;
  const overlap = spec.kind === "kd_overlap";
  const studentThreads = Math.max(1, Math.floor((choice.threads ?? 1) / 2));
  const teacher: FrozenModel | null = !t
    ? null
    : overlap
    ? await loadFrozenInWorker(choice, t.g, t.w)
    : await engine.loadFrozen(t.g, t.w);
  const studentEngine = overlap ? await createEngine({ ...choice, threads: studentThreads }) : engine;
  const student = s ? await studentEngine.loadTrainable(s.g, s.w, SGD) : null;
  // kd_overlap: two batches of the same images take turns (one is on the teacher's worker).
  const ring = [batch, { ...batch, x: batch.x.slice() }];
  let turn = 0;
  let ahead: Promise<OracleResult> | null = null;
  const step = async () => {
    switch (spec.kind) {
      case "eval":
        await teacher!.forward(batch);
        return;
      case "oracle":
        await teacher!.oracle(batch, ORACLE);
        return;
      case "train":
        await student!.trainStep(batch, null, LOSS, LR);
        return;
      case "kd": {
        const logits = (await teacher!.oracle(batch, ORACLE)).logits;
        await student!.trainStep(batch, logits, LOSS, LR);
        return;
      }
      case "kd_overlap": {
        const cur = ring[turn++ % 2], next = ring[turn % 2];
        const logits = (await (ahead ?? teacher!.oracle(cur, ORACLE))).logits;
        ahead = teacher!.oracle(next, ORACLE); // the next batch's response, during this step
        await student!.trainStep(cur, logits, LOSS, LR);
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
  times.sort((a, b) => a - b);
  const med = times[times.length >> 1];
  await ahead;
  teacher?.dispose();
  student?.dispose();
  return {
    case: name,
    batch: n,
    iters: times.length,
    ms_median: round(med),
    ms_min: round(times[0]),
    images_per_s: round((n / med) * 1000, 1),
    peak_rss_mb: round(peakRssMb(), 1),
  };
}

/** Peak resident set size of this process (VmHWM on Linux, current RSS elsewhere). */
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return Deno.memoryUsage().rss / 2 ** 20;
}

function round(v: number, digits = 2): number {
  return Number(v.toFixed(digits));
}

/** Runs one case of this script in a child process and parses its JSON row. */
async function child(args: string[]): Promise<Row> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, ...args],
  });
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

/** Runs one case of tools/torch_bench.py in a child process. */
async function torchChild(name: string, batch: number, threads: number, quick: boolean): Promise<Row> {
  const script = new URL("../tools/torch_bench.py", import.meta.url).pathname;
  const args = [script, "--case", name, "--batch", String(batch), "--threads", String(threads)];
  const out = await new Deno.Command("/usr/bin/python3", { args: quick ? [...args, "--quick"] : args })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).trim().split("\n").at(-1));
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!) as Row;
}

/** Median of the rounds' medians (and the best minimum), as one row. */
function combine(rows: Row[]): Row {
  const meds = rows.map((r) => r.ms_median).sort((a, b) => a - b);
  const med = meds[meds.length >> 1];
  return {
    ...rows[0],
    iters: rows.reduce((a, r) => a + r.iters, 0),
    ms_median: med,
    ms_min: Math.min(...rows.map((r) => r.ms_min)),
    images_per_s: round((rows[0].batch / med) * 1000, 1),
    peak_rss_mb: Math.max(...rows.map((r) => r.peak_rss_mb)),
  };
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

const program = new Command()
  .name("engine_bench")
  .option("--engine <name>", "onnxruntime, tfjs or webgpu (a GPU through Deno's WebGPU)", "onnxruntime")
  .option("--backend <name>", "tfjs backend (wasm, cpu, tensorflow)", "wasm")
  .option("--batch <n>", "batch size of the main cases", "64")
  .option("--threads <n>", "threads for onnxruntime and PyTorch", String(navigator.hardwareConcurrency || 1))
  .option("--case <name>", "run one case in this process and print its JSON row")
  .option("--cases <list>", "comma-separated subset of the cases (default: all)")
  .option("--quick", "about 1 s per case instead of 3")
  .option("--compare-torch", "also run tools/torch_bench.py per case and print ratios")
  .option("--rounds <n>", "alternations per case with --compare-torch", "2")
  .option("--json", "print the table as JSON only");
program.parse(["deno", "engine_bench", ...Deno.args]);
const o = program.opts<{
  engine: string;
  backend: string;
  batch: string;
  threads: string;
  case?: string;
  cases?: string;
  quick?: boolean;
  compareTorch?: boolean;
  rounds: string;
  json?: boolean;
}>();
const batch = Number(o.batch);
const threads = Number(o.threads);
const choice: EngineChoice = {
  engine: o.engine as EngineChoice["engine"],
  backend: o.backend as TfjsBackendName,
  threads,
};
const table = cases(batch);

if (o.case) {
  const spec = table[o.case];
  if (!spec) throw new Error(`unknown case ${o.case}; cases: ${Object.keys(table).join(", ")}`);
  console.log(JSON.stringify(await runCase(choice, o.case, spec, !!o.quick)));
} else {
  const engineLabel = o.engine === "tfjs" ? `tfjs-${o.backend}` : o.engine;
  const childArgs = (name: string) => [
    "--case",
    name,
    "--engine",
    o.engine,
    "--backend",
    o.backend,
    "--batch",
    String(batch),
    "--threads",
    String(threads),
    ...(o.quick ? ["--quick"] : []),
  ];
  const rounds = o.compareTorch ? Math.max(1, Number(o.rounds)) : 1;
  const loadBefore = loadAverage();
  const results: { name: string; ours: Row | string; torch?: Row | string }[] = [];
  const selected = o.cases ? o.cases.split(",").map((c) => c.trim()).filter(Boolean) : Object.keys(table);
  for (const name of selected) {
    if (!table[name]) throw new Error(`unknown case ${name}; cases: ${Object.keys(table).join(", ")}`);
    const ours: Row[] = [], theirs: Row[] = [];
    let oursErr = "", torchErr = "";
    for (let r = 0; r < rounds; r++) {
      try {
        ours.push(await child(childArgs(name)));
      } catch (e) {
        oursErr = (e as Error).message;
      }
      if (!o.compareTorch) continue;
      try {
        theirs.push(await torchChild(name, batch, threads, !!o.quick));
      } catch (e) {
        torchErr = (e as Error).message;
      }
    }
    results.push({
      name,
      ours: ours.length ? combine(ours) : oursErr,
      torch: o.compareTorch ? (theirs.length ? combine(theirs) : torchErr) : undefined,
    });
    if (!o.json) printRow(results.at(-1)!, engineLabel, results.length === 1);
  }
  if (o.json) {
    console.log(JSON.stringify({ engine: engineLabel, threads, load: [loadBefore, loadAverage()], results }));
  } else {
    console.log(`\nload average before / after: ${loadBefore} / ${loadAverage()}; threads ${threads}`);
  }
}

function printRow(
  r: { name: string; ours: Row | string; torch?: Row | string },
  label: string,
  header: boolean,
) {
  const cell = (v: Row | string | undefined) =>
    v === undefined
      ? ""
      : typeof v === "string"
      ? `error: ${v.slice(0, 60)}`.padEnd(34)
      : `${v.images_per_s.toFixed(1).padStart(8)} img/s ${v.ms_median.toFixed(1).padStart(8)} ms ${
        v.peak_rss_mb.toFixed(0).padStart(5)
      } MB`;
  if (header) {
    const t = r.torch === undefined ? "" : `${"PyTorch".padEnd(34)} ratio`;
    console.log(`${"case".padEnd(14)} batch  ${label.padEnd(34)} ${t}`);
  }
  const ours = r.ours, torch = r.torch;
  const ratio = typeof ours !== "string" && torch && typeof torch !== "string"
    ? (torch.ms_median / ours.ms_median).toFixed(2)
    : "";
  const b = typeof ours === "string" ? "" : String(ours.batch);
  console.log(`${r.name.padEnd(14)} ${b.padStart(5)}  ${cell(ours)} ${cell(torch)} ${ratio}`);
}
