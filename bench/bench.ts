/**
 * `deno task bench`: images/s and peak resident memory of every case (oracle-KD step, oracle
 * generation, plain training step, eval forwards, batch-size and teacher-depth scaling) per
 * engine and per thread count, and, where Debian's python3-torch is installed, the project's
 * PyTorch reference (tools/torch_bench.py, same semantics, same batch, same threads) in both of
 * its layouts: contiguous NCHW (the paper's code) and channels_last (oneDNN's faster layout on
 * this CPU). Per case and thread count, every engine and both PyTorch layouts alternate round by
 * round (`--rounds` times, the order rotating each round), each run in its own process (so peak
 * memory is per case), and the medians of the rounds are compared. Writes everything, every
 * round included, to `.bench/bench_<time>.json`. A second table gives each runner's dense-layer
 * rate (GMAC/s: lib/models/macs.ts's multiply-accumulates per image times images/s) as a share of
 * one yardstick, the first engine's resnet56 eval forward, and each case's ceiling at that rate.
 * A script that reports; it asserts nothing.
 *
 *   deno task bench [--engines onnxruntime,tfjs-wasm,webgpu] [--threads 1,2] [--rounds 3] [--quick]
 *       [--no-torch] [--cases kd_step,train_step] [--batch 64]
 *
 * tfjs runs only the five main cases unless `--cases` names others (its batch-256 and resnet110
 * steps take minutes). `webgpu` measures the GPU Deno's WebGPU sees; where only a software
 * adapter exists it reports an error row unless ORACLE_KD_WEBGPU_ALLOW_SOFTWARE=1 (correctness
 * runs; its timings mean nothing).
 * @module
 */

import * as path from "node:path";
import { scriptSettings } from "../lib/cli_args.ts";
import { bool, int, ints, text } from "../lib/config_spec.ts";
import {
  alternate,
  caseBatch,
  caseMacs,
  CASES,
  cpuModel,
  type Entry,
  loadAverage,
  type Runner,
  runOurs,
  runTorch,
  TORCH_LAYOUTS,
  torchCase,
  torchVersion,
} from "./engine_bench.ts";

/** 1, 2, 4, ... up to the machine's core count, and the core count itself. */
function defaultThreads(): number[] {
  const cores = Math.max(1, navigator.hardwareConcurrency || 1);
  const out: number[] = [];
  for (let t = 1; t < cores; t *= 2) out.push(t);
  out.push(cores);
  return out;
}

const FIELDS = {
  engines: text(
    "engine",
    "engines to measure (onnxruntime, tfjs-wasm, tfjs-cpu, webgpu)",
    "onnxruntime,tfjs-wasm",
  ),
  threads: ints("engine", "thread counts, each measured for every engine and PyTorch", defaultThreads(), {
    min: 1,
    defaultText: `1, 2, 4, ... and all cores (here: ${defaultThreads().join(",")})`,
  }),
  cases: text("run", `comma-separated subset of the cases (${Object.keys(CASES).join(", ")})`, "", {
    defaultText: "all; tfjs: the main ones",
  }),
  rounds: int("run", "alternations per case and thread count (medians of the rounds are compared)", 3, {
    min: 1,
  }),
  quick: bool("run", "about 1 s per case and runner instead of 3", false),
  torch: bool("run", "the PyTorch reference in both layouts (Debian's python3-torch)", true),
  batch: int("run", "batch size of the main cases", 64, { min: 1 }),
};
const SPEC = {
  summary: "images/s and peak memory per case, engine and thread count, side by side with PyTorch",
  example: "deno task bench --engines onnxruntime --threads 1,2 --cases kd_step,train_step",
  fields: FIELDS,
};

const o = await scriptSettings("bench", SPEC);

const MAIN_CASES = Object.keys(CASES).filter((c) => CASES[c].main);
const labels = o.engines.split(",").map((s) => s.trim()).filter(Boolean);
const selected = o.cases ? o.cases.split(",").map((c) => c.trim()).filter(Boolean) : Object.keys(CASES);
for (const c of selected) {
  if (!CASES[c]) {
    console.error(`bench: unknown case ${c}; cases: ${Object.keys(CASES).join(", ")}`);
    Deno.exit(2);
  }
}
const engineOf = (label: string) => {
  const [engine, backend = "wasm"] = label === "onnxruntime" ? ["onnxruntime"] : label.split("-");
  return { engine, backend };
};
/** tfjs measures the main cases only, unless --cases names others. */
const runsCase = (label: string, name: string) =>
  engineOf(label).engine !== "tfjs" || o.cases !== "" || MAIN_CASES.includes(name);

const torchVer = o.torch ? await torchVersion() : null;
if (o.torch && !torchVer) console.log("PyTorch not found (apt-get install python3-torch): no ratios\n");
/** The PyTorch runners' keys: torch_nchw, torch_channels_last. */
const TORCH_KEYS = TORCH_LAYOUTS.map((t) => t.key);

/** What one case measured at one thread count. */
interface CaseResult {
  batch: number;
  /** The PyTorch case it is compared with (kd_step for a variant of ours without its own). */
  torch_case: string | null;
  /** By runner: an engine label, torch_nchw or torch_channels_last. */
  runs: Record<string, Entry | string>;
}
const results: Record<string, Record<string, CaseResult>> = {};
const loadBefore = loadAverage();
const started = new Date();
console.log(
  `bench: ${labels.join(", ")}${torchVer ? ` and PyTorch ${torchVer} (NCHW, channels_last)` : ""}; threads ${
    o.threads.join(",")
  }; ${o.rounds} round(s); cases ${
    selected.join(", ")
  }; ${cpuModel()}, ${navigator.hardwareConcurrency} cores; ` +
    `load ${loadBefore}`,
);
// Cases compared with the same PyTorch case (kd_step and a variant of ours such as
// kd_step_overlap) are measured in one alternation, so they share PyTorch's rows.
const groups = new Map<string, string[]>();
for (const name of selected) {
  const key = torchCase(name) ?? name;
  groups.set(key, [...(groups.get(key) ?? []), name]);
}
for (const names of groups.values()) {
  const batch = caseBatch(names[0], o.batch);
  const ref = torchVer ? torchCase(names[0]) : null;
  for (const threads of o.threads) {
    const runners: Runner[] = names.flatMap((name) =>
      labels.filter((l) => runsCase(l, name)).map((label) => ({
        label: `${name} ${label}`,
        run: () => runOurs(name, { ...engineOf(label), batch: o.batch, threads, quick: o.quick }),
      }))
    );
    if (ref) {
      for (const t of TORCH_LAYOUTS) {
        runners.push({
          label: `${ref} ${t.key}`,
          run: () => runTorch(ref, batch, threads, o.quick, t.layout),
        });
      }
    }
    const runs = await alternate(runners, o.rounds, (label, row) =>
      console.error(
        `  ${label} threads ${threads}: ${
          typeof row === "string" ? `error: ${row}` : `${row.images_per_s} img/s, ${row.peak_rss_mb} MB`
        }`,
      ));
    for (const name of names) {
      const mine = (label: string) => runs[`${name} ${label}`];
      (results[threads] ??= {})[name] = {
        batch,
        torch_case: ref,
        runs: Object.fromEntries([
          ...labels.filter((l) => mine(l) !== undefined).map((l) => [l, mine(l)]),
          ...TORCH_KEYS.filter(() => ref).map((k) => [k, runs[`${ref} ${k}`]]),
        ]),
      };
    }
  }
}

const isRow = (v: Entry | string | undefined): v is Entry => v !== undefined && typeof v !== "string";
/** PyTorch time / ours (higher: ours faster), or null. */
const ratio = (ours: Entry | string | undefined, ref: Entry | string | undefined) =>
  isRow(ours) && isRow(ref) ? Number((ref.ms_median / ours.ms_median).toFixed(2)) : null;

const cell = (v: Entry | string | undefined) =>
  v === undefined
    ? "".padEnd(21)
    : typeof v === "string"
    ? "error".padEnd(21)
    : `${v.images_per_s.toFixed(1).padStart(7)} img/s ${v.peak_rss_mb.toFixed(0).padStart(5)} MB`;
const columns = [...labels, ...(torchVer ? TORCH_LAYOUTS.map((t) => `PyTorch ${t.label}`) : [])];
const versus = TORCH_LAYOUTS.map((t) => t.label).join(" / ");
for (const threads of o.threads) {
  console.log(`\nthreads ${threads}`);
  console.log(
    `${"case".padEnd(14)} ${"batch".padStart(5)}  ${columns.map((l) => l.padEnd(21)).join(" ")}` +
      (torchVer ? "  " + labels.map((l) => `${l} vs ${versus}`).join("  ") : ""),
  );
  for (const name of selected) {
    const r = results[threads][name];
    const cells = [
      ...labels.map((l) => r.runs[l]),
      ...(torchVer ? TORCH_KEYS.map((k) => r.runs[k]) : []),
    ];
    const ratios = labels.map((l) => {
      const f = (v: number | null) => (v === null ? "-" : v.toFixed(2));
      return TORCH_KEYS.map((k) => f(ratio(r.runs[l], r.runs[k]))).join(" / ").padStart(l.length + 20);
    });
    console.log(
      `${name.padEnd(14)} ${String(r.batch).padStart(5)}  ${cells.map(cell).join(" ")}` +
        (torchVer ? "  " + ratios.join("  ") : ""),
    );
  }
}

// Dense-layer arithmetic rate of every runner, against one yardstick: the first engine's resnet56
// eval forward (its convolutions with BatchNorm folded in, nothing else to do), the rate its
// kernels reach. A case run at the yardstick would take `ceiling` images/s.
// Computed once per case: each builds the case's networks.
const macs: Record<string, number> = Object.fromEntries(selected.map((name) => [name, caseMacs(name)]));
const gmacPerS = (v: Entry | string | undefined, name: string) =>
  isRow(v) ? Number((v.images_per_s * macs[name] / 1e9).toFixed(1)) : null;
const runnerKeys = [...labels, ...(torchVer ? TORCH_KEYS : [])];
const yardsticks: Record<string, number | null> = {};
for (const threads of o.threads) {
  const base = results[threads].eval_resnet56;
  const yard = yardsticks[threads] = base ? gmacPerS(base.runs[labels[0]], "eval_resnet56") : null;
  console.log(
    `\nthreads ${threads}: dense-layer GMAC/s` +
      (yard
        ? ` (share of ${labels[0]}'s eval_resnet56 rate, ${yard} GMAC/s; ceiling: a case at that rate)`
        : ""),
  );
  console.log(
    `${"case".padEnd(14)} ${"GMAC/img".padStart(8)} ${"ceiling".padStart(11)}  ` +
      columns.map((l) => l.padEnd(16)).join(" "),
  );
  for (const name of selected) {
    const r = results[threads][name];
    const cells = runnerKeys.map((key) => {
      const rate = gmacPerS(r.runs[key], name);
      if (rate === null) return "".padEnd(16);
      return `${rate.toFixed(1).padStart(6)}${
        yard ? ` (${(100 * rate / yard).toFixed(0).padStart(3)} %)` : ""
      }`
        .padEnd(16);
    });
    const ceiling = yard ? `${(yard * 1e9 / macs[name]).toFixed(1).padStart(7)} img/s` : "".padStart(11);
    console.log(
      `${name.padEnd(14)} ${(macs[name] / 1e9).toFixed(3).padStart(8)} ${ceiling}  ${cells.join(" ")}`,
    );
  }
}

// JSON: per engine, per thread count, per case: ours, torch_nchw, torch_channels_last (medians and
// every round), and the two ratios.
const engines: Record<string, Record<string, Record<string, unknown>>> = {};
for (const label of labels) {
  for (const threads of o.threads) {
    for (const name of selected) {
      const r = results[threads][name];
      if (!(label in r.runs)) continue;
      ((engines[label] ??= {})[threads] ??= {})[name] = {
        batch: r.batch,
        torch_case: r.torch_case,
        gmac_per_image: macs[name] / 1e9,
        gmac_per_s: {
          ours: gmacPerS(r.runs[label], name),
          ...Object.fromEntries(TORCH_KEYS.map((k) => [k, gmacPerS(r.runs[k], name)])),
        },
        ours: r.runs[label],
        ...Object.fromEntries(TORCH_KEYS.map((k) => [k, r.runs[k] ?? null])),
        ...Object.fromEntries(TORCH_LAYOUTS.map((t) => [t.ratio, ratio(r.runs[label], r.runs[t.key])])),
      };
    }
  }
}
const file = path.join(".bench", `bench_${started.toISOString().replace(/[-:]/g, "").slice(0, 15)}.json`);
await Deno.mkdir(".bench", { recursive: true });
await Deno.writeTextFile(
  file,
  JSON.stringify(
    {
      date: started.toISOString(),
      finished: new Date().toISOString(),
      cpu_model: cpuModel(),
      cpus: navigator.hardwareConcurrency,
      deno: Deno.version.deno,
      torch: torchVer,
      load_before: loadBefore,
      load_after: loadAverage(),
      batch: o.batch,
      rounds: o.rounds,
      quick: o.quick,
      threads: o.threads,
      cases: selected,
      // By thread count: the first engine's eval_resnet56 GMAC/s (null when not measured).
      yardstick_gmac_per_s: yardsticks,
      engines,
    },
    null,
    2,
  ) + "\n",
);
console.log(
  `\nratio = PyTorch time / our time (higher is faster); load average before / after: ${loadBefore} / ${loadAverage()}` +
    `\nJSON: ${file}`,
);
