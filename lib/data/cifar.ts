/**
 * CIFAR-10 and CIFAR-100 from the official binary distributions, either extracted
 * (`cifar-10-batches-bin/`, `cifar-100-binary/`) or straight from the `.tar.gz`.
 * Records are `label byte(s) + 3072 pixel bytes` (R, G, B planes of 32x32, i.e. CHW already).
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
