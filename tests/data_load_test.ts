import assert from "node:assert/strict";
import { encodePng } from "../lib/deps.ts";
import { gzip, writeTar } from "../lib/data/archive.ts";
import { DataError } from "../lib/data/dataset.ts";
import { FASHION_MNIST_DEBIAN_DIR } from "../lib/data/fashion_mnist.ts";
import { loadDataset } from "../lib/data/load.ts";
import { fashionMnistTest, SHARED_DIR, sharedTest } from "./test_utils.ts";

const CIFAR10_DIR = new URL("data/cifar-10-batches-bin/", SHARED_DIR);

function sharedCifar10(): { records: Uint8Array; meta: Uint8Array } {
  try {
    return {
      records: Deno.readFileSync(new URL("test_batch.first100.bin", CIFAR10_DIR)),
      meta: Deno.readFileSync(new URL("batches.meta.txt", CIFAR10_DIR)),
    };
  } catch {
    throw new Error(`shared test material missing under ${CIFAR10_DIR.href}`);
  }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

sharedTest("cifar10 from an extracted folder in dataDir (or dataDir itself)", async () => {
  await withDir(async (dir) => {
    const { records, meta } = sharedCifar10();
    const folder = `${dir}/cifar-10-batches-bin`;
    await Deno.mkdir(folder);
    for (let i = 0; i < 5; i++) {
      await Deno.writeFile(
        `${folder}/data_batch_${i + 1}.bin`,
        records.slice(i * 3073 * 10, (i + 1) * 3073 * 10),
      );
    }
    await Deno.writeFile(`${folder}/test_batch.bin`, records.slice(50 * 3073));
    await Deno.writeFile(`${folder}/batches.meta.txt`, meta);
    const events: string[] = [];
    const ds = await loadDataset("cifar10", {
      dataDir: dir,
      onProgress: (p) => events.push(`${p.stage} ${p.what}`),
    });
    assert.equal(ds.train.count, 50);
    assert.equal(ds.test.count, 50);
    assert.equal(ds.classNames[0], "airplane");
    assert.deepEqual(events, [`read ${folder}`]);
    const direct = await loadDataset("cifar10", { dataDir: folder });
    assert.deepEqual(direct.test.labels, ds.test.labels);
  });
});

sharedTest("cifar archive in dataDir is verified against the official checksum", async () => {
  await withDir(async (dir) => {
    const { records, meta } = sharedCifar10();
    const tar = writeTar([
      ...[1, 2, 3, 4, 5].map((i) => ({
        name: `cifar-10-batches-bin/data_batch_${i}.bin`,
        data: records.slice(0, 3073),
      })),
      { name: "cifar-10-batches-bin/test_batch.bin", data: records.slice(0, 3073) },
      { name: "cifar-10-batches-bin/batches.meta.txt", data: meta },
    ]);
    await Deno.writeFile(`${dir}/cifar-10-binary.tar.gz`, gzip(tar));
    await assert.rejects(
      loadDataset("cifar10", { dataDir: dir }),
      (e) =>
        e instanceof DataError &&
        e.message.startsWith(
          `${dir}/cifar-10-binary.tar.gz: checksum mismatch, expected md5 c32a1d4ab5d03f1284b67883e8d87530`,
        ),
    );
  });
});

Deno.test("missing datasets: the error says what was looked for where and how to get it", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      loadDataset("cifar100", { dataDir: dir, hint: "(CLI: --data-dir <folder> or --download)" }),
      (e) =>
        e instanceof DataError &&
        e.message ===
          `cifar100 not found: looked for ${dir}/cifar-100-binary/train.bin (extracted) and ${dir}/cifar-100-binary.tar.gz; ` +
            `download https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz (md5 03b5dce01913d631647c71ecec9e9cb8) into ${dir}, ` +
            `or allow downloading. (CLI: --data-dir <folder> or --download)`,
    );
    await assert.rejects(
      loadDataset("fashion-mnist", { dataDir: dir, systemDirs: [] }),
      (e) =>
        e instanceof DataError &&
        e.message.startsWith(
          `fashion-mnist not found: looked for train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],`,
        ) &&
        e.message.includes(`in ${dir}, ${dir}/fashion-mnist;`) && e.message.includes("dataset-fashion-mnist"),
    );
    await assert.rejects(
      loadDataset("imagenet", { dataDir: dir }),
      (e) =>
        e instanceof DataError &&
        e.message.startsWith(
          `unknown dataset "imagenet": use cifar10, cifar100, fashion-mnist, synthetic or the path of a PNG folder`,
        ),
    );
  });
});

fashionMnistTest("fashion-mnist is found in Debian's folder when dataDir has none", async () => {
  await withDir(async (dir) => {
    const ds = await loadDataset("fashion-mnist", { dataDir: dir, systemDirs: [FASHION_MNIST_DEBIAN_DIR] });
    assert.equal(ds.train.count, 60000);
    assert.equal(ds.numClasses, 10);
  });
});

Deno.test("synthetic and PNG-folder datasets load by name and by path", async () => {
  const syn = await loadDataset("synthetic", {
    synthetic: { numClasses: 3, trainCount: 30, testCount: 9, shape: [3, 8, 8] },
  });
  assert.equal(syn.numClasses, 3);
  assert.equal(syn.train.count, 30);
  await withDir(async (dir) => {
    for (const split of ["train", "test"]) {
      for (const cls of ["b", "a"]) {
        await Deno.mkdir(`${dir}/${split}/${cls}`, { recursive: true });
        await Deno.writeFile(
          `${dir}/${split}/${cls}/0.png`,
          encodePng({
            width: 4,
            height: 4,
            channels: 3,
            depth: 8,
            data: new Uint8Array(48).fill(cls === "a" ? 10 : 200),
          }),
        );
      }
    }
    const ds = await loadDataset(dir);
    assert.deepEqual(ds.classNames, ["a", "b"]);
    assert.deepEqual(ds.shape, [3, 4, 4]);
    assert.ok(Math.abs(ds.mean[0] - 105 / 255) < 1e-12);
  });
});
