import assert from "node:assert/strict";
import { normalizationTable } from "../lib/data/augment.ts";
import { BatchLoader, type LoadedBatch, type LoaderOptions } from "../lib/data/loader.ts";
import { makeSyntheticDataset } from "../lib/data/synthetic.ts";
import type { ImageDataset } from "../lib/data/dataset.ts";

const DS = makeSyntheticDataset({ numClasses: 5, trainCount: 50, testCount: 23, shape: [3, 8, 8], seed: 11 });
const IMG = 3 * 8 * 8;

async function take(loader: BatchLoader, n: number): Promise<LoadedBatch[]> {
  const out: LoadedBatch[] = [];
  for (let i = 0; i < n; i++) out.push(await loader.next());
  return out;
}

async function withLoader<T>(
  split: "train" | "test",
  opts: LoaderOptions,
  fn: (l: BatchLoader) => Promise<T>,
): Promise<T> {
  const loader = new BatchLoader(DS, split, opts);
  try {
    return await fn(loader);
  } finally {
    await loader.close();
  }
}

function sameBatches(a: LoadedBatch[], b: LoadedBatch[]): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual([a[i].epoch, a[i].index, a[i].n], [b[i].epoch, b[i].index, b[i].n], `batch ${i}`);
    assert.deepEqual(a[i].y, b[i].y, `labels of batch ${i}`);
    assert.deepEqual(a[i].x, b[i].x, `pixels of batch ${i}`);
  }
}

Deno.test("train loader: 50 images in batches of 16 give 16, 16, 16, 2 and cover every image once per epoch", async () => {
  await withLoader("train", { batchSize: 16, seed: 1 }, async (loader) => {
    assert.equal(loader.batchesPerEpoch, 4);
    const seen: number[] = [];
    const sizes: number[] = [];
    for await (const b of loader.epochBatches()) {
      sizes.push(b.n);
      assert.equal(b.x.length, b.n * IMG);
      assert.deepEqual(b.shape, [3, 8, 8]);
      seen.push(...b.y);
    }
    assert.deepEqual(sizes, [16, 16, 16, 2]);
    assert.equal(loader.epoch, 1);
    // Every class appears exactly 10 times: each image exactly once.
    const counts = new Array(5).fill(0);
    for (const y of seen) counts[y]++;
    assert.deepEqual(counts, [10, 10, 10, 10, 10]);
    assert.equal(loader.stats().batches, 4);
    assert.equal(loader.stats().assembler, "worker");
  });
});

Deno.test("same seed gives the same batches (worker or inline), another seed and the next epoch differ", async () => {
  const a = await withLoader("train", { batchSize: 16, seed: 5 }, (l) => take(l, 8));
  const b = await withLoader(
    "train",
    { batchSize: 16, seed: 5, worker: false, prefetch: 0 },
    (l) => take(l, 8),
  );
  sameBatches(a, b);
  const c = await withLoader("train", { batchSize: 16, seed: 6 }, (l) => take(l, 1));
  assert.notDeepEqual(a[0].y, c[0].y);
  assert.notDeepEqual(a[0].y, a[4].y, "epoch 1 is shuffled differently from epoch 0");
  assert.deepEqual([a[4].epoch, a[4].index], [1, 0]);
});

Deno.test("exact resume: a loader restored from JSON state continues with identical batches", async () => {
  // Reference stream: 2.5 epochs without interruption.
  const reference = await withLoader("train", { batchSize: 16, seed: 9 }, (l) => take(l, 10));
  for (const cut of [1, 3, 4, 6]) { // mid-epoch, before the last (partial) batch, at an epoch boundary
    const saved = await withLoader("train", { batchSize: 16, seed: 9 }, async (l) => {
      await take(l, cut);
      return JSON.stringify(l.state()); // prefetched batches must not leak into the state
    });
    const resumed = await withLoader(
      "train",
      { batchSize: 16, seed: 9, worker: cut % 2 === 0 },
      (l) => {
        l.setState(JSON.parse(saved));
        assert.equal(l.epoch, reference[cut].epoch);
        return take(l, 10 - cut);
      },
    );
    sameBatches(resumed, reference.slice(cut));
  }
});

Deno.test("setState on a running loader drops its prefetched batches", async () => {
  await withLoader("train", { batchSize: 16, seed: 2, prefetch: 3 }, async (l) => {
    const first = await take(l, 2);
    const state = l.state();
    const next = await take(l, 3);
    l.setState(state);
    sameBatches(await take(l, 3), next);
    assert.equal(first.length, 2);
  });
});

Deno.test("state from another configuration is refused with a clear message", async () => {
  const state = await withLoader("train", { batchSize: 16, seed: 9 }, async (l) => {
    await l.next();
    return l.state();
  });
  await withLoader("train", { batchSize: 8, seed: 9 }, (l) => {
    assert.throws(() => l.setState(state), /loader state does not fit: batchSize is 16, this loader has 8/);
    return Promise.resolve();
  });
  await withLoader("train", { batchSize: 16, seed: 9, subset: 40 }, (l) => {
    assert.throws(() => l.setState(state), /size is 50, this loader has 40/);
    return Promise.resolve();
  });
  await withLoader("test", { batchSize: 16, seed: 9 }, (l) => {
    assert.throws(() => l.setState(state), /split is train, this loader has test/);
    return Promise.resolve();
  });
});

Deno.test("test loader: fixed order, no augmentation, exactly the normalised images, last partial batch kept", async () => {
  const table = normalizationTable(DS.mean, DS.std);
  const epochs = await withLoader(
    "test",
    { batchSize: 10 },
    async (l) => [await take(l, 3), await take(l, 3)],
  );
  for (const batches of epochs) {
    assert.deepEqual(batches.map((b) => b.n), [10, 10, 3]);
    let i = 0;
    for (const b of batches) {
      for (let k = 0; k < b.n; k++, i++) {
        assert.equal(b.y[k], DS.test.labels[i]);
        for (let p = 0; p < IMG; p += 7) {
          assert.equal(b.x[k * IMG + p], table[Math.floor(p / 64) * 256 + DS.test.images[i * IMG + p]]);
        }
      }
    }
  }
  sameBatches(epochs[0], epochs[1].map((b) => ({ ...b, epoch: 0 })));
});

Deno.test("training batches are augmented: same images as without augmentation, different pixels", async () => {
  const plain = await withLoader("train", { batchSize: 50, seed: 4, augment: false }, (l) => l.next());
  const augmented = await withLoader("train", { batchSize: 50, seed: 4 }, (l) => l.next());
  assert.deepEqual(plain.y, augmented.y, "augmentation does not change the order");
  assert.notDeepEqual(plain.x, augmented.x);
  // Each augmented image is a shifted / mirrored view: with padding 0 only flips remain.
  const flipOnly = await withLoader("train", { batchSize: 50, seed: 4, padding: 0 }, (l) => l.next());
  let flipped = 0;
  for (let k = 0; k < 50; k++) {
    const a = plain.x.subarray(k * IMG, (k + 1) * IMG), b = flipOnly.x.subarray(k * IMG, (k + 1) * IMG);
    const same = a.every((v, i) => v === b[i]);
    const mirrored = a.every((v, i) => v === b[i - (i % 8) + 7 - (i % 8)]);
    assert.ok(same || mirrored, `image ${k} is neither itself nor its mirror`);
    if (!same) flipped++;
  }
  assert.ok(flipped > 10 && flipped < 40, `flipped ${flipped} of 50`);
});

/** 200 one-channel 2x2 images whose first pixel is their index; normalisation is the identity on pixels. */
function indexedDataset(): ImageDataset {
  const images = new Uint8Array(200 * 4);
  for (let i = 0; i < 200; i++) images[i * 4] = i;
  const split = { count: 200, images, labels: Int32Array.from({ length: 200 }, (_, i) => i % 5) };
  return {
    name: "indexed",
    numClasses: 5,
    classNames: ["a", "b", "c", "d", "e"],
    shape: [1, 2, 2],
    mean: [0],
    std: [1 / 255],
    train: split,
    test: split,
  };
}

Deno.test("subset is a fixed seeded subset of the split; limit takes the first images", async () => {
  const ds = indexedDataset();
  const epochIndices = async (opts: LoaderOptions, epochs = 2) => {
    const loader = new BatchLoader(ds, "train", { augment: false, ...opts });
    try {
      const all: number[][] = [];
      for (let e = 0; e < epochs; e++) {
        const seen: number[] = [];
        for await (const b of loader.epochBatches()) {
          for (let k = 0; k < b.n; k++) seen.push(Math.round(b.x[k * 4]));
        }
        all.push(seen);
      }
      return all;
    } finally {
      await loader.close();
    }
  };
  const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
  const sub = await epochIndices({ batchSize: 8, seed: 3, subset: 20 });
  assert.equal(new Set(sub[0]).size, 20);
  assert.deepEqual(sorted(sub[0]), sorted(sub[1]), "the same 20 images every epoch");
  assert.notDeepEqual(sub[0], sub[1], "in a new order every epoch");
  const again = await epochIndices({ batchSize: 8, seed: 3, subset: 20 }, 1);
  assert.deepEqual(again[0], sub[0]);
  const other = await epochIndices({ batchSize: 8, seed: 4, subset: 20 }, 1);
  assert.notDeepEqual(sorted(other[0]), sorted(sub[0]), "another seed picks other images");
  assert.ok(Math.max(...sub[0]) > 50, "drawn from the whole split, not its start");
  const limited = await epochIndices({ batchSize: 4, limit: 6, shuffle: false }, 1);
  assert.deepEqual(limited[0], [0, 1, 2, 3, 4, 5]);
  const subLimited = await epochIndices({ batchSize: 4, seed: 3, subset: 20, limit: 6, shuffle: false }, 1);
  assert.deepEqual(subLimited[0], sorted(sub[0]).slice(0, 6));
});
