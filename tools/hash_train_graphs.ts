/**
 * Hashes the serialised ONNX training-step graphs, to prove a refactor of the training compilers
 * (train_emitter.ts, train_graph.ts, train_nchwc.ts and their op table) leaves them
 * byte-identical: run before and after, compare the lines. Covered, for every zoo model: the NCHW
 * step ({@link compileTrainStep}) and the NCHWc step with blocks 8 and 16 where
 * {@link trainNchwcCompatible}, with and without teacher logits, for three SGD settings (momentum
 * 0.9 with weight decay 5e-4, Nesterov, no momentum), every weight-gradient method (and the
 * default), n = 4 and images [3, 32, 32]; and the diagnostics form (exposeForward) once per
 * compiler.
 * `deno run -A tools/hash_train_graphs.ts [--all]` (`--all` prints one line per graph).
 * @module
 */
import { GraphHashes } from "./graph_hashes.ts";
import type { SgdOptions } from "../lib/engines/engine.ts";
import type { WeightGradMethod } from "../lib/engines/onnxruntime/conv_grad.ts";
import type { TrainGraphSpec } from "../lib/engines/onnxruntime/train_common.ts";
import { compileTrainStep } from "../lib/engines/onnxruntime/train_graph.ts";
import { compileTrainStepNchwc, trainNchwcCompatible } from "../lib/engines/onnxruntime/train_nchwc.ts";
import { buildModel, MODEL_NAMES } from "../lib/models/zoo.ts";

const SGD: [string, SgdOptions][] = [
  ["m0.9 wd5e-4", { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 }],
  ["nesterov", { momentum: 0.9, weightDecay: 5e-4, nesterov: true, dampening: 0 }],
  ["m0", { momentum: 0, weightDecay: 0, nesterov: false, dampening: 0 }],
];
const METHODS: (WeightGradMethod | undefined)[] = [
  undefined,
  "im2col",
  "shifted_matmuls",
  "batch_folded",
];
const SPECS: [string, TrainGraphSpec][] = [];
for (const withTeacher of [false, true]) {
  for (const [sgdName, sgd] of SGD) {
    for (const weightGrad of METHODS) {
      SPECS.push([
        `${withTeacher ? "teacher" : "plain"} ${sgdName} ${weightGrad ?? "default"}`,
        { n: 4, image: [3, 32, 32], withTeacher, sgd, weightGrad },
      ]);
    }
  }
}
SPECS.push(["expose teacher m0.9 wd5e-4 default", {
  n: 4,
  image: [3, 32, 32],
  withTeacher: true,
  sgd: SGD[0][1],
  exposeForward: true,
}]);

const hashes = new GraphHashes();
const emit = (label: string, compile: () => Uint8Array) => hashes.add(label, compile);
for (const arch of MODEL_NAMES) {
  const g = buildModel(arch, { numClasses: 10 });
  for (const [name, spec] of SPECS) {
    emit(`${arch} ${name} nchw`, () => compileTrainStep(g, spec));
    for (const block of [8, 16]) {
      if (trainNchwcCompatible(g, block)) {
        emit(`${arch} ${name} nchwc${block}`, () => compileTrainStepNchwc(g, spec, block));
      }
    }
  }
}
console.log(hashes.summary());
