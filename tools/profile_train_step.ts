/**
 * onnxruntime's per-op profile of the student's training step (issue 13), or with `--graph oracle`
 * of the teacher's oracle graph: where a step's time goes, by op type and by node, and how much of
 * a step is host work outside `session.run`.
 *
 * ```sh
 * deno run -A tools/profile_train_step.ts [--arch resnet20|resnet56] [--classes 100] [--batch 64]
 *     [--threads 2] [--steps 10] [--layout nchwc|nchw] [--kd] [--graph train|oracle] [--top 25]
 *     [--json out.json]
 * ```
 *
 * Three measurements, on the same graph the engine compiles:
 * 1. the engine's `trainStep` or `oracle` (seeded weights, random CIFAR-shaped batch), median ms per step;
 * 2. `session.run` alone on a session with onnxruntime's profiler on (inputs built once), median
 *    ms per run; the difference to 1 is host time outside the session (feeds, copies, one-hot);
 * 3. the profiler's trace: node kernel times of the timed runs, summed per op type (with
 *    fused activations and NCHWc ops named apart) and listed per node with its output shape;
 *    the dense kernels' share of it (convolutions other than depthwise, MatMul, Gemm) gives the
 *    step's floor if every memory-bound op were free.
 * @module
 */

import { scriptSettings } from "../lib/cli_args.ts";
import { choice, int, text } from "../lib/config_spec.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { median } from "../lib/metrics.ts";
import { Rng } from "../lib/rng.ts";
import {
  randomBatch,
  randomLogits,
  STEP_CLASSES,
  STEP_IMAGE,
  STEP_LOSS,
  STEP_LR,
  STEP_ORACLE,
  STEP_SEEDS,
  STEP_SGD,
  STEP_TOOL_FIELDS,
  stepNetwork,
} from "../bench/step_workload.ts";
import {
  compileFrozenGraph,
  compileTrainGraph,
  oneHot,
  OnnxruntimeEngine,
} from "../lib/engines/onnxruntime/engine.ts";
import { nchwcBlockSize } from "../lib/engines/onnxruntime/nchwc.ts";
import { createSession, ort } from "../lib/engines/onnxruntime/session.ts";
import { momentumName, TRAIN_IO, type TrainGraphSpec } from "../lib/engines/onnxruntime/train_common.ts";
import { FROZEN_IO } from "../lib/engines/onnxruntime/frozen_graphs.ts";
import { lowerEvalNet } from "../lib/engines/onnxruntime/eval_net.ts";
import { WEIGHT_GRAD_METHODS } from "../lib/engines/onnxruntime/conv_grad.ts";

const FIELDS = {
  ...STEP_TOOL_FIELDS,
  classes: int("model", "classes", STEP_CLASSES, { min: 1 }),
  steps: int("run", "timed steps (after 2 warm-up steps)", 10, { min: 1 }),
  layout: choice("engine", "activation layout of the graph", ["nchwc", "nchw"], "nchwc"),
  weightGrad: choice(
    "engine",
    "weight-gradient formulation (engine option weightGrad)",
    WEIGHT_GRAD_METHODS,
    "",
  ),
  top: int("run", "nodes to list", 25, { min: 1 }),
  json: text("run", "also write the tables as JSON to this file", "", { placeholder: "file" }),
};
const SPEC = {
  summary: "onnxruntime's per-op profile of the student's training step or the teacher's oracle",
  example: "deno run -A tools/profile_train_step.ts --threads 1 --kd",
  fields: FIELDS,
  usage: "deno run -A tools/profile_train_step.ts",
};
const o = await scriptSettings("profile_train_step", SPEC);
const { batch: n, threads, steps, classes: k, layout } = o;
const weightGrad = o.weightGrad || undefined;
const { arch, seed } = stepNetwork(o);
const graph = buildModel(arch, { numClasses: k });
const weights = initStateDict(graph, seed);
const loss = { ...STEP_LOSS, alpha: o.kd ? STEP_LOSS.alpha : 0 };
const rng = new Rng(STEP_SEEDS.batch);
const batch = randomBatch(n, rng, k);
const { x, y } = batch;
const teacher = o.kd ? randomLogits(n, k, rng) : null;

// 1. The engine's whole step and 2. session.run alone, alternating (so load affects both alike).
const engine = new OnnxruntimeEngine({ threads, layout, ...(weightGrad ? { weightGrad } : {}) });
const block = layout === "nchwc" ? await nchwcBlockSize() : 0;
const ortNs = await ort();
const tensor = (data: Float32Array, dims: readonly number[]) => new ortNs.Tensor("float32", data, dims);
const onehot = oneHot(y, n, k);
let bytes: Uint8Array;
let engineStep: () => Promise<unknown>;
let model: { dispose(): void };
const feeds: Record<string, InstanceType<typeof ortNs.Tensor>> = {};
if (o.graph === "oracle") {
  const frozen = await engine.loadFrozen(graph, weights);
  model = frozen;
  engineStep = () => frozen.oracle(batch, STEP_ORACLE);
  bytes = compileFrozenGraph(lowerEvalNet(graph, weights), n, [...STEP_IMAGE], {
    kind: "oracle",
    ...STEP_ORACLE,
    keepInput: false,
  }, block);
  feeds[FROZEN_IO.x] = tensor(x, [n, ...STEP_IMAGE]);
  feeds[FROZEN_IO.onehot] = tensor(onehot, [n, k]);
} else {
  const student = await engine.loadTrainable(graph, weights, STEP_SGD);
  model = student;
  engineStep = () => student.trainStep(batch, teacher, loss, STEP_LR);
  const spec: TrainGraphSpec = { n, image: [...STEP_IMAGE], withTeacher: !!o.kd, sgd: STEP_SGD, weightGrad };
  bytes = compileTrainGraph(graph, spec, block);
  feeds[TRAIN_IO.x] = tensor(x, [n, ...STEP_IMAGE]);
  feeds[TRAIN_IO.onehot] = tensor(onehot, [n, k]);
  feeds[TRAIN_IO.lossWeights] = tensor(new Float32Array([loss.ceWeight, loss.alpha, loss.temperature]), [3]);
  // The engine's feed from its second step on (dampening 0).
  feeds[TRAIN_IO.sgd] = tensor(new Float32Array([STEP_LR, 1]), [2]);
  if (teacher) feeds[TRAIN_IO.teacher] = tensor(teacher, [n, k]);
  for (const p of graph.params) {
    if (p.dtype !== "float32") continue;
    feeds[p.name] = tensor(Float32Array.from(weights.get(p.name)!.data as Float32Array), p.shape);
    if (p.kind === "param") {
      feeds[momentumName(p.name)] = tensor(new Float32Array(p.shape.reduce((a, b) => a * b, 1)), p.shape);
    }
  }
}
const dir = await Deno.makeTempDir({ prefix: "ort_profile_" });
const plain = await createSession(bytes, threads, true);
const session = await createSession(bytes, threads, true, { profilePrefix: `${dir}/${o.graph}` });
const timeRuns = async (s: typeof session) => {
  const times: number[] = [];
  for (let i = 0; i < steps + 2; i++) {
    const t0 = performance.now();
    const out = await s.run(feeds);
    if (i >= 2) times.push(performance.now() - t0);
    for (const t of Object.values(out)) t.dispose();
  }
  return times;
};
const stepTimes: number[] = [], plainTimes: number[] = [];
for (let i = 0; i < steps + 2; i++) {
  const t0 = performance.now();
  await engineStep();
  const t1 = performance.now();
  const out = await plain.run(feeds);
  const t2 = performance.now();
  for (const t of Object.values(out)) t.dispose();
  if (i >= 2) stepTimes.push(t1 - t0), plainTimes.push(t2 - t1);
}
model.dispose();
await plain.release();
// 3. session.run with onnxruntime's profiler.
const runTimes = await timeRuns(session);
const traceFile = session.endProfiling?.() as unknown as string | undefined;
await session.release();

// The trace.
interface TraceEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: {
    op_name?: string;
    input_type_shape?: Record<string, number[]>[];
    output_type_shape?: Record<string, number[]>[];
  };
}
const files = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`);
const file = typeof traceFile === "string" && traceFile ? traceFile : files[0];
const events = JSON.parse(await Deno.readTextFile(file)) as TraceEvent[];
const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run").sort((a, b) => a.ts - b.ts);
const timed = runs.slice(2);
const inTimed = (e: TraceEvent) => timed.some((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur);
const kernels = events.filter((e) => e.cat === "Node" && e.name.endsWith("_kernel_time") && inTimed(e));
const perStep = (us: number) => us / 1000 / timed.length;

const byType = new Map<string, { ms: number; count: number }>();
const byNode = new Map<string, { op: string; ms: number; shape: string }>();
for (const e of kernels) {
  const node = e.name.slice(0, -"_kernel_time".length);
  const op = opLabel(e);
  const t = byType.get(op) ?? { ms: 0, count: 0 };
  t.ms += perStep(e.dur);
  t.count += 1 / timed.length;
  byType.set(op, t);
  const shape = (e.args?.output_type_shape ?? []).map((s) => JSON.stringify(Object.values(s)[0])).join(" ");
  const r = byNode.get(node) ?? { op, ms: 0, shape };
  r.ms += perStep(e.dur);
  byNode.set(node, r);
}
const nodeSum = [...byType.values()].reduce((a, t) => a + t.ms, 0);
const stepMs = median(stepTimes), runMs = median(runTimes), plainMs = median(plainTimes);
const runProfiledMs = median(timed.map((r) => r.dur / 1000));

console.log(
  `${arch} (${k} classes) ${
    o.graph === "oracle" ? "oracle (x* and the response)" : `${o.kd ? "KD" : "CE"} training step`
  }, batch ${n}, ${threads} thread(s), ${layout}` +
    `${block ? ` block ${block}` : ""}${weightGrad ? `, weightGrad ${weightGrad}` : ""}`,
);
console.log(
  `${o.graph === "oracle" ? "engine oracle   " : "engine trainStep"}          ${stepMs.toFixed(1)} ms  (${
    (n / stepMs * 1000).toFixed(1)
  } img/s)`,
);
console.log(`session.run (no profiler) ${plainMs.toFixed(1)} ms`);
console.log(`session.run (profiled)    ${runMs.toFixed(1)} ms  (model_run ${runProfiledMs.toFixed(1)} ms)`);
console.log(`node kernels (sum)        ${nodeSum.toFixed(1)} ms  (profiled)`);
const host = stepMs - plainMs;
console.log(
  `host outside session.run  ${host.toFixed(1)} ms = ${(host / stepMs * 100).toFixed(1)}% of the step`,
);
console.log(
  `\n${"op type".padEnd(28)} ${"ms/step".padStart(8)} ${"share".padStart(6)} ${"nodes".padStart(6)}`,
);
const types = [...byType.entries()].sort((a, b) => b[1].ms - a[1].ms);
for (const [op, t] of types) {
  console.log(
    `${op.padEnd(28)} ${t.ms.toFixed(2).padStart(8)} ${(t.ms / nodeSum * 100).toFixed(1).padStart(5)}% ${
      Math.round(t.count).toString().padStart(6)
    }`,
  );
}
// The floor this op set allows: the dense kernels (convolutions other than depthwise, MatMul,
// Gemm) run near MLAS's conv/GEMM speed; everything else is memory-bound passes.
const denseMs = types.filter(([op]) => isDenseKernel(op)).reduce((a, [, t]) => a + t.ms, 0);
const denseShare = denseMs / nodeSum;
const floorMs = stepMs * denseShare;
console.log(
  `\ndense kernels (Conv, MatMul, Gemm) ${denseMs.toFixed(1)} ms = ${
    (denseShare * 100).toFixed(1)
  }% of node time;` +
    ` the step with every other op free: ${floorMs.toFixed(1)} ms (${(n / floorMs * 1000).toFixed(1)} img/s)`,
);
const top = o.top;
console.log(`\ntop ${top} nodes`);
const nodes = [...byNode.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
for (const [name, r] of nodes) {
  console.log(`${r.ms.toFixed(2).padStart(7)} ms  ${r.op.padEnd(20)} ${name.padEnd(28)} ${r.shape}`);
}
if (o.json) {
  await Deno.writeTextFile(
    o.json,
    JSON.stringify(
      {
        arch,
        batch: n,
        threads,
        layout,
        graph: o.graph,
        kd: !!o.kd,
        step_ms: stepMs,
        plain_run_ms: plainMs,
        run_ms: runMs,
        node_sum_ms: nodeSum,
        dense_kernel_ms: denseMs,
        dense_floor_step_ms: floorMs,
        op_types: Object.fromEntries(types.map(([op, t]) => [op, { ms: t.ms, nodes: Math.round(t.count) }])),
        top_nodes: nodes.map(([name, r]) => ({ name, ...r })),
      },
      null,
      1,
    ),
  );
}
if (Deno.env.get("KEEP_TRACE")) console.log(file);
else await Deno.remove(dir, { recursive: true });

/**
 * An op type for the tables: convolutions apart by kind (dense k x k; depthwise, the NCHWc
 * BatchNorm passes and shifted copies) and fused activation.
 */
/** Convolutions other than depthwise ones, MatMul and Gemm: the ops that run at MLAS's conv/GEMM speed. */
function isDenseKernel(op: string): boolean {
  return op === "MatMul" || op === "Gemm" || (op.startsWith("Conv ") && !op.startsWith("Conv depthwise"));
}

function opLabel(e: TraceEvent): string {
  const op = e.args?.op_name ?? "?";
  if (op !== "Conv") return op;
  const shapes = (e.args?.input_type_shape ?? []).map((s) => Object.values(s)[0]);
  const [x, w] = shapes;
  if (!x || !w) return op;
  const depthwise = w[1] === 1 && x[1] > 1;
  return `Conv ${depthwise ? "depthwise " : ""}${w[2]}x${w[3]}${shapes.length > 3 ? " +sum" : ""}`;
}
