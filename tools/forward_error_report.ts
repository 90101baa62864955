/**
 * Forward-activation error of every engine's train-mode forward pass against PyTorch float64, on
 * the real-image case of the SGD parity test (resnet20 student at its seeded initialisation, 20
 * real CIFAR-100 test images). PyTorch float32's own error is printed beside it as the yardstick.
 *
 * ```sh
 * /usr/bin/python3 tools/make_golden_distill.py --activations /tmp/acts   # PyTorch's activations
 * deno run -A tools/forward_error_report.ts /tmp/acts [onnxruntime-nchwc onnxruntime-nchw tfjs-wasm tfjs-cpu]
 * ```
 *
 * For each activation: max abs error vs float64 (engine, PyTorch float32, their ratio), and the
 * number of ReLU outputs on the other side of the kink from float64's. The onnxruntime values
 * come from its real training graph (`exposeForward`); in NCHWc a BatchNorm fused with its ReLU
 * (and residual add) exists only as the fused result. The tfjs values come from `TfjsNetwork.forward` on the graph cut at each
 * value.
 * @module
 */

import { buildModel } from "../lib/models/zoo.ts";
import type { Graph } from "../lib/graph.ts";
import type { StateDict } from "../lib/tensor.ts";
import { compileTrainGraph } from "../lib/engines/onnxruntime/engine.ts";
import { nchwcBlockSize } from "../lib/engines/onnxruntime/nchwc.ts";
import {
  forwardName,
  momentumName,
  TRAIN_IO,
  type TrainGraphSpec,
} from "../lib/engines/onnxruntime/train_common.ts";
import { createSession, type Feed, runSession } from "../lib/engines/onnxruntime/session.ts";
import { initTfjs } from "../lib/engines/tfjs/backend.ts";
import { TfjsNetwork } from "../lib/engines/tfjs/network.ts";
import { loadFixture } from "../tests/fixtures.ts";

type Acts = Map<string, Float32Array>;

const dir = Deno.args[0] ?? "/tmp/acts";
const engines = Deno.args.length > 1
  ? Deno.args.slice(1)
  : ["onnxruntime-nchwc", "onnxruntime-nchw", "tfjs-wasm"];

const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`)) as Record<
  string,
  { shape: number[]; f64: string; f32: string }
>;
const readRaw = async (file: string, f64: boolean) => {
  const b = await Deno.readFile(`${dir}/${file}`);
  return f64
    ? new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8)
    : new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

const fix = await loadFixture("sgd_real_golden.json");
const meta = fix.meta as { raw: Record<string, [number, number[]]>; batch: number; classes: number };
const rawBytes = await Deno.readFile(new URL("../tests/fixtures/sgd_real_golden.bin", import.meta.url));
const raw = new Float32Array(rawBytes.buffer, rawBytes.byteOffset, rawBytes.byteLength / 4);
const graph = buildModel("resnet20", { numClasses: meta.classes });
const init: StateDict = new Map();
for (const p of graph.params) {
  if (p.dtype === "int64") {
    init.set(p.name, { dtype: "int64", shape: p.shape, data: new Float64Array(1) });
    continue;
  }
  const [off, shape] = meta.raw[`init.${p.name}`];
  init.set(p.name, { dtype: "float32", shape, data: raw.slice(off, off + shape.reduce((a, b) => a * b, 1)) });
}
const x = fix.tensors.get("x")!.data as Float32Array;
const y = fix.tensors.get("y")!.data as Int32Array;
const n = meta.batch;

/** PyTorch's reference for graph value `v`: [float64, float32], or null. */
async function reference(v: string): Promise<[Float64Array, Float32Array] | null> {
  let src = v;
  let relu = false;
  if (v === "relu") [src, relu] = ["bn1", true];
  else if (v.endsWith(".relu1")) [src, relu] = [v.replace(/relu1$/, "bn1"), true];
  const e = index[src];
  if (!e) return null;
  const r64 = (await readRaw(e.f64, true)) as Float64Array;
  const r32 = (await readRaw(e.f32, false)) as Float32Array;
  return relu ? [r64.map((a) => Math.max(a, 0)), r32.map((a) => Math.max(a, 0))] : [r64, r32];
}

async function onnxruntimeActs(block: number): Promise<Acts> {
  const spec: TrainGraphSpec = {
    n,
    image: [3, 32, 32],
    withTeacher: true,
    sgd: { momentum: 0.9, weightDecay: 2.5e-4, nesterov: false, dampening: 0 },
    exposeForward: true,
  };
  const bytes = compileTrainGraph(graph, spec, block);
  const session = await createSession(bytes);
  const onehot = new Float32Array(n * meta.classes);
  for (let i = 0; i < n; i++) onehot[i * meta.classes + y[i]] = 1;
  const feeds: Record<string, Feed> = {
    [TRAIN_IO.x]: { data: x, dims: [n, 3, 32, 32] },
    [TRAIN_IO.onehot]: { data: onehot, dims: [n, meta.classes] },
    [TRAIN_IO.teacher]: {
      data: fix.tensors.get("f64.teacher1")!.data as Float32Array,
      dims: [n, meta.classes],
    },
    [TRAIN_IO.lossWeights]: { data: new Float32Array([0.5, 1, 2]), dims: [3] },
    [TRAIN_IO.sgd]: { data: new Float32Array([0.05, 1]), dims: [2] },
  };
  for (const p of graph.params) {
    if (p.dtype !== "float32") continue;
    feeds[p.name] = { data: init.get(p.name)!.data as Float32Array, dims: p.shape };
    if (p.kind === "param") {
      feeds[momentumName(p.name)] = {
        data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)),
        dims: p.shape,
      };
    }
  }
  const out = await runSession(session, feeds);
  const acts: Acts = new Map();
  for (const node of graph.nodes) {
    const o = out[forwardName(node.output)];
    if (o) acts.set(node.output, o);
  }
  return acts;
}

async function tfjsActs(backend: "wasm" | "cpu"): Promise<Acts> {
  const tf = await initTfjs(backend);
  const nhwc = tf.transpose(tf.tensor4d(x, [n, 3, 32, 32]), [0, 2, 3, 1]);
  const acts: Acts = new Map();
  for (let i = 0; i < graph.nodes.length; i++) {
    const node = graph.nodes[i];
    const cut: Graph = { ...graph, nodes: graph.nodes.slice(0, i + 1), output: node.output };
    const cutNet = new TfjsNetwork(tf, cut, init);
    const value = tf.tidy(() => {
      const out = cutNet.forward(nhwc, true)
        .logits as unknown as import("npm:@tensorflow/tfjs-core@4.22.0").Tensor;
      return out.rank === 4 ? tf.transpose(out, [0, 3, 1, 2]) : out;
    });
    acts.set(node.output, (await value.data()) as Float32Array);
    value.dispose();
    cutNet.dispose();
  }
  return acts;
}

function report(
  label: string,
  acts: Acts,
  refs: Map<string, [Float64Array, Float32Array]>,
  reluOut: Set<string>,
) {
  console.log(`\n## ${label}: max abs error vs PyTorch float64 (PyTorch float32 alongside)`);
  console.log("| value | engine | PyTorch f32 | ratio | kink flips (engine / f32) |");
  console.log("|---|---|---|---|---|");
  const ratios: number[] = [];
  let flipsTotal = 0;
  const flipped: string[] = [];
  for (const [v, [r64, r32]] of refs) {
    const got = acts.get(v);
    if (!got) continue;
    let de = 0, dt = 0, fe = 0, ft = 0;
    for (let i = 0; i < r64.length; i++) {
      de = Math.max(de, Math.abs(got[i] - r64[i]));
      dt = Math.max(dt, Math.abs(r32[i] - r64[i]));
      if (reluOut.has(v)) {
        if ((got[i] > 0) !== (r64[i] > 0)) {
          fe++;
          flipped.push(
            `${v}[${i}]: engine ${got[i].toExponential(3)}, f64 ${r64[i].toExponential(3)}, f32 ${
              r32[i].toExponential(3)
            }`,
          );
        }
        if ((r32[i] > 0) !== (r64[i] > 0)) ft++;
      }
    }
    flipsTotal += fe;
    ratios.push(de / dt);
    console.log(
      `| ${v} | ${de.toExponential(2)} | ${dt.toExponential(2)} | ${(de / dt).toFixed(2)} | ${
        reluOut.has(v) ? `${fe} / ${ft}` : ""
      } |`,
    );
  }
  ratios.sort((a, b) => a - b);
  for (const f of flipped) console.log(`  kink flip: ${f}`);
  const q = (p: number) => ratios[Math.min(ratios.length - 1, Math.floor(p * ratios.length))].toFixed(2);
  console.log(
    `\n${label}: ${ratios.length} activations; error / PyTorch float32's error: median ${q(0.5)}, p90 ${
      q(0.9)
    }, max ${q(1)}; ReLU kink flips vs float64: ${flipsTotal}`,
  );
}

const refs = new Map<string, [Float64Array, Float32Array]>();
for (const node of graph.nodes) {
  const r = await reference(node.output);
  if (r) refs.set(node.output, r);
}
for (const e of engines) {
  let acts: Acts;
  if (e === "onnxruntime-nchwc") acts = await onnxruntimeActs(await nchwcBlockSize());
  else if (e === "onnxruntime-nchw") acts = await onnxruntimeActs(0);
  else if (e === "tfjs-wasm") acts = await tfjsActs("wasm");
  else if (e === "tfjs-cpu") acts = await tfjsActs("cpu");
  else throw new Error(`unknown engine ${e}`);
  // ReLU outputs: a kink flip is a positive value where float64's is 0, or the reverse.
  const reluOut = new Set(
    graph.nodes.filter((nd) => nd.op === "relu" && acts.has(nd.output)).map((nd) => nd.output),
  );
  report(e, acts, refs, reluOut);
}
