/**
 * Training checkpoints: student weights, optimiser state and the loop's own state (epoch,
 * position inside the epoch, data-loader RNG, history) in one safetensors file written
 * atomically, so `--resume` continues exactly where a run stopped.
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * const weights = new Map([["w", { dtype: "float32" as const, shape: [1], data: new Float32Array([3]) }]]);
 * await saveCheckpoint(`${dir}/c.safetensors`, { weights, optimizer: { step: 1, momentum: new Map() }, loop: { epoch: 1 } });
 * const back = await loadCheckpoint(`${dir}/c.safetensors`);
 * console.log(back.optimizer.step, back.loop); // 1 { epoch: 1 }
 * ```
 * @module
 */

import { writeFileAtomic } from "./atomic_file.ts";
import type { OptimizerState } from "./engines/engine.ts";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
import type { StateDict } from "./tensor.ts";

/** What a checkpoint holds. */
export interface Checkpoint<Loop = unknown> {
  /** Student parameters and buffers (PyTorch names and layouts). */
  weights: StateDict;
  /** SGD state. */
  optimizer: OptimizerState;
  /** The training loop's JSON-serialisable state. */
  loop: Loop;
}

const FORMAT = "oracle-kd-checkpoint/1";

/**
 * Writes a checkpoint atomically (the previous file survives any failure).
 *
 * @example
 * ```ts
 * import { saveCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * await saveCheckpoint(`${dir}/c.safetensors`, { weights: new Map(), optimizer: { step: 0, momentum: new Map() }, loop: {} });
 * ```
 */
export async function saveCheckpoint(file: string, ck: Checkpoint): Promise<void> {
  const tensors: StateDict = new Map();
  for (const [k, t] of ck.weights) tensors.set(`model.${k}`, t);
  for (const [k, t] of ck.optimizer.momentum) tensors.set(`momentum.${k}`, t);
  const meta = { format: FORMAT, optimizer_step: String(ck.optimizer.step), loop: JSON.stringify(ck.loop) };
  await writeFileAtomic(file, encodeSafetensors(tensors, meta));
}

/**
 * Reads a checkpoint written by {@link saveCheckpoint}; errors name the file.
 *
 * @example
 * ```ts
 * import { loadCheckpoint } from "./checkpoint.ts";
 * try { await loadCheckpoint("missing.safetensors"); } catch (e) { console.log((e as Error).message.includes("missing.safetensors")); } // true
 * ```
 */
export async function loadCheckpoint<Loop = unknown>(file: string): Promise<Checkpoint<Loop>> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    throw new Error(`${file}: cannot read checkpoint (${(e as Error).message})`);
  }
  const { tensors, metadata } = decodeSafetensors(bytes, file);
  if (metadata.format !== FORMAT) {
    throw new Error(`${file}: not an oracle-kd checkpoint (format ${metadata.format})`);
  }
  const weights: StateDict = new Map();
  const momentum: StateDict = new Map();
  for (const [k, t] of tensors) {
    if (k.startsWith("model.")) weights.set(k.slice(6), t);
    else if (k.startsWith("momentum.")) momentum.set(k.slice(9), t);
  }
  return {
    weights,
    optimizer: { step: Number(metadata.optimizer_step), momentum },
    loop: JSON.parse(metadata.loop) as Loop,
  };
}
