/**
 * Adapts the data layer's {@link BatchLoader} to the trainer's batch-source interfaces: epoch
 * boundaries for training, one ordered pass for evaluation.
 *
 * @example
 * ```ts
 * import { makeSyntheticDataset } from "../data/synthetic.ts";
 * import { BatchLoader } from "../data/loader.ts";
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

import type { LabelledBatch } from "../engines/engine.ts";
import type { BatchLoader, LoaderState } from "../data/loader.ts";
import type { EvalBatchSource, TrainBatchSource } from "../trainer.ts";

/**
 * Training batches of a loader, one epoch at a time (the loader itself runs on across epochs).
 *
 * @example
 * ```ts
 * import { makeSyntheticDataset } from "../data/synthetic.ts";
 * import { BatchLoader } from "../data/loader.ts";
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
 * import { makeSyntheticDataset } from "../data/synthetic.ts";
 * import { BatchLoader } from "../data/loader.ts";
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
