import { fashionMnistTest } from "./test_utils.ts";
import assert from "node:assert/strict";
import { gunzip, gzip } from "../lib/data/archive.ts";
import { bytesDigest } from "../lib/data/checksum.ts";
import { classCounts, DataError } from "../lib/data/dataset.ts";
import {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DEBIAN_DIR,
  FASHION_MNIST_FILES,
  findFashionMnist,
  readFashionMnist,
} from "../lib/data/fashion_mnist.ts";
import { parseIdx } from "../lib/data/idx.ts";

/** Debian's files (tests using them are registered with fashionMnistTest: ignored, with the reason, without the package). */
async function debianPaths() {
  const paths = await findFashionMnist([FASHION_MNIST_DEBIAN_DIR]);
  if (!paths) {
    throw new Error(
      `Fashion-MNIST not found in ${FASHION_MNIST_DEBIAN_DIR}: install it with ` +
        "`apt-get install dataset-fashion-mnist` (CI does)",
    );
  }
  return paths;
}

fashionMnistTest(
  "Debian's Fashion-MNIST: 60000/10000 images, 6000/1000 per class, standard names, train statistics",
  async () => {
    const ds = await readFashionMnist(await debianPaths());
    assert.equal(ds.name, "fashion-mnist");
    assert.deepEqual(ds.shape, [1, 28, 28]);
    assert.equal(ds.train.count, 60000);
    assert.equal(ds.test.count, 10000);
    assert.equal(ds.train.images.length, 60000 * 784);
    assert.deepEqual(classCounts(ds.train, 10), new Array(10).fill(6000));
    assert.deepEqual(classCounts(ds.test, 10), new Array(10).fill(1000));
    assert.deepEqual(ds.classNames, FASHION_MNIST_CLASSES);
    assert.equal(ds.classNames[9], "Ankle boot");
    // Published statistics of the training split: mean 0.2860, std 0.3530.
    assert.ok(Math.abs(ds.mean[0] - 0.2860) < 5e-4, `mean ${ds.mean[0]}`);
    assert.ok(Math.abs(ds.std[0] - 0.3530) < 5e-4, `std ${ds.std[0]}`);
    // Well-known first labels of the official files: train starts 9 (Ankle boot), 0, 0, 3; test 9, 2, 1, 1.
    assert.deepEqual(Array.from(ds.train.labels.subarray(0, 4)), [9, 0, 0, 3]);
    assert.deepEqual(Array.from(ds.test.labels.subarray(0, 4)), [9, 2, 1, 1]);
  },
);

fashionMnistTest("Debian's files hold the official content (decompressed MD5s)", async () => {
  const paths = await debianPaths();
  for (const [role, file] of Object.entries(FASHION_MNIST_FILES)) {
    const path = paths[role as keyof typeof paths];
    const raw = gunzip(await Deno.readFile(path), path);
    assert.equal(bytesDigest(raw, "md5"), file.rawMd5, path);
  }
});

Deno.test("IDX: wrong magic, wrong type and truncated data are DataErrors naming the file", () => {
  assert.throws(
    () => parseIdx(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0]), "t10k-labels-idx1-ubyte"),
    (e) =>
      e instanceof DataError &&
      e.message === "t10k-labels-idx1-ubyte: not an IDX file (magic 50 4b 03 04, expected 00 00 08 <ndims>)",
  );
  assert.throws(
    () => parseIdx(new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]), "f.idx"),
    /f\.idx: IDX element type 0xd/,
  );
  const header = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28];
  const cut = gzip(new Uint8Array([...header, ...new Array(784 * 2 - 1).fill(0)]));
  assert.throws(
    () => parseIdx(cut, "images.gz"),
    (e) =>
      e instanceof DataError &&
      e.message === "images.gz: IDX data has 1567 bytes, dimensions [2,28,28] need 1568",
  );
  const ok = parseIdx(gzip(new Uint8Array([...header, ...new Array(784 * 2).fill(7)])), "images.gz");
  assert.deepEqual(ok.dims, [2, 28, 28]);
  assert.equal(ok.data.length, 1568);
});

fashionMnistTest("a local copy that is not the official file is rejected with both MD5s", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const paths = await debianPaths();
    for (const [role, file] of Object.entries(FASHION_MNIST_FILES)) {
      await Deno.copyFile(paths[role as keyof typeof paths], `${dir}/${file.name}.gz`);
    }
    // Replace the test labels by a valid IDX file with other content (raw, not gzipped).
    const labels = new Uint8Array(8 + 10000);
    labels.set([0, 0, 8, 1, 0, 0, 0x27, 0x10]);
    await Deno.remove(`${dir}/t10k-labels-idx1-ubyte.gz`);
    await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte`, labels);
    const found = await findFashionMnist([`${dir}/nothing-here`, dir]);
    assert.equal(found?.testLabels, `${dir}/t10k-labels-idx1-ubyte`);
    await assert.rejects(
      readFashionMnist(found!),
      (e) =>
        e instanceof DataError &&
        e.message.startsWith(`${dir}/t10k-labels-idx1-ubyte: not the official t10k-labels-idx1-ubyte`) &&
        e.message.includes(FASHION_MNIST_FILES.testLabels.rawMd5),
    );
    // Without verification the same file reads (all labels 0).
    const ds = await readFashionMnist(found!, { verify: false });
    assert.deepEqual(classCounts(ds.test, 10)[0], 10000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
