/**
 * The one fusion planner of the NCHWc compilers (frozen: frozen_nchwc.ts, training:
 * train_nchwc.ts): which ReLUs run inside the convolution or BatchNorm before them, and which
 * convolutions (or BatchNorms) are deferred to the residual add they feed, accumulating onto the
 * add's other input (relu(conv(x) + shortcut) as one operator). Generic over the node type: it
 * reads only a node's kind, inputs and output, so the IR's nodes and the eval ops both plan here.
 *
 * @example
 * ```ts
 * import { planFusion } from "./fusion_plan.ts";
 * type Node = { op: string; inputs: string[]; output: string };
 * const nodes: Node[] = [
 *   { op: "conv", inputs: ["x"], output: "c" },
 *   { op: "add", inputs: ["x", "c"], output: "s" },
 *   { op: "relu", inputs: ["s"], output: "r" },
 * ];
 * const plan = planFusion(nodes, "r", (n) => n.inputs, (n): n is Node => n.op === "conv");
 * console.log(plan.atAdd.get(nodes[1])?.other, plan.skipped.has(nodes[2])); // x true
 * ```
 * @module
 */

/** What the planner reads of a node. */
export interface FusableNode {
  /** Layer kind (`conv`, `batchnorm`, `relu`, `add`, ...). */
  readonly op: string;
  /** Output value name. */
  readonly output: string;
}

/** Which nodes run fused into others in a forward pass; `D` is the kind of node that can defer. */
export interface FusionPlan<N, D extends N = N> {
  /** Convolutions and BatchNorms whose following ReLU runs inside them, with that ReLU. */
  relu: Map<N, N>;
  /** Nodes emitted at a later add, accumulating onto the add's other input. */
  deferred: Set<N>;
  /** Adds realised by a deferred node: that node, the add's other input, the ReLU fused after it if any. */
  atAdd: Map<N, { node: D; other: string; relu: N | null }>;
  /** Nodes not emitted on their own (the fused ReLUs). */
  skipped: Set<N>;
}

/**
 * An empty fusion plan (nothing fused).
 *
 * @example
 * ```ts
 * import { noFusion } from "./fusion_plan.ts";
 * console.log(noFusion().skipped.size); // 0
 * ```
 */
export function noFusion<N, D extends N = N>(): FusionPlan<N, D> {
  return { relu: new Map(), deferred: new Set(), atAdd: new Map(), skipped: new Set() };
}

/**
 * Plans the fusions of `nodes` (in execution order; `output` is the network's output, never
 * fused away): each add takes one input produced by a node that `deferrable` accepts and that
 * only the add reads (the add's second input first; either way the deferred node is emitted at
 * the add, after both inputs exist), with the ReLU that solely reads the add fused after it; then every other convolution or
 * BatchNorm whose output only a ReLU reads runs that ReLU inside.
 *
 * @example
 * ```ts
 * import { planFusion } from "./fusion_plan.ts";
 * type Node = { op: string; inputs: string[]; output: string };
 * const nodes: Node[] = [
 *   { op: "batchnorm", inputs: ["x"], output: "b" },
 *   { op: "relu", inputs: ["b"], output: "r" },
 * ];
 * const plan = planFusion(nodes, "r", (n) => n.inputs, (n): n is Node => false);
 * console.log(plan.relu.get(nodes[0]) === nodes[1]); // true
 * ```
 */
export function planFusion<N extends FusableNode, D extends N>(
  nodes: readonly N[],
  output: string,
  inputsOf: (node: N) => readonly string[],
  deferrable: (node: N) => node is D,
): FusionPlan<N, D> {
  const users = new Map<string, N[]>();
  for (const node of nodes) for (const i of inputsOf(node)) users.set(i, [...(users.get(i) ?? []), node]);
  const soleUser = (value: string): N | null => {
    const u = users.get(value) ?? [];
    return u.length === 1 && value !== output ? u[0] : null;
  };
  const producer = new Map(nodes.map((node) => [node.output, node]));
  const plan = noFusion<N, D>();
  for (const add of nodes) {
    if (add.op !== "add") continue;
    const inputs = inputsOf(add);
    // Try the add's second input first (the deferred node is emitted at the add either way).
    for (const input of [...inputs].reverse()) {
      const p = producer.get(input);
      if (!p || !deferrable(p) || soleUser(input) !== add || plan.deferred.has(p)) continue;
      const other = inputs[0] === input ? inputs[1] : inputs[0];
      const next = soleUser(add.output);
      const relu = next?.op === "relu" ? next : null;
      plan.deferred.add(p);
      plan.atAdd.set(add, { node: p, other, relu });
      if (relu) plan.skipped.add(relu);
      break;
    }
  }
  for (const node of nodes) {
    if ((node.op !== "conv" && node.op !== "batchnorm") || plan.deferred.has(node)) continue;
    const next = soleUser(node.output);
    if (next?.op === "relu") {
      plan.relu.set(node, next);
      plan.skipped.add(next);
    }
  }
  return plan;
}
