/**
 * Reports tfjs engine throughput: a plain resnet20 training step (batch 64, 100 classes,
 * 32x32x3, SGD momentum 0.9, weight decay 5e-4, CE only), resnet56 eval forward and input
 * gradient (the oracle's teacher pass; batch 64), and
 * per-kernel times of Conv2DBackpropFilter, Conv2DBackpropInput and BatchMatMul at the shapes
 * those networks use (on wasm also the stock kernels they replace, where one exists).
 * It measures and prints; it asserts nothing.
 *
 *   deno run -A bench/tfjs_step_bench.ts [--backend wasm|cpu] [--steps 5 (cpu: 1)] [--batch 64]
 *                                        [--profile] [--skip-models] [--skip-kernels]
 *
 * `--profile` adds a per-kernel breakdown of one training step (tf.profile). On wasm the
 * XNNPACK thread count follows ORACLE_KD_WASM_THREADS (default: logical cores).
 *
 * @example
 * ```ts
 * // deno run -A bench/tfjs_step_bench.ts --backend wasm --steps 3
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { TfjsEngine } from "../lib/engines/tfjs/engine.ts";
import type { TfjsBackendName } from "../lib/engines/tfjs/backend.ts";
import { stockWasmKernel } from "../lib/engines/tfjs/wasm_kernels.ts";
import { wasmThreadsStatus } from "../lib/engines/tfjs/wasm_threads.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { initStateDict } from "../lib/models/init.ts";
import { median } from "../lib/metrics.ts";
import { Rng } from "../lib/rng.ts";
import { randomBatch, STEP_CLASSES, STEP_SGD } from "./step_workload.ts";
import type { Tf, TfKernelConfig, TfTensor, TfTensorInfo } from "../lib/deps.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    backend: { type: "string", default: "wasm" },
    steps: { type: "string" },
    batch: { type: "string", default: "64" },
    profile: { type: "boolean", default: false },
    "skip-models": { type: "boolean", default: false },
    "skip-kernels": { type: "boolean", default: false },
  },
});
const backendName = args.backend as TfjsBackendName;
if (backendName !== "wasm" && backendName !== "cpu") {
  console.error(`--backend must be wasm or cpu, got "${args.backend}"`);
  Deno.exit(2);
}
// The cpu backend needs minutes per resnet20 step at batch 64: one timed run by default.
const steps = Math.max(1, Number(args.steps ?? (backendName === "cpu" ? 1 : 5)));
const batch = Math.max(1, Number(args.batch));

const engine = await TfjsEngine.create(backendName);
const tf = engine.tf;
const rng = new Rng(7);
const threads = backendName === "wasm" ? wasmThreadsStatus() : null;
console.log(
  `backend ${backendName}` +
    (threads
      ? `, XNNPACK threads ${threads.threads}${
        threads.error ? ` (threaded build failed: ${threads.error})` : ""
      }`
      : "") +
    `, ${navigator.hardwareConcurrency} logical cores, deno ${Deno.version.deno}`,
);

async function benchModels(): Promise<void> {
  const ce = { ceWeight: 1, alpha: 0, temperature: 1 };
  const g20 = buildModel("resnet20", { numClasses: STEP_CLASSES });
  const student = await engine.loadTrainable(g20, initStateDict(g20, 0), STEP_SGD);
  const b = randomBatch(batch, rng);
  const warm = backendName === "cpu" ? 0 : 2;
  for (let i = 0; i < warm; i++) await student.trainStep(b, null, ce, 0.1);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await student.trainStep(b, null, ce, 0.1);
    times.push(performance.now() - t0);
  }
  report(`resnet20 train step (batch ${batch}, 100 classes)`, times, batch);
  if (args.profile) await profileStep(() => student.trainStep(b, null, ce, 0.1));
  student.dispose();

  const g56 = buildModel("resnet56", { numClasses: STEP_CLASSES });
  const frozen = await engine.loadFrozen(g56, initStateDict(g56, 1));
  if (warm > 0) await frozen.forward(b);
  const evals: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await frozen.forward(b);
    evals.push(performance.now() - t0);
  }
  report(`resnet56 eval forward (batch ${batch})`, evals, batch);
  // The oracle's teacher pass: dCE/dx through the frozen network (eval-mode BatchNorm).
  if (warm > 0) await frozen.inputGradient(b, "mean");
  const grads: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await frozen.inputGradient(b, "mean");
    grads.push(performance.now() - t0);
  }
  report(`resnet56 input gradient, the oracle's teacher pass (batch ${batch})`, grads, batch);
  frozen.dispose();
}

/** Images per second, three significant digits. */
function rate(n: number, ms: number): string {
  return (n / ms * 1000).toPrecision(3);
}

function report(what: string, times: number[], n: number): void {
  const med = median(times), best = Math.min(...times);
  console.log(
    `${what}: median ${med.toFixed(0)} ms = ${rate(n, med)} img/s; ` +
      `best ${best.toFixed(0)} ms = ${rate(n, best)} img/s (${times.length} runs)`,
  );
}

async function profileStep(step: () => Promise<unknown>): Promise<void> {
  const info = await tf.profile(async () => {
    await step();
  });
  const agg = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const a = agg.get(k.name) ?? { ms: 0, calls: 0 };
    a.ms += Number(k.kernelTimeMs);
    a.calls++;
    agg.set(k.name, a);
  }
  const total = [...agg.values()].reduce((s, a) => s + a.ms, 0);
  console.log(`profile of one training step: ${total.toFixed(0)} ms in kernels`);
  for (const [name, a] of [...agg].sort((p, q) => q[1].ms - p[1].ms).slice(0, 15)) {
    console.log(
      `  ${name.padEnd(24)} ${a.ms.toFixed(1).padStart(8)} ms ${String(a.calls).padStart(5)} calls`,
    );
  }
}

/** One kernel invocation at one shape. */
interface KernelCase {
  kernel: string;
  label: string;
  inputs: Record<string, number[]>;
  attrs: Record<string, unknown>;
}

function convCases(n: number): KernelCase[] {
  const cases: KernelCase[] = [];
  const convs: [string, number, number, number, number, number, number][] = [
    // label, H, Cin, Cout, k, stride, pad
    ["3x3 s1 32x32x16->16", 32, 16, 16, 3, 1, 1],
    ["3x3 s1 16x16x32->32", 16, 32, 32, 3, 1, 1],
    ["3x3 s1 8x8x64->64", 8, 64, 64, 3, 1, 1],
    ["3x3 s2 32x32x16->32", 32, 16, 32, 3, 2, 1],
    ["3x3 s2 16x16x32->64", 16, 32, 64, 3, 2, 1],
    ["1x1 s2 32x32x16->32", 32, 16, 32, 1, 2, 0],
  ];
  for (const [label, h, ci, co, k, s, p] of convs) {
    const ho = Math.floor((h + 2 * p - k) / s) + 1;
    const common = { strides: s, pad: p, dataFormat: "NHWC", dimRoundingMode: "floor" };
    cases.push({
      kernel: "Conv2DBackpropFilter",
      label,
      inputs: { x: [n, h, h, ci], dy: [n, ho, ho, co] },
      attrs: { ...common, filterShape: [k, k, ci, co] },
    });
    cases.push({
      kernel: "Conv2DBackpropInput",
      label,
      inputs: { dy: [n, ho, ho, co], filter: [k, k, ci, co] },
      attrs: { ...common, inputShape: [n, h, h, ci] },
    });
    cases.push({
      kernel: "Conv2D",
      label: `${label} (forward, for scale)`,
      inputs: { x: [n, h, h, ci], filter: [k, k, ci, co] },
      attrs: { strides: s, pad: p, dataFormat: "NHWC", dilations: 1, dimRoundingMode: "floor" },
    });
  }
  const mm: [string, number[], number[], boolean, boolean][] = [
    [`fc forward [${n},64]x[64,100]`, [n, 64], [64, 100], false, false],
    [`fc dX [${n},100]x[64,100]^T`, [n, 100], [64, 100], false, true],
    [`fc dW [${n},64]^Tx[${n},100]`, [n, 64], [n, 100], true, false],
    ["batched [8,64,64]x[8,64,64]", [8, 64, 64], [8, 64, 64], false, false],
  ];
  for (const [label, a, b, ta, tb] of mm) {
    cases.push({ kernel: "BatchMatMul", label, inputs: { a, b }, attrs: { transposeA: ta, transposeB: tb } });
  }
  return cases;
}

function randomTensor(shape: number[]): TfTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(size);
  for (let i = 0; i < size; i++) v[i] = rng.normal();
  return tf.tensor(v, shape, "float32");
}

/** Median and best time of `reps` calls (after one untimed call). */
function timeKernel(tfns: Tf, c: KernelCase, config: TfKernelConfig | null, reps: number): [number, number] {
  const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, s]) => [k, randomTensor(s)]));
  const backend = tfns.backend();
  const times: number[] = [];
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    if (config) {
      const out = config.kernelFunc({ inputs: inputs as never, attrs: c.attrs as never, backend });
      const outs = (Array.isArray(out) ? out : [out]) as TfTensorInfo[];
      for (const o of outs) backend.disposeData(o.dataId);
    } else {
      const out = tfns.engine().runKernel(c.kernel, inputs as never, c.attrs as never);
      tfns.dispose(out as TfTensor);
    }
    if (r > 0) times.push(performance.now() - t0); // the first call includes one-off setup
  }
  tfns.dispose(Object.values(inputs));
  return [median(times), Math.min(...times)];
}

function benchKernels(): void {
  const reps = backendName === "cpu" ? 2 : 9;
  console.log(
    `per-kernel ms, median (best) of ${reps} runs, batch ${batch}` +
      (backendName === "wasm" ? "; the stock wasm kernel it replaces in brackets (median of 3)" : ""),
  );
  for (const c of convCases(batch)) {
    const [med, best] = timeKernel(tf, c, null, reps);
    let line = `  ${c.kernel.padEnd(21)} ${c.label.padEnd(40)} ${med.toFixed(2).padStart(8)} (${
      best.toFixed(2)
    }) ms`;
    const stockConfig = backendName === "wasm" && c.kernel !== "Conv2D"
      ? stockWasmKernel(c.kernel)
      : undefined;
    if (stockConfig) {
      stockConfig.setupFunc?.(tf.backend());
      line += `  [stock ${timeKernel(tf, c, stockConfig, 3)[0].toFixed(2)} ms]`;
    }
    console.log(line);
  }
}

if (!args["skip-models"]) await benchModels();
if (!args["skip-kernels"]) benchKernels();
