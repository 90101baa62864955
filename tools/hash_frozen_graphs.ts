/**
 * Hashes the serialised frozen ONNX graphs (forward, input gradient, grad-input oracle; NCHW and
 * NCHWc with blocks 8 and 16) of every zoo model with seeded weights, to prove a refactor of the
 * frozen-graph compilers leaves them byte-identical: run before and after, compare the last line.
 * `deno run -A tools/hash_frozen_graphs.ts [--all]` (`--all` prints one line per graph).
 * @module
 */
import { createHash } from "node:crypto";
import { lowerEvalNet } from "../lib/engines/onnxruntime/eval_net.ts";
import { compileFrozen, type FrozenGraphKind } from "../lib/engines/onnxruntime/frozen_graphs.ts";
import { compileFrozenNchwc, nchwcCompatible } from "../lib/engines/onnxruntime/frozen_nchwc.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel, MODEL_NAMES } from "../lib/models/zoo.ts";

const SPECS: FrozenGraphKind[] = [
  { kind: "forward" },
  { kind: "input_gradient", reduction: "mean" },
  { kind: "input_gradient", reduction: "sum" },
  { kind: "oracle", gamma: 0.5, recNum: 1, reduction: "mean", keepInput: false },
  { kind: "oracle", gamma: 0.5, recNum: 2, reduction: "sum", keepInput: true },
];
const all = createHash("sha256");
let count = 0;
const emit = (label: string, bytes: Uint8Array) => {
  const h = createHash("sha256").update(bytes).digest("hex");
  all.update(h);
  count++;
  if (Deno.args.includes("--all")) console.log(label, h.slice(0, 16));
};
for (const arch of MODEL_NAMES) {
  const g = buildModel(arch, { numClasses: 10 });
  const net = lowerEvalNet(g, initStateDict(g, 0));
  for (const spec of SPECS) {
    emit(`${arch} ${spec.kind} nchw`, compileFrozen(net, 2, [3, 32, 32], spec));
    for (const block of [8, 16]) {
      if (nchwcCompatible(net, block)) {
        emit(`${arch} ${spec.kind} nchwc${block}`, compileFrozenNchwc(net, 2, [3, 32, 32], spec, block));
      }
    }
  }
}
console.log(`graphs ${count} combined ${all.digest("hex")}`);
