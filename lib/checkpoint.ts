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
  /** What the weights belong to: the student architecture and the settings that shape the run. */
  run?: CheckpointRun;
}

/** The architecture and settings a checkpoint was written for (compared on resume). */
export interface CheckpointRun {
  /** Student architecture (zoo name). */
  student: string;
  /** Settings that must not change on resume (name -> value, JSON). */
  settings: Record<string, unknown>;
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
  const meta: Record<string, string> = {
    format: FORMAT,
    optimizer_step: String(ck.optimizer.step),
    loop: JSON.stringify(ck.loop),
  };
  if (ck.run) meta.run = JSON.stringify(ck.run);
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
  const step = Number(metadata.optimizer_step);
  if (!Number.isInteger(step) || step < 0) {
    throw new Error(
      `${file}: damaged checkpoint metadata (optimizer_step ${JSON.stringify(metadata.optimizer_step)})`,
    );
  }
  return {
    weights,
    optimizer: { step, momentum },
    loop: parseMeta(metadata, "loop", file) as Loop,
    run: metadata.run === undefined ? undefined : parseMeta(metadata, "run", file) as CheckpointRun,
  };
}

/** What a checkpoint's header says without its tensors. */
export interface CheckpointInfo {
  /** What it was written for; undefined for a checkpoint written before it recorded this. */
  run?: CheckpointRun;
  /** The loop state (JSON). */
  loop: unknown;
}

/**
 * Reads a checkpoint's header only (the tensors are not loaded): what it was written for and
 * the loop state. Errors name the file.
 *
 * @example
 * ```ts
 * import { readCheckpointInfo, saveCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * const run = { student: "resnet8", settings: { lr: 0.1 } };
 * await saveCheckpoint(`${dir}/c.safetensors`, { weights: new Map(), optimizer: { step: 0, momentum: new Map() }, loop: {}, run });
 * console.log((await readCheckpointInfo(`${dir}/c.safetensors`)).run?.student); // resnet8
 * ```
 */
export async function readCheckpointInfo(file: string): Promise<CheckpointInfo> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(file);
  } catch (e) {
    throw new Error(`${file}: cannot read checkpoint (${(e as Error).message})`);
  }
  try {
    const size = (await f.stat()).size;
    const head = new Uint8Array(8);
    if (size < 8 || (await f.read(head)) !== 8) {
      throw new Error(`${file}: not a safetensors file (too short)`);
    }
    const len = Number(new DataView(head.buffer).getBigUint64(0, true));
    if (len > size - 8 || len > 64 * 1024 * 1024) {
      throw new Error(`${file}: truncated or not a safetensors file (header claims ${len} bytes)`);
    }
    const buf = new Uint8Array(len);
    let got = 0;
    while (got < len) {
      const n = await f.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    let header: { __metadata__?: Record<string, string> };
    try {
      header = JSON.parse(new TextDecoder().decode(buf.subarray(0, got)));
    } catch {
      throw new Error(`${file}: corrupt header (not JSON)`);
    }
    const meta = header.__metadata__ ?? {};
    if (meta.format !== FORMAT) {
      throw new Error(`${file}: not an oracle-kd checkpoint (format ${meta.format})`);
    }
    return {
      run: meta.run === undefined ? undefined : parseMeta(meta, "run", file) as CheckpointRun,
      loop: parseMeta(meta, "loop", file),
    };
  } finally {
    f.close();
  }
}

function parseMeta(metadata: Record<string, string>, key: string, file: string): unknown {
  const raw = metadata[key];
  if (typeof raw !== "string") throw new Error(`${file}: damaged checkpoint metadata ("${key}" is missing)`);
  try {
    const v = JSON.parse(raw);
    if (typeof v !== "object" || v === null) throw new Error(`not an object`);
    return v;
  } catch (e) {
    throw new Error(
      `${file}: damaged checkpoint metadata ("${key}" is not valid JSON: ${(e as Error).message})`,
    );
  }
}
