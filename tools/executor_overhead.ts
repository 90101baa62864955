/**
 * What onnxruntime's sequential executor costs per node, apart from any kernel's work: a chain of
 * `--nodes` `Add` nodes on a 16-float vector against a single one, at the engine's session
 * settings.
 *
 * ```sh
 * deno run -A tools/executor_overhead.ts [--nodes 2000] [--threads 2]
 * ```
 * @module
 */
import { scriptSettings } from "../lib/cli_args.ts";
import { int } from "../lib/config_spec.ts";
import { OnnxBuilder } from "../lib/onnx/builder.ts";
import { createSession, runSession } from "../lib/engines/onnxruntime/session.ts";
import { median } from "../lib/metrics.ts";

const SPEC = {
  summary: "onnxruntime's per-node executor cost: a chain of Adds against a single one",
  example: "deno run -A tools/executor_overhead.ts --threads 1",
  fields: {
    nodes: int("run", "Adds in the chain", 2000, { min: 2 }),
    threads: int("engine", "intra-op threads", 2, { min: 1 }),
  },
  usage: "deno run -A tools/executor_overhead.ts",
};
const { nodes, threads } = await scriptSettings("executor_overhead", SPEC);

/** Median time of one run of a chain of `count` Adds of two graph inputs (no constant to fold). */
async function chain(count: number): Promise<number> {
  const b = new OnnxBuilder("chain");
  let v = b.input("x", "float32", [16]);
  const step = b.input("step", "float32", [16]);
  for (let i = 0; i < count; i++) v = b.op("Add", [v, step]);
  b.output(b.op("Identity", [v]), "y");
  const session = await createSession(b.toModel(), threads);
  const feeds = {
    x: { data: new Float32Array(16), dims: [16] },
    step: { data: new Float32Array(16).fill(1), dims: [16] },
  };
  try {
    const y = (await runSession(session, feeds)).y;
    if (y[0] !== count) throw new Error(`the chain of ${count} Adds gave ${y[0]}`);
    for (let i = 0; i < 5; i++) await runSession(session, feeds);
    const ms: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      await runSession(session, feeds);
      ms.push(performance.now() - t0);
    }
    return median(ms);
  } finally {
    await session.release();
  }
}

const [one, many] = [await chain(1), await chain(nodes)];
console.log(
  `${threads} thread(s): 1 Add ${one.toFixed(3)} ms, ${nodes} Adds ${many.toFixed(3)} ms: ` +
    `${((many - one) / (nodes - 1) * 1000).toFixed(2)} us per added node`,
);
