/**
 * CIFAR-10 and CIFAR-100 from the official binary distributions, either extracted
 * (`cifar-10-batches-bin/`, `cifar-100-binary/`) or straight from the `.tar.gz`.
 * Records are `label byte(s) + 3072 pixel bytes` (R, G, B planes of 32x32, i.e. CHW already).
 * The same layout is written by {@link encodeCifarRecords} and {@link writeCifarFolder}
 * (data sets in the official format for tests and benchmarks, where the real one need not be).
 *
 * @example
 * ```ts
 * import { parseCifarRecords, CIFAR_SPECS } from "./cifar.ts";
 * const rec = new Uint8Array(3073); rec[0] = 7;
 * const split = parseCifarRecords([{ bytes: rec, source: "one.bin" }], CIFAR_SPECS.cifar10);
 * console.log(split.count, split.labels[0]); // 1 7
 * ```
 * @module
 */

import { gunzip, readTar } from "./archive.ts";
import { bytesDigest, type Checksum, describeChecksum } from "./checksum.ts";
import {
  allocPixels,
  DataError,
  type DataProgressFn,
  type ImageDataset,
  type ImageSplit,
  readDataFile,
} from "./dataset.ts";

/** The two CIFAR variants. */
export type CifarKind = "cifar10" | "cifar100";

/** Where a CIFAR variant lives and how its records look. */
export interface CifarSpec {
  /** Dataset name. */
  kind: CifarKind;
  /** Official archive file name. */
  archive: string;
  /** Official download URL. */
  url: string;
  /** Published checksum of the archive. */
  checksum: Checksum;
  /** Folder the archive extracts to. */
  folder: string;
  /** Training record files inside the folder, in order. */
  trainFiles: string[];
  /** Test record file inside the folder. */
  testFile: string;
  /** Label bytes before the pixels of each record. */
  labelBytes: number;
  /** Which of those label bytes is the class (CIFAR-100: the fine label). */
  labelIndex: number;
  /** Class-name file inside the folder. */
  namesFile: string;
  /** Number of classes. */
  numClasses: number;
  /** Normalisation mean (the paper's code). */
  mean: number[];
  /** Normalisation std (the paper's code). */
  std: number[];
}

/** Shape of every CIFAR image. */
export const CIFAR_SHAPE: [number, number, number] = [3, 32, 32];
const RECORD_PIXELS = 3 * 32 * 32;

/**
 * The two official binary distributions. MD5s are the ones the dataset page
 * (https://www.cs.toronto.edu/~kriz/cifar.html) publishes next to each archive; torchvision pins
 * the same page's values for the python archives.
 */
export const CIFAR_SPECS: Record<CifarKind, CifarSpec> = {
  cifar10: {
    kind: "cifar10",
    archive: "cifar-10-binary.tar.gz",
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    checksum: { md5: "c32a1d4ab5d03f1284b67883e8d87530" },
    folder: "cifar-10-batches-bin",
    trainFiles: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
    testFile: "test_batch.bin",
    labelBytes: 1,
    labelIndex: 0,
    namesFile: "batches.meta.txt",
    numClasses: 10,
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.2470, 0.2435, 0.2616],
  },
  cifar100: {
    kind: "cifar100",
    archive: "cifar-100-binary.tar.gz",
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    checksum: { md5: "03b5dce01913d631647c71ecec9e9cb8" },
    folder: "cifar-100-binary",
    trainFiles: ["train.bin"],
    testFile: "test.bin",
    labelBytes: 2,
    labelIndex: 1,
    namesFile: "fine_label_names.txt",
    numClasses: 100,
    mean: [0.5071, 0.4867, 0.4408],
    std: [0.2675, 0.2565, 0.2761],
  },
};

/** One record file's bytes and the name used in errors. */
export interface RecordFile {
  /** File contents. */
  bytes: Uint8Array;
  /** Path (or `archive:member`) for error messages. */
  source: string;
}

/**
 * Concatenates CIFAR record files into one split; a file that is not a whole number of
 * records, or a label out of range, is a {@link DataError} naming the file.
 *
 * @example
 * ```ts
 * import { parseCifarRecords, CIFAR_SPECS } from "./cifar.ts";
 * try { parseCifarRecords([{ bytes: new Uint8Array(100), source: "short.bin" }], CIFAR_SPECS.cifar10); }
 * catch (e) { console.log((e as Error).message); } // short.bin: truncated CIFAR record file ...
 * ```
 */
export function parseCifarRecords(files: readonly RecordFile[], spec: CifarSpec): ImageSplit {
  const recordSize = spec.labelBytes + RECORD_PIXELS;
  let count = 0;
  for (const f of files) {
    if (f.bytes.length === 0 || f.bytes.length % recordSize !== 0) {
      throw new DataError(
        `${f.source}: truncated CIFAR record file (${f.bytes.length} bytes is not a whole number of ` +
          `${recordSize}-byte ${spec.kind} records)`,
      );
    }
    count += f.bytes.length / recordSize;
  }
  const images = allocPixels(count * RECORD_PIXELS);
  const labels = new Int32Array(count);
  let i = 0;
  for (const f of files) {
    const n = f.bytes.length / recordSize;
    for (let r = 0; r < n; r++, i++) {
      const rec = r * recordSize;
      const label = f.bytes[rec + spec.labelIndex];
      if (label >= spec.numClasses) {
        throw new DataError(
          `${f.source}: record ${r} has label ${label}, ${spec.kind} has ${spec.numClasses} classes`,
        );
      }
      labels[i] = label;
      images.set(f.bytes.subarray(rec + spec.labelBytes, rec + recordSize), i * RECORD_PIXELS);
    }
  }
  return { count, images, labels };
}

/** Options of {@link encodeCifarRecords}. */
export interface CifarEncodeOptions {
  /**
   * CIFAR-100 only: each record's coarse label in [0, 20), the byte before the fine label
   * (default: the fine label mod 20, a valid stand-in; the reader keeps only the fine label).
   */
  coarseLabels?: ArrayLike<number>;
}

/**
 * Coarse classes of CIFAR-100 (its first label byte).
 *
 * @example
 * ```ts
 * import { CIFAR100_COARSE_CLASSES } from "./cifar.ts";
 * console.log(CIFAR100_COARSE_CLASSES); // 20
 * ```
 */
export const CIFAR100_COARSE_CLASSES = 20;

/**
 * The official binary records of a split, the inverse of {@link parseCifarRecords}: per image
 * its label byte(s) (CIFAR-10: the label; CIFAR-100: coarse, then fine label) and its 3072
 * pixel bytes (R, G, B planes of 32x32). A split of another shape, a label out of range or
 * coarse labels for CIFAR-10 throw, naming the problem.
 *
 * @example
 * ```ts
 * import { CIFAR_SPECS, encodeCifarRecords, parseCifarRecords } from "./cifar.ts";
 * const split = { count: 2, images: new Uint8Array(2 * 3072).fill(9), labels: new Int32Array([3, 42]) };
 * const bytes = encodeCifarRecords(split, CIFAR_SPECS.cifar100, { coarseLabels: [1, 2] });
 * console.log(bytes.length, bytes[3074], bytes[3075]); // 6148 2 42
 * const back = parseCifarRecords([{ bytes, source: "train.bin" }], CIFAR_SPECS.cifar100);
 * console.log(Array.from(back.labels), back.images[5]); // [3, 42] 9
 * ```
 */
export function encodeCifarRecords(
  split: ImageSplit,
  spec: CifarSpec,
  opts: CifarEncodeOptions = {},
): Uint8Array {
  const { count, images, labels } = split;
  if (images.length !== count * RECORD_PIXELS || labels.length !== count) {
    throw new Error(
      `${spec.kind} records: ${count} images need ${
        count * RECORD_PIXELS
      } pixel bytes and ${count} labels, ` +
        `got ${images.length} and ${labels.length}`,
    );
  }
  const coarse = opts.coarseLabels;
  if (coarse && spec.labelBytes !== 2) throw new Error(`${spec.kind} records have no coarse labels`);
  if (coarse && coarse.length !== count) {
    throw new Error(`${spec.kind} records: ${count} images, ${coarse.length} coarse labels`);
  }
  const label = (v: number, classes: number, what: string, i: number) => {
    if (!(Number.isInteger(v) && v >= 0 && v < classes)) {
      throw new Error(`${spec.kind} records: image ${i} has ${what} ${v}, expected 0 to ${classes - 1}`);
    }
    return v;
  };
  const recordSize = spec.labelBytes + RECORD_PIXELS;
  const out = new Uint8Array(count * recordSize);
  for (let i = 0; i < count; i++) {
    const rec = i * recordSize;
    out[rec + spec.labelIndex] = label(labels[i], spec.numClasses, "label", i);
    if (spec.labelBytes === 2) {
      out[rec] = coarse
        ? label(coarse[i], CIFAR100_COARSE_CLASSES, "coarse label", i)
        : labels[i] % CIFAR100_COARSE_CLASSES;
    }
    out.set(images.subarray(i * RECORD_PIXELS, (i + 1) * RECORD_PIXELS), rec + spec.labelBytes);
  }
  return out;
}

/** What {@link cifarFiles} and {@link writeCifarFolder} lay out. */
export interface CifarContents {
  /** Training split (CIFAR-10: divided in order over its five `data_batch_*.bin`). */
  train: ImageSplit;
  /** Test split. */
  test: ImageSplit;
  /** Class names for the names file (default `class_0`, `class_1`, ...). */
  classNames?: readonly string[];
  /** CIFAR-100 only: coarse labels of the training and test records (default: fine label mod 20). */
  coarseLabels?: { train: ArrayLike<number>; test: ArrayLike<number> };
}

/**
 * The files of an extracted official distribution (`spec.folder`'s contents), by name: the
 * training record files, the test record file and the class-names file, which
 * {@link readCifarFolder} and {@link readCifarArchive} read back. CIFAR-10 needs at least one
 * training image per `data_batch_*.bin` (an empty record file does not read back).
 *
 * @example
 * ```ts
 * import { CIFAR_SPECS, cifarFiles } from "./cifar.ts";
 * const split = (n: number) => ({ count: n, images: new Uint8Array(n * 3072), labels: new Int32Array(n) });
 * const files = cifarFiles(CIFAR_SPECS.cifar10, { train: split(5), test: split(2) });
 * console.log([...files.keys()].length, files.get("test_batch.bin")!.length); // 7 6146
 * ```
 */
export function cifarFiles(spec: CifarSpec, contents: CifarContents): Map<string, Uint8Array> {
  const { train, test } = contents;
  const batches = spec.trainFiles.length;
  if (train.count < batches) {
    throw new Error(
      `${spec.kind} needs at least ${batches} training image(s), one per training record file; got ${train.count}`,
    );
  }
  const names = contents.classNames ?? Array.from({ length: spec.numClasses }, (_, i) => `class_${i}`);
  if (names.length !== spec.numClasses) {
    throw new Error(`${spec.kind} has ${spec.numClasses} classes, got ${names.length} class names`);
  }
  const coarse = contents.coarseLabels;
  const files = new Map<string, Uint8Array>();
  spec.trainFiles.forEach((name, b) => {
    const [from, to] = [b, b + 1].map((k) => Math.floor((k * train.count) / batches));
    const part: ImageSplit = {
      count: to - from,
      images: train.images.subarray(from * RECORD_PIXELS, to * RECORD_PIXELS),
      labels: train.labels.subarray(from, to),
    };
    const coarseLabels = coarse && Array.from({ length: to - from }, (_, i) => coarse.train[from + i]);
    files.set(name, encodeCifarRecords(part, spec, { coarseLabels }));
  });
  files.set(spec.testFile, encodeCifarRecords(test, spec, { coarseLabels: coarse?.test }));
  files.set(spec.namesFile, new TextEncoder().encode(names.join("\n") + "\n"));
  return files;
}

/**
 * Writes {@link cifarFiles} into `folder` (created when missing), the layout
 * {@link readCifarFolder} reads, e.g. `<data-dir>/cifar-100-binary` for `--data-dir <data-dir>`.
 *
 * @example
 * ```ts
 * import { readCifarFolder, writeCifarFolder } from "./cifar.ts";
 * const dir = await Deno.makeTempDir();
 * const split = (n: number) => ({ count: n, images: new Uint8Array(n * 3072), labels: new Int32Array(n).fill(99) });
 * await writeCifarFolder("cifar100", dir, { train: split(3), test: split(1) });
 * console.log((await readCifarFolder("cifar100", dir)).test.labels); // Int32Array(1) [ 99 ]
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeCifarFolder(
  kind: CifarKind,
  folder: string,
  contents: CifarContents,
): Promise<void> {
  const files = cifarFiles(CIFAR_SPECS[kind], contents);
  await Deno.mkdir(folder, { recursive: true });
  for (const [name, bytes] of files) await Deno.writeFile(`${folder.replace(/\/+$/, "")}/${name}`, bytes);
}

/**
 * Class names from a names file (`batches.meta.txt`, `fine_label_names.txt`): one per line,
 * blank lines ignored.
 *
 * @example
 * ```ts
 * import { parseClassNames } from "./cifar.ts";
 * console.log(parseClassNames("cat\ndog\n\n", 2, "meta.txt")); // ["cat", "dog"]
 * ```
 */
export function parseClassNames(text: string, numClasses: number, source: string): string[] {
  const names = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== "");
  if (names.length !== numClasses) {
    throw new DataError(`${source}: ${names.length} class names, expected ${numClasses}`);
  }
  return names;
}

/** Reads members of an extracted folder or of an archive; undefined when absent. */
type MemberReader = (name: string) => Promise<Uint8Array | undefined>;

async function assemble(
  spec: CifarSpec,
  read: MemberReader,
  describe: (name: string) => string,
  testOnly = false,
): Promise<ImageDataset> {
  const load = async (name: string): Promise<RecordFile> => {
    const bytes = await read(name);
    if (!bytes) throw new DataError(`${describe(name)}: missing (needed for ${spec.kind})`);
    return { bytes, source: describe(name) };
  };
  const trainFiles: RecordFile[] = [];
  // Evaluation and analysis need only the test split: an empty training split then.
  if (!testOnly) { for (const name of spec.trainFiles) trainFiles.push(await load(name)); }
  const train = parseCifarRecords(trainFiles, spec);
  trainFiles.length = 0;
  const test = parseCifarRecords([await load(spec.testFile)], spec);
  const namesBytes = await read(spec.namesFile);
  if (!namesBytes) throw new DataError(`${describe(spec.namesFile)}: missing (class names of ${spec.kind})`);
  const classNames = parseClassNames(
    new TextDecoder().decode(namesBytes),
    spec.numClasses,
    describe(spec.namesFile),
  );
  return {
    name: spec.kind,
    numClasses: spec.numClasses,
    classNames,
    shape: [...CIFAR_SHAPE],
    mean: [...spec.mean],
    std: [...spec.std],
    train,
    test,
  };
}

/**
 * Reads an extracted CIFAR folder (the one holding `data_batch_1.bin` ... or `train.bin`).
 *
 * @example
 * ```ts
 * import { readCifarFolder } from "./cifar.ts";
 * try { await readCifarFolder("cifar10", "./data/cifar-10-batches-bin"); }
 * catch (e) { console.log((e as Error).message); } // ./data/cifar-10-batches-bin/data_batch_1.bin: missing ...
 * ```
 */
export function readCifarFolder(kind: CifarKind, folder: string, testOnly = false): Promise<ImageDataset> {
  const path = (name: string) => `${folder.replace(/\/+$/, "")}/${name}`;
  return assemble(
    CIFAR_SPECS[kind],
    async (name) => {
      try {
        return await Deno.readFile(path(name));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return undefined;
        throw new DataError(`${path(name)}: cannot read (${(e as Error).message})`);
      }
    },
    path,
    testOnly,
  );
}

/** Options of {@link readCifarArchive}. */
export interface CifarArchiveOptions {
  /** Verify the archive against the published checksum first (default true). */
  verify?: boolean;
  /** Progress while the archive is read and decompressed. */
  onProgress?: DataProgressFn;
  /** Skip the training split (evaluation needs only the test split). */
  testOnly?: boolean;
}

/**
 * Reads CIFAR directly from the official `.tar.gz` (decompressed in memory, nothing written).
 *
 * @example
 * ```ts
 * import { readCifarArchive } from "./cifar.ts";
 * try { await readCifarArchive("cifar100", "./data/cifar-100-binary.tar.gz"); }
 * catch (e) { console.log((e as Error).message); }
 * ```
 */
export async function readCifarArchive(
  kind: CifarKind,
  archivePath: string,
  opts: CifarArchiveOptions = {},
): Promise<ImageDataset> {
  const spec = CIFAR_SPECS[kind];
  const bytes = await readDataFile(archivePath);
  if (opts.verify ?? true) {
    const { algorithm, hex } = describeChecksum(spec.checksum);
    opts.onProgress?.({ stage: "read", what: `verifying ${archivePath}`, done: 0, total: null });
    const actual = bytesDigest(bytes, algorithm);
    if (actual !== hex) {
      throw new DataError(
        `${archivePath}: checksum mismatch, expected ${algorithm} ${hex} of the official ${spec.archive}, got ${actual}`,
      );
    }
  }
  opts.onProgress?.({ stage: "read", what: archivePath, done: 0, total: null });
  const members = readTar(gunzip(bytes, archivePath), archivePath);
  const prefix = `${spec.folder}/`;
  return assemble(
    spec,
    (name) => Promise.resolve(members.get(prefix + name)),
    (name) => `${archivePath}:${prefix}${name}`,
    opts.testOnly ?? false,
  );
}
