/**
 * Multiply-accumulates (MACs) of a network's dense layers, per image: the arithmetic a step must
 * do whatever engine runs it, so a measured images/s becomes a rate (GMAC/s) that can be set
 * against what the machine's convolutions reach (bench/bench.ts). Convolutions and linear layers
 * only: BatchNorm, ReLU, pooling and the loss are memory-bound and left out.
 *
 * @example
 * ```ts
 * import { buildModel } from "../models/zoo.ts";
 * import { workloadMacs } from "./macs.ts";
 * const g = buildModel("resnet20", { numClasses: 100 });
 * console.log((workloadMacs(g, [32, 32], "forward") / 1e6).toFixed(1)); // 40.8
 * ```
 * @module
 */

import { convOut, type Graph } from "../graph.ts";

/** Forward MACs per image: all dense layers, and the part in layers that read the image. */
export interface ForwardMacs {
  /** Every convolution and linear layer. */
  total: number;
  /** The layers that read the network's input (a student needs no gradient there). */
  fromInput: number;
}

/**
 * Forward MACs per image of `graph` on `h` x `w` inputs (convolution output sizes from stride
 * and padding; a linear layer's input is its weight's width).
 *
 * @example
 * ```ts
 * import { buildModel } from "../models/zoo.ts";
 * import { forwardMacs } from "./macs.ts";
 * const m = forwardMacs(buildModel("resnet8", { numClasses: 10 }), [32, 32]);
 * console.log(m.fromInput); // 442368
 * ```
 */
export function forwardMacs(graph: Graph, [h, w]: readonly [number, number]): ForwardMacs {
  const shapes = new Map<string, number[]>([[graph.input, [h, w]]]);
  const weight = new Map(graph.params.map((p) => [p.name, p.shape]));
  let total = 0;
  let fromInput = 0;
  for (const node of graph.nodes) {
    const [ih, iw] = shapes.get(node.inputs[0]) ?? [1, 1];
    let macs = 0;
    let out = [ih, iw];
    if (node.op === "conv") {
      const [co, ci, k] = weight.get(node.weight)!;
      out = [ih, iw].map((s) => convOut(s, { k, stride: node.stride, pad: node.pad }));
      macs = co * ci * k * k * out[0] * out[1];
    } else if (node.op === "linear") {
      const [o, i] = weight.get(node.weight)!;
      macs = o * i;
    } else if (node.op === "global_avg_pool") {
      out = [1, 1];
    }
    shapes.set(node.output, out);
    total += macs;
    if (node.inputs[0] === graph.input) fromInput += macs;
  }
  return { total, fromInput };
}

/** What a workload does with a network. */
export type Workload = "forward" | "oracle" | "train";

/**
 * MACs per image of a workload: `forward` one pass; `oracle` (x* generation and the teacher's
 * response, `recNum` relevance passes) per pass a forward and an input gradient down to the
 * image, then the forward on x*; `train` (one SGD step) a forward, the input gradients of every
 * layer but those reading the image, and every weight gradient (each as many MACs as its
 * forward).
 *
 * @example
 * ```ts
 * import { buildModel } from "../models/zoo.ts";
 * import { workloadMacs } from "./macs.ts";
 * const g = buildModel("resnet56", { numClasses: 100 });
 * console.log(workloadMacs(g, [32, 32], "oracle") === 3 * workloadMacs(g, [32, 32], "forward")); // true
 * ```
 */
export function workloadMacs(
  graph: Graph,
  image: readonly [number, number],
  workload: Workload,
  recNum = 1,
): number {
  const { total, fromInput } = forwardMacs(graph, image);
  if (workload === "forward") return total;
  if (workload === "oracle") return recNum * 2 * total + total;
  return 3 * total - fromInput;
}
