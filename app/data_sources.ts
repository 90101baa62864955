/**
 * Adapts the data layer's {@link BatchLoader} to the trainer's batch-source interfaces: epoch
 * boundaries for training, one ordered pass for evaluation.
 *
 * @example
 * ```ts
 * import { makeSyntheticDataset } from "../lib/data/synthetic.ts";
 * import { BatchLoader } from "../lib/data/loader.ts";
 * import { trainSource } from "./data_sources.ts";
 * const ds = makeSyntheticDataset({ trainCount: 10, testCount: 4 });
 * const src = trainSource(new BatchLoader(ds, "train", { batchSize: 4, worker: false }));
 * src.startEpoch(1);
 * let n = 0;
 * for (let b = await src.next(); b; b = await src.next()) n += b.n;
 * console.log(n, src.batchesPerEpoch); // 10 3
 * ```
 * @module
 */

import {
  allocPixels,
  channelStats,
  checkDataset,
  type ImageDataset,
  type ImageSplit,
} from "../lib/data/dataset.ts";
import type { LabelledBatch } from "../lib/engines/engine.ts";
import type { BatchLoader, LoaderState } from "../lib/data/loader.ts";
import type { EvalBatchSource, TrainBatchSource } from "../lib/trainer.ts";

/**
 * Training batches of a loader, one epoch at a time (the loader itself runs on across epochs).
 *
 * @example
 * ```ts
 * import { makeSyntheticDataset } from "../lib/data/synthetic.ts";
 * import { BatchLoader } from "../lib/data/loader.ts";
 * import { trainSource } from "./data_sources.ts";
 * const src = trainSource(new BatchLoader(makeSyntheticDataset({ trainCount: 3 }), "train", { batchSize: 2, worker: false }));
 * console.log(src.batchesPerEpoch); // 2
 * ```
 */
export function trainSource(loader: BatchLoader): TrainBatchSource {
  let done = false;
  return {
    batchesPerEpoch: loader.batchesPerEpoch,
    startEpoch: () => {
      done = false;
    },
    next: async (): Promise<LabelledBatch | null> => {
      if (done) return null;
      const b = await loader.next();
      if (b.last) done = true;
      return b;
    },
    state: () => loader.state(),
    restore: (s: unknown) => {
      loader.setState(s as LoaderState);
      done = false;
    },
  };
}

/**
 * One ordered pass over a (non-shuffled, non-augmented) loader per call.
 *
 * @example
 * ```ts
 * import { makeSyntheticDataset } from "../lib/data/synthetic.ts";
 * import { BatchLoader } from "../lib/data/loader.ts";
 * import { evalSource } from "./data_sources.ts";
 * const src = evalSource(new BatchLoader(makeSyntheticDataset({ testCount: 5 }), "test", { batchSize: 2, worker: false }));
 * let n = 0;
 * for await (const b of src.batches()) n += b.n;
 * console.log(n); // 5
 * ```
 */
export function evalSource(loader: BatchLoader): EvalBatchSource {
  return { count: loader.size, batches: () => loader.epochBatches() };
}

/** Images and labels of one split held in memory. */
export interface ArraySplit {
  /** `count * C * H * W` pixel bytes (0-255), CHW per image. */
  images: Uint8Array;
  /** One label in [0, numClasses) per image. */
  labels: Int32Array | number[];
}

/** Options of {@link datasetFromArrays}. */
export interface ArrayDatasetOptions {
  /** `[C, H, W]` of every image. */
  shape: [number, number, number];
  /** Number of classes. */
  numClasses: number;
  /** Training split. */
  train: ArraySplit;
  /** Test split. */
  test: ArraySplit;
  /** Name used in reports and file names (default `arrays`). */
  name?: string;
  /** Class names (default `0`, `1`, ...). */
  classNames?: string[];
  /** Normalisation mean per channel (default: the training split's statistics). */
  mean?: number[];
  /** Normalisation std per channel (default: the training split's statistics). */
  std?: number[];
}

/**
 * A dataset from in-memory arrays (pixels copied to shared memory for the batch loader),
 * checked like every other dataset.
 *
 * @example
 * ```ts
 * import { datasetFromArrays } from "./data_sources.ts";
 * const ds = datasetFromArrays({
 *   shape: [1, 2, 2], numClasses: 2,
 *   train: { images: new Uint8Array([0, 0, 255, 255, 255, 255, 0, 0]), labels: [0, 1] },
 *   test: { images: new Uint8Array(4), labels: [0] },
 * });
 * console.log(ds.train.count, ds.mean, ds.std); // 2 [ 0.5 ] [ 0.5 ]
 * ```
 */
export function datasetFromArrays(o: ArrayDatasetOptions): ImageDataset {
  const split = (s: ArraySplit): ImageSplit => {
    const images = allocPixels(s.images.length);
    images.set(s.images);
    return { count: s.labels.length, images, labels: Int32Array.from(s.labels) };
  };
  const train = split(o.train), test = split(o.test);
  const stats = o.mean && o.std ? { mean: o.mean, std: o.std } : channelStats(train, o.shape);
  const ds: ImageDataset = {
    name: o.name ?? "arrays",
    numClasses: o.numClasses,
    classNames: o.classNames ?? Array.from({ length: o.numClasses }, (_, i) => String(i)),
    shape: o.shape,
    mean: o.mean ?? stats.mean,
    std: o.std ?? stats.std.map((s) => s > 0 ? s : 1),
    train,
    test,
  };
  checkDataset(ds);
  return ds;
}
