/**
 * The batch loader: turns a split into {@link LabelledBatch}es (NCHW float32, normalised, int32
 * labels) like a PyTorch DataLoader with the paper's transforms. Training: seeded shuffle per
 * epoch, random crop with 4-pixel zero padding and horizontal flip; test: fixed order, no
 * augmentation. The last partial batch is kept. Batches are prepared ahead (on a worker thread
 * by default) while the consumer's step runs, and the loader's whole state is a small
 * JSON-serialisable object, so a resumed run sees exactly the same batches.
 *
 * @example
 * ```ts
 * import { BatchLoader } from "./loader.ts";
 * import { makeSyntheticDataset } from "./synthetic.ts";
 * const ds = makeSyntheticDataset({ trainCount: 10, testCount: 4 });
 * const loader = new BatchLoader(ds, "train", { batchSize: 4, seed: 1 });
 * for await (const batch of loader.epochBatches()) console.log(batch.n); // 4, 4, 2
 * console.log(loader.state().epoch); // 1
 * await loader.close();
 * ```
 * @module
 */

import type { LabelledBatch } from "../batch.ts";
import { Rng } from "../rng.ts";
import { type Assembler, type BatchTicket, createAssembler } from "./assembler.ts";
import { type BatchPlan, normalizationTable, planCropFlip, planIdentity } from "./augment.ts";
import type { ImageDataset, ImageSplit } from "./dataset.ts";

/** Options of {@link BatchLoader}. */
export interface LoaderOptions {
  /** Images per batch. */
  batchSize: number;
  /** Reshuffle every epoch (default: true for train, false for test). */
  shuffle?: boolean;
  /** Random crop + flip (default: true for train, false for test). */
  augment?: boolean;
  /** Seed of shuffling, augmentation and `subset` (default 0). */
  seed?: number;
  /** Use a seeded random subset of this many images of the split (fixed for the whole run). */
  subset?: number;
  /** Use only the first `limit` images (after `subset`), e.g. for quick tests. */
  limit?: number;
  /** Zero padding of the random crop (default 4, as the paper). */
  padding?: number;
  /** Batches prepared ahead of the consumer (default 2). */
  prefetch?: number;
  /** Assemble on a worker thread (default true; inline on the main thread otherwise). */
  worker?: boolean;
}

/** Everything needed to continue a loader exactly where it was (JSON-serialisable). */
export interface LoaderState {
  /** Format version. */
  version: 1;
  /** Which split. */
  split: "train" | "test";
  /** Loader seed. */
  seed: number;
  /** Images per epoch (checked on restore). */
  size: number;
  /** Batch size (checked on restore). */
  batchSize: number;
  /** Epoch of the next batch (0-based). */
  epoch: number;
  /** Index of the next batch within its epoch. */
  position: number;
  /** Augmentation RNG state before the next batch. */
  rng: number[];
}

/** A batch with its place in the stream. */
export interface LoadedBatch extends LabelledBatch {
  /** Epoch it belongs to (0-based). */
  epoch: number;
  /** Batch index within the epoch. */
  index: number;
  /** Whether it is the epoch's last batch. */
  last: boolean;
}

/** Timing of the consumer side, to check that loading never makes training wait. */
export interface LoaderStats {
  /** Batches handed out. */
  batches: number;
  /** Milliseconds the consumer spent waiting for batches not yet ready. */
  waitMs: number;
  /** `worker` or `inline`. */
  assembler: "worker" | "inline";
}

interface Pending {
  x: BatchTicket;
  y: Int32Array;
  epoch: number;
  index: number;
  last: boolean;
  after: LoaderState;
}

// Salts that keep the loader's random streams apart.
const SUBSET_SALT = 0x53554253;
const AUGMENT_SALT = 0x41554731;
const EPOCH_MUL = 0x9e3779b1;

/**
 * Batches of one split of a dataset. Call {@link BatchLoader.close} when done (it stops the
 * worker thread; a forgotten loader does not keep the process alive, though).
 *
 * @example
 * ```ts
 * import { BatchLoader } from "./loader.ts";
 * import { makeSyntheticDataset } from "./synthetic.ts";
 * const ds = makeSyntheticDataset({ trainCount: 8, testCount: 8 });
 * const test = new BatchLoader(ds, "test", { batchSize: 8 });
 * const batch = await test.next();
 * console.log(batch.x.length, batch.y.length); // 24576 8
 * await test.close();
 * ```
 */
export class BatchLoader {
  /** Images per epoch. */
  readonly size: number;
  /** Batches per epoch (the last one may be partial). */
  readonly batchesPerEpoch: number;
  /** Batch size. */
  readonly batchSize: number;
  /** Image shape `[C, H, W]`. */
  readonly shape: readonly [number, number, number];

  #split: ImageSplit;
  #splitName: "train" | "test";
  #base: Int32Array;
  #seed: number;
  #shuffle: boolean;
  #augment: boolean;
  #padding: number;
  #prefetch: number;
  #assembler: Assembler;

  // Planning cursor (runs ahead of the consumer by the prefetch depth).
  #planEpoch = 0;
  #planPosition = 0;
  #planRng: Rng;
  #order: Int32Array | null = null;
  #orderEpoch = -1;

  #queue: Pending[] = [];
  #consumed: LoaderState;
  #stats = { batches: 0, waitMs: 0 };

  /**
   * Prepares a loader; nothing is assembled until the first batch is asked for.
   *
   * @example
   * ```ts
   * import { BatchLoader } from "./loader.ts";
   * import { makeSyntheticDataset } from "./synthetic.ts";
   * const loader = new BatchLoader(makeSyntheticDataset({ trainCount: 100 }), "train", { batchSize: 64, subset: 70 });
   * console.log(loader.size, loader.batchesPerEpoch); // 70 2
   * await loader.close();
   * ```
   */
  constructor(dataset: ImageDataset, split: "train" | "test", opts: LoaderOptions) {
    const isTrain = split === "train";
    this.#split = dataset[split];
    this.#splitName = split;
    this.#seed = (opts.seed ?? 0) >>> 0;
    this.#shuffle = opts.shuffle ?? isTrain;
    this.#augment = opts.augment ?? isTrain;
    this.#padding = opts.padding ?? 4;
    this.#prefetch = Math.max(0, opts.prefetch ?? 2);
    this.batchSize = opts.batchSize;
    this.shape = dataset.shape;
    if (!(Number.isInteger(this.batchSize) && this.batchSize >= 1)) {
      throw new Error(`batch size must be a positive integer, got ${opts.batchSize}`);
    }
    if (!(Number.isInteger(this.#padding) && this.#padding >= 0 && this.#padding <= 127)) {
      throw new Error(`crop padding must be an integer in [0, 127], got ${opts.padding}`);
    }

    let base = Int32Array.from({ length: this.#split.count }, (_, i) => i);
    if (opts.subset !== undefined && opts.subset < base.length) {
      if (!(Number.isInteger(opts.subset) && opts.subset >= 1)) {
        throw new Error(`subset must be a positive integer, got ${opts.subset}`);
      }
      base = new Rng((this.#seed ^ SUBSET_SALT) >>> 0).shuffle(base).slice(0, opts.subset).sort();
    }
    if (opts.limit !== undefined && opts.limit < base.length) {
      if (!(Number.isInteger(opts.limit) && opts.limit >= 1)) {
        throw new Error(`limit must be a positive integer, got ${opts.limit}`);
      }
      base = base.slice(0, opts.limit);
    }
    if (base.length === 0) throw new Error(`dataset ${dataset.name}: the ${split} split is empty`);
    this.#base = base;
    this.size = base.length;
    this.batchesPerEpoch = Math.ceil(this.size / this.batchSize);

    this.#planRng = new Rng((this.#seed ^ AUGMENT_SALT) >>> 0);
    this.#consumed = this.#planState();
    this.#assembler = createAssembler({
      images: this.#split.images,
      shape: [...dataset.shape],
      padding: this.#padding,
      table: normalizationTable(dataset.mean, dataset.std),
    }, opts.worker ?? true);
  }

  /**
   * Epoch of the next batch (0-based).
   *
   * @example
   * ```ts
   * import { BatchLoader } from "./loader.ts";
   * import { makeSyntheticDataset } from "./synthetic.ts";
   * const loader = new BatchLoader(makeSyntheticDataset({ trainCount: 4 }), "train", { batchSize: 4 });
   * await loader.next();
   * console.log(loader.epoch); // 1
   * await loader.close();
   * ```
   */
  get epoch(): number {
    return this.#consumed.epoch;
  }

  /**
   * The next batch of the stream (epochs follow one another without end).
   *
   * @example
   * ```ts
   * import { BatchLoader } from "./loader.ts";
   * import { makeSyntheticDataset } from "./synthetic.ts";
   * const loader = new BatchLoader(makeSyntheticDataset({ trainCount: 5 }), "train", { batchSize: 4 });
   * const a = await loader.next(), b = await loader.next();
   * console.log(a.n, b.n, b.last); // 4 1 true
   * await loader.close();
   * ```
   */
  async next(): Promise<LoadedBatch> {
    while (this.#queue.length < this.#prefetch + 1) this.#enqueue();
    const item = this.#queue.shift()!;
    const t0 = performance.now();
    // Usually finished while the consumer's step ran: then taken without an event-loop turn.
    const x = item.x.ready() ?? await item.x.done;
    this.#stats.waitMs += performance.now() - t0;
    this.#stats.batches++;
    this.#consumed = item.after;
    // Keep the pipeline full while the consumer works on this batch.
    while (this.#queue.length < this.#prefetch) this.#enqueue();
    return {
      x,
      y: item.y,
      n: item.y.length,
      shape: this.shape,
      epoch: item.epoch,
      index: item.index,
      last: item.last,
    };
  }

  /**
   * The remaining batches of the current epoch; afterwards {@link BatchLoader.epoch} has advanced.
   *
   * @example
   * ```ts
   * import { BatchLoader } from "./loader.ts";
   * import { makeSyntheticDataset } from "./synthetic.ts";
   * const loader = new BatchLoader(makeSyntheticDataset({ trainCount: 9 }), "train", { batchSize: 4 });
   * let n = 0;
   * for await (const b of loader.epochBatches()) n += b.n;
   * console.log(n); // 9
   * await loader.close();
   * ```
   */
  async *epochBatches(): AsyncGenerator<LoadedBatch, void, undefined> {
    while (true) {
      const batch = await this.next();
      yield batch;
      if (batch.last) return;
    }
  }

  /**
   * The state after the last batch handed out (prefetched batches are not counted).
   *
   * @example
   * ```ts
   * import { BatchLoader } from "./loader.ts";
   * import { makeSyntheticDataset } from "./synthetic.ts";
   * const loader = new BatchLoader(makeSyntheticDataset({ trainCount: 8 }), "train", { batchSize: 4 });
   * await loader.next();
   * console.log(JSON.stringify(loader.state()).length > 0, loader.state().position); // true 1
   * await loader.close();
   * ```
   */
  state(): LoaderState {
    return { ...this.#consumed, rng: [...this.#consumed.rng] };
  }

  /**
   * Continues from a saved {@link LoaderState}; the next batch is the one that followed it.
   * Throws when the state belongs to a different split, seed, size or batch size.
   *
   * @example
   * ```ts
   * import { BatchLoader } from "./loader.ts";
   * import { makeSyntheticDataset } from "./synthetic.ts";
   * const ds = makeSyntheticDataset({ trainCount: 8 });
   * const a = new BatchLoader(ds, "train", { batchSize: 4 });
   * await a.next();
   * const b = new BatchLoader(ds, "train", { batchSize: 4 });
   * b.setState(a.state());
   * console.log((await a.next()).y.join() === (await b.next()).y.join()); // true
   * await a.close(); await b.close();
   * ```
   */
  setState(state: LoaderState): void {
    const expect = (what: string, got: unknown, want: unknown) => {
      if (got !== want) {
        throw new Error(`loader state does not fit: ${what} is ${got}, this loader has ${want}`);
      }
    };
    expect("version", state.version, 1);
    expect("split", state.split, this.#splitName);
    expect("seed", state.seed, this.#seed);
    expect("size", state.size, this.size);
    expect("batchSize", state.batchSize, this.batchSize);
    if (!(Number.isInteger(state.epoch) && state.epoch >= 0)) {
      throw new Error(`bad loader epoch ${state.epoch}`);
    }
    if (!(Number.isInteger(state.position) && state.position >= 0 && state.position < this.batchesPerEpoch)) {
      throw new Error(`bad loader position ${state.position} (epoch has ${this.batchesPerEpoch} batches)`);
    }
    this.#planRng.setState(state.rng);
    this.#planEpoch = state.epoch;
    this.#planPosition = state.position;
    this.#queue = []; // in-flight batches of the old cursor are dropped
    this.#consumed = this.#planState();
  }

  /**
   * Consumer-side timing so far.
   *
   * @example
   * ```ts
   * import { BatchLoader } from "./loader.ts";
   * import { makeSyntheticDataset } from "./synthetic.ts";
   * const loader = new BatchLoader(makeSyntheticDataset({ trainCount: 8 }), "train", { batchSize: 4 });
   * await loader.next();
   * console.log(loader.stats().batches); // 1
   * await loader.close();
   * ```
   */
  stats(): LoaderStats {
    return { ...this.#stats, assembler: this.#assembler.kind };
  }

  /**
   * Stops the worker thread. The loader cannot be used afterwards.
   *
   * @example
   * ```ts
   * import { BatchLoader } from "./loader.ts";
   * import { makeSyntheticDataset } from "./synthetic.ts";
   * await new BatchLoader(makeSyntheticDataset({ trainCount: 4 }), "train", { batchSize: 4 }).close();
   * ```
   */
  async close(): Promise<void> {
    this.#queue = [];
    await this.#assembler.close();
  }

  #planState(): LoaderState {
    return {
      version: 1,
      split: this.#splitName,
      seed: this.#seed,
      size: this.size,
      batchSize: this.batchSize,
      epoch: this.#planEpoch,
      position: this.#planPosition,
      rng: this.#planRng.getState(),
    };
  }

  #epochOrder(epoch: number): Int32Array {
    if (this.#orderEpoch !== epoch) {
      this.#order = this.#shuffle
        ? new Rng((this.#seed + Math.imul(epoch + 1, EPOCH_MUL)) >>> 0).shuffle(this.#base.slice())
        : this.#base;
      this.#orderEpoch = epoch;
    }
    return this.#order!;
  }

  #enqueue(): void {
    const epoch = this.#planEpoch;
    const index = this.#planPosition;
    const order = this.#epochOrder(epoch);
    const start = index * this.batchSize;
    const indices = order.slice(start, Math.min(start + this.batchSize, order.length));
    const plan: BatchPlan = this.#augment
      ? planCropFlip(indices, this.#planRng, this.#padding)
      : planIdentity(indices, this.#padding);
    const y = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) y[i] = this.#split.labels[indices[i]];
    const last = index === this.batchesPerEpoch - 1;
    this.#planPosition = last ? 0 : index + 1;
    if (last) this.#planEpoch++;
    const x = this.#assembler.submit(plan);
    this.#queue.push({ x, y, epoch, index, last, after: this.#planState() });
  }
}
