/**
 * `deno task bench`: images/s and peak resident memory of every case (oracle-KD step, oracle
 * generation, plain training step, eval forwards, batch-size and teacher-depth scaling) per
 * engine, and, where Debian's python3-torch is installed, the project's PyTorch reference
 * (tools/torch_bench.py, same semantics, same batch, same threads) in the same invocation with
 * the ratio per case. Writes the JSON to `.bench/bench_<time>.json`. A script that reports; it
 * asserts nothing.
 *
 *   deno task bench [--engines onnxruntime,tfjs-wasm,webgpu] [--rounds 2] [--quick] [--no-torch]
 *       [--cases kd_step,train_step]
 *
 * tfjs runs only the five main cases (its batch-256 and resnet110 steps take minutes). `webgpu`
 * measures the GPU Deno's WebGPU sees; where only a software adapter exists it reports an error
 * row unless ORACLE_KD_WEBGPU_ALLOW_SOFTWARE=1 (correctness runs; its timings mean nothing).
 * @module
 */

import * as path from "node:path";
import { Command } from "../lib/deps.ts";

interface Row {
  case: string;
  batch: number;
  ms_median: number;
  images_per_s: number;
  peak_rss_mb: number;
}
interface Result {
  name: string;
  ours: Row | string;
  torch?: Row | string;
}

const MAIN_CASES = ["kd_step", "oracle", "train_step", "eval_resnet56", "eval_resnet20"];

const program = new Command()
  .name("bench")
  .option("--engines <list>", "engines to measure", "onnxruntime,tfjs-wasm")
  .option("--rounds <n>", "alternations per case (medians of the rounds are compared)", "2")
  .option("--quick", "about 1 s per case")
  .option("--no-torch", "skip the PyTorch reference")
  .option("--cases <list>", "comma-separated subset of the cases (default: all; tfjs: the main ones)");
program.parse(["deno", "bench", ...Deno.args]);
const o = program.opts<
  { engines: string; rounds: string; quick?: boolean; torch: boolean; cases?: string }
>();

const hasTorch = o.torch && (await new Deno.Command("/usr/bin/python3", { args: ["-c", "import torch"] })
  .output().then((r) => r.success).catch(() => false));
if (o.torch && !hasTorch) console.log("PyTorch not found (apt-get install python3-torch): no ratios\n");

const script = new URL("./engine_bench.ts", import.meta.url).pathname;
const all: Record<string, Result[]> = {};
let torchRows: Record<string, Row | string> = {};
for (const label of o.engines.split(",").map((s) => s.trim()).filter(Boolean)) {
  const [engine, backend = "wasm"] = label === "onnxruntime" ? ["onnxruntime"] : label.split("-");
  const args = [
    "run",
    "-A",
    script,
    "--engine",
    engine,
    "--backend",
    backend,
    "--rounds",
    o.rounds,
    "--json",
  ];
  if (o.quick) args.push("--quick");
  if (o.cases) args.push("--cases", o.cases);
  else if (engine === "tfjs") args.push("--cases", MAIN_CASES.join(","));
  const compare = hasTorch && Object.keys(torchRows).length === 0;
  if (compare) args.push("--compare-torch");
  console.log(`measuring ${label}${compare ? " and PyTorch" : ""} ...`);
  const out = await new Deno.Command(Deno.execPath(), { args, stderr: "inherit" }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "{}";
  const parsed = JSON.parse(text) as { results: Result[] };
  all[label] = parsed.results;
  if (compare) torchRows = Object.fromEntries(parsed.results.map((r) => [r.name, r.torch ?? "not run"]));
}

// PyTorch's faster layout on this CPU: channels_last (oneDNN). The paper's code runs contiguous
// NCHW, which the alternating rounds above measure; report both, never only the slower one.
let torchChannelsLast: Record<string, Row | string> = {};
if (hasTorch) {
  console.log("measuring PyTorch with channels_last ...");
  const args = [
    new URL("../tools/torch_bench.py", import.meta.url).pathname,
    "--memory-format",
    "channels_last",
  ];
  if (o.quick) args.push("--quick");
  const out = await new Deno.Command("/usr/bin/python3", { args, stderr: "inherit" }).output();
  const rows =
    (JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "{}") as { cases?: Row[] })
      .cases ?? [];
  torchChannelsLast = Object.fromEntries(rows.map((r) => [r.case, r]));
}

const cell = (v: Row | string | undefined) =>
  v === undefined
    ? "".padEnd(22)
    : typeof v === "string"
    ? "error".padEnd(22)
    : `${v.images_per_s.toFixed(1).padStart(8)} img/s ${v.peak_rss_mb.toFixed(0).padStart(5)} MB`;
const labels = Object.keys(all);
console.log(
  `\n${"case".padEnd(14)} ${"batch".padStart(5)}  ${labels.map((l) => l.padEnd(22)).join(" ")} ${
    hasTorch
      ? "PyTorch NCHW".padEnd(22) + " " + "PyTorch chan.-last".padEnd(22) + " " +
        labels.map((l) => `ratio ${l} (NCHW / ch.-last)`).join("  ")
      : ""
  }`,
);
const names = [...new Set(Object.values(all).flatMap((rs) => rs.map((r) => r.name)))];
for (const name of names) {
  const rows = labels.map((l) => all[l].find((r) => r.name === name)?.ours);
  const t = torchRows[name];
  const batch = rows.find((r) => r && typeof r !== "string") as Row | undefined;
  const cl = torchChannelsLast[name];
  const ratio = (r: Row | string | undefined, ref: Row | string | undefined) =>
    r && typeof r !== "string" && ref && typeof ref !== "string"
      ? (ref.ms_median / r.ms_median).toFixed(2)
      : "-";
  const ratios = labels.map((l, i) => `${ratio(rows[i], t)} / ${ratio(rows[i], cl)}`.padStart(l.length + 23));
  console.log(
    `${name.padEnd(14)} ${String(batch?.batch ?? "").padStart(5)}  ${rows.map(cell).join(" ")} ${
      hasTorch ? cell(t) + " " + cell(cl) + " " + ratios.join("  ") : ""
    }`,
  );
}
const file = path.join(".bench", `bench_${new Date().toISOString().replace(/[-:]/g, "").slice(0, 15)}.json`);
await Deno.mkdir(".bench", { recursive: true });
await Deno.writeTextFile(
  file,
  JSON.stringify(
    { date: new Date().toISOString(), cpus: navigator.hardwareConcurrency, engines: all, torch: torchRows },
    null,
    2,
  ),
);
console.log(`\nratio = PyTorch time / our time (higher is faster); JSON: ${file}`);
