/**
 * Tiny in-memory training data for the trainer's tests (trainer, frozen_worker and
 * hostile_numbers tests): 8x8 RGB images whose class brightens one channel, a resumable batch
 * source (seeded shuffle per epoch, or in order), an evaluation source and a one-conv network.
 * @module
 */
import type { LabelledBatch } from "../lib/batch.ts";
import { GraphBuilder } from "../lib/graph.ts";
import { Rng } from "../lib/rng.ts";
import type { EvalBatchSource, TrainBatchSource } from "../lib/trainer.ts";

/** Image shape of the data. */
export const SHAPE = [3, 8, 8] as const;
/** Values per image. */
export const PIX = 3 * 8 * 8;

/** Labelled images as flat arrays. */
export interface MemoryData {
  x: Float32Array;
  y: Int32Array;
}

/** conv 3->4, BatchNorm, ReLU, pool, linear to `classes`. */
export function tinyGraph(classes = 4) {
  const b = new GraphBuilder("tiny", 3, classes);
  let h = b.conv("conv1", b.input, 3, 4, 3, 1, 1);
  h = b.relu("relu", b.batchNorm("bn1", h, 4));
  h = b.globalAvgPool("pool", h);
  return b.finish(b.linear("fc", h, 4, classes));
}

/** `n` images, labels i % 4; class c brightens channel c % 3 by `signal(c)`; seeded noise. */
export function makeData(n: number, seed: number, signal = (c: number) => c / 2): MemoryData {
  const r = new Rng(seed);
  const x = new Float32Array(n * PIX), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 4;
    for (let j = 0; j < PIX; j++) {
      x[i * PIX + j] = 0.3 * r.normal() + (Math.floor(j / 64) === y[i] % 3 ? signal(y[i]) : 0);
    }
  }
  return { x, y };
}

/**
 * Batches of `batch` images, shuffled per epoch from `shuffleSeed` (in order when null), as
 * fresh arrays (a teacher worker may hold one while the next is made); resumable.
 */
export class MemorySource implements TrainBatchSource {
  #order: number[] = [];
  #pos = 0;
  #epoch = 0;
  constructor(readonly data: MemoryData, readonly batch: number, readonly shuffleSeed: number | null) {}
  get batchesPerEpoch() {
    return Math.ceil(this.data.y.length / this.batch);
  }
  startEpoch(epoch: number) {
    this.#epoch = epoch;
    const all = Array.from(this.data.y, (_, i) => i);
    this.#order = this.shuffleSeed === null ? all : new Rng(this.shuffleSeed * 1000 + epoch).shuffle(all);
    this.#pos = 0;
  }
  next(): Promise<LabelledBatch | null> {
    if (this.#pos >= this.#order.length) return Promise.resolve(null);
    const idx = this.#order.slice(this.#pos, this.#pos + this.batch);
    this.#pos += idx.length;
    const x = new Float32Array(idx.length * PIX);
    idx.forEach((k, i) => x.set(this.data.x.subarray(k * PIX, (k + 1) * PIX), i * PIX));
    return Promise.resolve({
      x,
      y: Int32Array.from(idx, (k) => this.data.y[k]),
      n: idx.length,
      shape: SHAPE,
    });
  }
  state() {
    return { epoch: this.#epoch, pos: this.#pos };
  }
  restore(s: unknown) {
    const st = s as { epoch: number; pos: number };
    this.startEpoch(st.epoch);
    this.#pos = st.pos;
  }
}

/** Evaluation batches of `batch` images in order. */
export function evalSource(data: MemoryData, batch = 16): EvalBatchSource {
  return {
    count: data.y.length,
    async *batches() {
      for (let i = 0; i < data.y.length; i += batch) {
        const n = Math.min(batch, data.y.length - i);
        yield { x: data.x.slice(i * PIX, (i + n) * PIX), y: data.y.slice(i, i + n), n, shape: SHAPE };
      }
    },
  };
}
