import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { gzip, writeTar } from "../lib/data/archive.ts";
import {
  CIFAR_SPECS,
  cifarFiles,
  type CifarKind,
  encodeCifarRecords,
  parseCifarRecords,
  readCifarArchive,
  readCifarFolder,
  writeCifarFolder,
} from "../lib/data/cifar.ts";
import { DataError, type ImageSplit } from "../lib/data/dataset.ts";
import { Rng } from "../lib/rng.ts";
import { SHARED_DIR, sharedTest } from "./test_utils.ts";
import { CIFAR10_CLASSES } from "../lib/data/metadata.ts";

const CIFAR10_DIR = new URL("data/cifar-10-batches-bin/", SHARED_DIR);
const CIFAR100_DIR = new URL("data/cifar-100-binary/", SHARED_DIR);

/** Reads a shared file, failing with a clear message when the shared material is absent. */
function shared(dir: URL, name: string): Uint8Array {
  const url = new URL(name, dir);
  try {
    return Deno.readFileSync(url);
  } catch {
    throw new Error(`shared test material missing: ${fileURLToPath(url)} (expected beside the repository)`);
  }
}

sharedTest(
  "CIFAR-10 records: labels are the first 100 of the official test labels, pixels are the record bytes",
  () => {
    const bytes = shared(CIFAR10_DIR, "test_batch.first100.bin");
    const official = shared(CIFAR10_DIR, "test_labels.official_order.bin");
    const split = parseCifarRecords([{ bytes, source: "test_batch.first100.bin" }], CIFAR_SPECS.cifar10);
    assert.equal(split.count, 100);
    assert.deepEqual(Array.from(split.labels), Array.from(official.subarray(0, 100)));
    // Image 37 is bytes [37 * 3073 + 1, 38 * 3073) of the file: R plane, G plane, B plane.
    assert.deepEqual(split.images.subarray(37 * 3072, 38 * 3072), bytes.subarray(37 * 3073 + 1, 38 * 3073));
  },
);

sharedTest("CIFAR-100 records: fine labels are the first 20 of the official (coarse, fine) list", () => {
  const bytes = shared(CIFAR100_DIR, "test.first20.bin");
  const official = shared(CIFAR100_DIR, "test_labels.official_order.bin");
  const split = parseCifarRecords([{ bytes, source: "test.first20.bin" }], CIFAR_SPECS.cifar100);
  assert.equal(split.count, 20);
  const fine = Array.from({ length: 20 }, (_, i) => official[2 * i + 1]);
  assert.deepEqual(Array.from(split.labels), fine);
  assert.deepEqual(split.images.subarray(19 * 3072), bytes.subarray(19 * 3074 + 2));
});

sharedTest("truncated record file: DataError naming the file", () => {
  const bytes = shared(CIFAR10_DIR, "test_batch.first100.bin").subarray(0, 3073 * 3 - 5);
  assert.throws(
    () => parseCifarRecords([{ bytes, source: "data/test_batch.bin" }], CIFAR_SPECS.cifar10),
    (e) => e instanceof DataError && /^data\/test_batch\.bin: truncated CIFAR record file/.test(e.message),
  );
});

sharedTest("label out of range: DataError naming the file and record", () => {
  const rec = new Uint8Array(3073 * 2);
  rec[3073] = 10;
  assert.throws(
    () => parseCifarRecords([{ bytes: rec, source: "x.bin" }], CIFAR_SPECS.cifar10),
    /x\.bin: record 1 has label 10, cifar10 has 10 classes/,
  );
});

/** A small fake CIFAR-10 distribution: the shared records split into 5 train batches + test. */
function cifar10Members(): Map<string, Uint8Array> {
  const records = shared(CIFAR10_DIR, "test_batch.first100.bin");
  const rec = (from: number, to: number) => records.slice(from * 3073, to * 3073);
  const m = new Map<string, Uint8Array>();
  for (let i = 0; i < 5; i++) m.set(`data_batch_${i + 1}.bin`, rec(i * 16, (i + 1) * 16));
  m.set("test_batch.bin", rec(80, 100));
  m.set("batches.meta.txt", shared(CIFAR10_DIR, "batches.meta.txt"));
  return m;
}

sharedTest(
  "CIFAR-10 from a .tar.gz archive: batches concatenated in order, names from batches.meta.txt",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const members = cifar10Members();
      const entries = [...members].map(([name, data]) => ({ name: `cifar-10-batches-bin/${name}`, data }));
      await Deno.writeFile(`${dir}/cifar-10-binary.tar.gz`, gzip(writeTar(entries)));
      const ds = await readCifarArchive("cifar10", `${dir}/cifar-10-binary.tar.gz`, { verify: false });
      const official = shared(CIFAR10_DIR, "test_labels.official_order.bin");
      assert.equal(ds.train.count, 80);
      assert.equal(ds.test.count, 20);
      assert.deepEqual(Array.from(ds.train.labels), Array.from(official.subarray(0, 80)));
      assert.deepEqual(Array.from(ds.test.labels), Array.from(official.subarray(80, 100)));
      assert.deepEqual(ds.classNames, CIFAR10_CLASSES);
      assert.deepEqual(ds.shape, [3, 32, 32]);
      assert.deepEqual(ds.mean, [0.4914, 0.4822, 0.4465]);
      assert.deepEqual(ds.std, [0.2470, 0.2435, 0.2616]);
      assert.ok(ds.train.images.buffer instanceof SharedArrayBuffer);

      // With verification on, this home-made archive is rejected: both checksums are named.
      await assert.rejects(
        readCifarArchive("cifar10", `${dir}/cifar-10-binary.tar.gz`),
        (e) =>
          e instanceof DataError && e.message.includes("checksum mismatch") &&
          e.message.includes("c32a1d4ab5d03f1284b67883e8d87530") && /got [0-9a-f]{32}$/.test(e.message),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

sharedTest(
  "CIFAR-100 from a .tar.gz archive and from an extracted folder give the same dataset",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const records = shared(CIFAR100_DIR, "test.first20.bin");
      const members = new Map<string, Uint8Array>([
        ["train.bin", records.slice(0, 15 * 3074)],
        ["test.bin", records.slice(15 * 3074)],
        ["fine_label_names.txt", shared(CIFAR100_DIR, "fine_label_names.txt")],
        ["coarse_label_names.txt", shared(CIFAR100_DIR, "coarse_label_names.txt")],
      ]);
      const entries = [...members].map(([name, data]) => ({ name: `./cifar-100-binary/${name}`, data }));
      await Deno.writeFile(`${dir}/c100.tar.gz`, gzip(writeTar(entries)));
      await Deno.mkdir(`${dir}/cifar-100-binary`);
      for (const [name, data] of members) await Deno.writeFile(`${dir}/cifar-100-binary/${name}`, data);

      const fromArchive = await readCifarArchive("cifar100", `${dir}/c100.tar.gz`, { verify: false });
      const fromFolder = await readCifarFolder("cifar100", `${dir}/cifar-100-binary`);
      for (const ds of [fromArchive, fromFolder]) {
        assert.equal(ds.numClasses, 100);
        assert.equal(ds.classNames.length, 100);
        assert.equal(ds.classNames[0], "apple");
        assert.equal(ds.classNames[99], "worm");
        assert.equal(ds.train.count, 15);
        assert.equal(ds.test.count, 5);
        assert.deepEqual(ds.mean, [0.5071, 0.4867, 0.4408]);
        assert.deepEqual(ds.std, [0.2675, 0.2565, 0.2761]);
      }
      assert.deepEqual(fromArchive.train.images, fromFolder.train.images);
      assert.deepEqual(fromArchive.test.labels, fromFolder.test.labels);
      assert.equal(
        fromFolder.test.labels[0],
        shared(CIFAR100_DIR, "test_labels.official_order.bin")[2 * 15 + 1],
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

sharedTest(
  "extracted folder with a missing batch or a truncated batch: DataError naming the file",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const members = cifar10Members();
      for (const [name, data] of members) await Deno.writeFile(`${dir}/${name}`, data);
      await Deno.remove(`${dir}/data_batch_3.bin`);
      await assert.rejects(
        readCifarFolder("cifar10", dir),
        (e) =>
          e instanceof DataError && e.message === `${dir}/data_batch_3.bin: missing (needed for cifar10)`,
      );
      await Deno.writeFile(`${dir}/data_batch_3.bin`, members.get("data_batch_3.bin")!.subarray(0, 5000));
      await assert.rejects(
        readCifarFolder("cifar10", dir),
        (e) =>
          e instanceof DataError &&
          e.message.startsWith(`${dir}/data_batch_3.bin: truncated CIFAR record file`),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** `count` images of seeded random pixels with seeded labels in [0, classes). */
function randomSplit(count: number, classes: number, seed: number): ImageSplit {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: count * 3072 }, () => rng.int(256));
  return { count, images, labels: Int32Array.from({ length: count }, () => rng.int(classes)) };
}

for (const kind of ["cifar10", "cifar100"] as CifarKind[]) {
  const spec = CIFAR_SPECS[kind];
  Deno.test(`${kind} records written by encodeCifarRecords read back with the same labels and pixels`, () => {
    const split = randomSplit(13, spec.numClasses, 3);
    // Coarse labels other than the default (fine mod 20), so the given ones are seen to be written.
    const coarseLabels = kind === "cifar100" ? Array.from(split.labels, (l) => (l * 7 + 3) % 20) : undefined;
    const bytes = encodeCifarRecords(split, spec, { coarseLabels });
    assert.equal(bytes.length, 13 * (spec.labelBytes + 3072));
    // The label byte(s) lead each record: CIFAR-100's coarse label, then its fine label.
    assert.equal(bytes[5 * bytes.length / 13 + spec.labelIndex], split.labels[5]);
    if (coarseLabels) assert.equal(bytes[5 * bytes.length / 13], coarseLabels[5]);
    if (coarseLabels) {
      const plain = encodeCifarRecords(split, spec);
      assert.equal(plain[5 * plain.length / 13], split.labels[5] % 20, "default coarse label: fine mod 20");
    }
    const back = parseCifarRecords([{ bytes, source: "w.bin" }], spec);
    assert.equal(back.count, 13);
    assert.deepEqual(back.labels, split.labels);
    assert.deepEqual(Array.from(back.images), Array.from(split.images));
  });

  Deno.test(`${kind} folder and archive written from cifarFiles read back as the splits`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const train = randomSplit(12, spec.numClasses, 4), test = randomSplit(3, spec.numClasses, 5);
      const classNames = Array.from({ length: spec.numClasses }, (_, i) => `name ${i}`);
      await writeCifarFolder(kind, `${dir}/${spec.folder}`, { train, test, classNames });
      const entries = [...cifarFiles(spec, { train, test })].map(([name, data]) => ({
        name: `${spec.folder}/${name}`,
        data,
      }));
      await Deno.writeFile(`${dir}/${spec.archive}`, gzip(writeTar(entries)));
      const fromFolder = await readCifarFolder(kind, `${dir}/${spec.folder}`);
      const fromArchive = await readCifarArchive(kind, `${dir}/${spec.archive}`, { verify: false });
      for (const ds of [fromFolder, fromArchive]) {
        assert.deepEqual(ds.train.labels, train.labels);
        assert.deepEqual(Array.from(ds.train.images), Array.from(train.images));
        assert.deepEqual(ds.test.labels, test.labels);
        assert.deepEqual(Array.from(ds.test.images), Array.from(test.images));
      }
      assert.deepEqual(fromFolder.classNames, classNames);
      assert.equal(fromArchive.classNames[7], "class_7");
      if (kind === "cifar10") {
        // 12 training images over the five batches, in order: 2, 2, 3, 2, 3.
        const sizes = spec.trainFiles.map((f) => Deno.statSync(`${dir}/${spec.folder}/${f}`).size / 3073);
        assert.deepEqual(sizes, [2, 2, 3, 2, 3]);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("encodeCifarRecords and cifarFiles refuse what would not read back, naming the problem", () => {
  const split = randomSplit(2, 10, 6);
  assert.throws(
    () => encodeCifarRecords({ ...split, labels: new Int32Array([1, 10]) }, CIFAR_SPECS.cifar10),
    /^Error: cifar10 records: image 1 has label 10, expected 0 to 9$/,
  );
  assert.throws(
    () => encodeCifarRecords(split, CIFAR_SPECS.cifar10, { coarseLabels: [0, 0] }),
    /cifar10 records have no coarse labels/,
  );
  assert.throws(
    () => encodeCifarRecords(split, CIFAR_SPECS.cifar100, { coarseLabels: [0, 20] }),
    /image 1 has coarse label 20, expected 0 to 19/,
  );
  assert.throws(
    () => encodeCifarRecords({ ...split, images: split.images.subarray(1) }, CIFAR_SPECS.cifar10),
    /2 images need 6144 pixel bytes and 2 labels, got 6143 and 2/,
  );
  assert.throws(
    () => cifarFiles(CIFAR_SPECS.cifar10, { train: split, test: split }),
    /cifar10 needs at least 5 training image\(s\), one per training record file; got 2/,
  );
});
