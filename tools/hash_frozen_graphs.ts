/**
 * Hashes the serialised ONNX graphs the op-set code emits, to prove a refactor of the frozen-graph
 * compilers, the LRP pass or the exporter leaves them byte-identical: run before and after, compare
 * the lines. Covered, for every zoo model with seeded weights: the frozen graphs (forward, input
 * gradient, grad-input oracle, and LRP oracles for lrp-epsilon / lrp-gamma / lrp-zplus with the
 * first-layer rules lrp-0, same and zB) in NCHW and in NCHWc with blocks 8 and 16, and the ONNX
 * export with and without BatchNorm folding.
 * `deno run -A tools/hash_frozen_graphs.ts [--all]` (`--all` prints one line per graph).
 * @module
 */
import { GraphHashes } from "./graph_hashes.ts";
import { exportOnnx } from "../convert/onnx_export.ts";
import { lowerEvalNet } from "../lib/engines/onnxruntime/eval_net.ts";
import { compileFrozen, type FrozenGraphKind } from "../lib/engines/onnxruntime/frozen_graphs.ts";
import { nchwcCompatible, nchwcLayout } from "../lib/engines/onnxruntime/frozen_nchwc.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel, MODEL_NAMES } from "../lib/models/zoo.ts";
import { resolveLrpParams } from "../lib/oracle/options.ts";
import { planFor } from "../lib/oracle/rules.ts";

const LRP: [string, FrozenGraphKind][] = [];
for (const rule of ["lrp-epsilon", "lrp-gamma", "lrp-zplus"] as const) {
  for (const firstLayer of ["lrp-0", "same", "zB"] as const) {
    const params = resolveLrpParams({
      epsilon: 0.01,
      gamma: 0.25,
      firstLayer,
      inputBounds: firstLayer === "zB" ? { low: [-2, -2, -2], high: [2, 2, 2] } : undefined,
    });
    const plan = planFor(rule, params, 3);
    LRP.push([
      `oracle ${rule} ${firstLayer}`,
      {
        kind: "oracle",
        gamma: 0.5,
        recNum: 2,
        reduction: "mean",
        keepInput: true,
        keepRelevance: true,
        plan,
      },
    ]);
  }
}
const SPECS: [string, FrozenGraphKind][] = [
  ["forward", { kind: "forward" }],
  ["input_gradient mean", { kind: "input_gradient", reduction: "mean" }],
  ["input_gradient sum", { kind: "input_gradient", reduction: "sum" }],
  ["oracle", { kind: "oracle", gamma: 0.5, recNum: 1, reduction: "mean", keepInput: false }],
  ["oracle keep", { kind: "oracle", gamma: 0.5, recNum: 2, reduction: "sum", keepInput: true }],
  ["oracle relevance", {
    kind: "oracle",
    gamma: 0.5,
    recNum: 1,
    reduction: "sum",
    keepInput: true,
    keepRelevance: true,
  }],
  ...LRP,
];
const hashes = new GraphHashes();
const emit = (label: string, bytes: Uint8Array) => hashes.add(label, () => bytes);
for (const arch of MODEL_NAMES) {
  const g = buildModel(arch, { numClasses: 10 });
  const weights = initStateDict(g, 0);
  const net = lowerEvalNet(g, weights);
  for (const [name, spec] of SPECS) {
    emit(`${arch} ${name} nchw`, compileFrozen(net, 2, [3, 32, 32], spec));
    for (const block of [8, 16]) {
      if (nchwcCompatible(net, block)) {
        emit(`${arch} ${name} nchwc${block}`, compileFrozen(net, 2, [3, 32, 32], spec, nchwcLayout(block)));
      }
    }
  }
  emit(`${arch} export folded`, exportOnnx(g, weights, { dataset: "cifar10" }));
  emit(`${arch} export unfolded`, exportOnnx(g, weights, { dataset: "cifar10", foldBatchNorm: false }));
}
console.log(hashes.summary());
