/**
 * The in-memory dataset model every reader produces and the batch loader consumes: raw uint8
 * pixels (CHW per image) plus int32 labels, so CIFAR-100's training split costs 150 MB rather
 * than 600 MB as float32. Pixels live on a SharedArrayBuffer so the loader's worker reads them
 * without a copy.
 *
 * @example
 * ```ts
 * import { allocPixels, checkDataset, type ImageDataset } from "./dataset.ts";
 * const split = { count: 1, images: allocPixels(3 * 2 * 2), labels: new Int32Array([0]) };
 * const ds: ImageDataset = {
 *   name: "tiny", numClasses: 1, classNames: ["a"], shape: [3, 2, 2],
 *   mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], train: split, test: split,
 * };
 * checkDataset(ds);
 * ```
 * @module
 */

/** One split (train or test): `count` images of the dataset's shape. */
export interface ImageSplit {
  /** Number of images. */
  count: number;
  /** Raw pixels, `count * C * H * W` bytes, CHW per image. */
  images: Uint8Array;
  /** `count` labels in [0, numClasses). */
  labels: Int32Array;
}

/** A labelled image-classification dataset held as raw pixels. */
export interface ImageDataset {
  /** Short name, e.g. `cifar100`. */
  name: string;
  /** Number of classes. */
  numClasses: number;
  /** Class names, index = label. */
  classNames: string[];
  /** `[C, H, W]` of every image. */
  shape: [number, number, number];
  /** Per-channel mean of pixel/255, used by normalisation. */
  mean: number[];
  /** Per-channel standard deviation of pixel/255, used by normalisation. */
  std: number[];
  /** Training split. */
  train: ImageSplit;
  /** Test (or validation) split. */
  test: ImageSplit;
}

/** Progress of long dataset work (downloads, decoding many files), rendered by the caller. */
export interface DataProgress {
  /** What is happening. */
  stage: "download" | "read" | "decode";
  /** The file or folder concerned. */
  what: string;
  /** Units done so far (bytes for downloads, files otherwise). */
  done: number;
  /** Units in all, null when unknown. */
  total: number | null;
}

/** Receives {@link DataProgress} events. */
export type DataProgressFn = (p: DataProgress) => void;

/**
 * A user-facing data problem (missing file, bad format). Its message is one line that names the
 * file and the problem; callers print it without a stack trace.
 *
 * @example
 * ```ts
 * import { DataError } from "./dataset.ts";
 * console.log(new DataError("x.bin: truncated").name); // DataError
 * ```
 */
export class DataError extends Error {
  /**
   * @example
   * ```ts
   * import { DataError } from "./dataset.ts";
   * console.log(new DataError("oops").message); // oops
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}

/**
 * Zeroed pixel storage on a SharedArrayBuffer (workers can read it without copying).
 *
 * @example
 * ```ts
 * import { allocPixels } from "./dataset.ts";
 * console.log(allocPixels(4).buffer instanceof SharedArrayBuffer); // true
 * ```
 */
export function allocPixels(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(n));
}

/**
 * Bytes per image, `C * H * W`.
 *
 * @example
 * ```ts
 * import { imageSize } from "./dataset.ts";
 * console.log(imageSize([3, 32, 32])); // 3072
 * ```
 */
export function imageSize(shape: readonly [number, number, number]): number {
  return shape[0] * shape[1] * shape[2];
}

/**
 * Per-channel mean and (population) standard deviation of pixel/255 over a whole split: the
 * normalisation used for Fashion-MNIST and PNG folders, computed from their training split.
 *
 * @example
 * ```ts
 * import { channelStats } from "./dataset.ts";
 * const s = channelStats({ count: 1, images: new Uint8Array([0, 255]), labels: new Int32Array(1) }, [1, 1, 2]);
 * console.log(s.mean, s.std); // [0.5] [0.5]
 * ```
 */
export function channelStats(
  split: ImageSplit,
  shape: readonly [number, number, number],
): { mean: number[]; std: number[] } {
  const [c, h, w] = shape;
  const plane = h * w;
  const mean: number[] = [];
  const std: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    // Integer histograms keep the sums exact for any split size.
    const hist = new Float64Array(256);
    for (let i = 0; i < split.count; i++) {
      const start = (i * c + ch) * plane;
      const img = split.images.subarray(start, start + plane);
      for (let p = 0; p < plane; p++) hist[img[p]]++;
    }
    let n = 0, s = 0, s2 = 0;
    for (let v = 0; v < 256; v++) {
      n += hist[v];
      s += hist[v] * v;
      s2 += hist[v] * v * v;
    }
    const m = n > 0 ? s / n : 0;
    const variance = n > 0 ? Math.max(0, s2 / n - m * m) : 0;
    mean.push(m / 255);
    std.push(Math.sqrt(variance) / 255);
  }
  return { mean, std };
}

/**
 * How many images of each class a split holds.
 *
 * @example
 * ```ts
 * import { classCounts } from "./dataset.ts";
 * console.log(classCounts({ count: 3, images: new Uint8Array(3), labels: new Int32Array([0, 1, 1]) }, 2)); // [1, 2]
 * ```
 */
export function classCounts(split: ImageSplit, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < split.count; i++) counts[split.labels[i]]++;
  return counts;
}

/**
 * Checks that a dataset is internally consistent (sizes, label range, normalisation lengths)
 * and throws a {@link DataError} naming the dataset otherwise.
 *
 * @example
 * ```ts
 * import { checkDataset } from "./dataset.ts";
 * try {
 *   checkDataset({ name: "bad", numClasses: 1, classNames: ["a"], shape: [1, 1, 1], mean: [0], std: [1],
 *     train: { count: 2, images: new Uint8Array(1), labels: new Int32Array(2) },
 *     test: { count: 0, images: new Uint8Array(0), labels: new Int32Array(0) } });
 * } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function checkDataset(ds: ImageDataset): void {
  const fail = (what: string) => {
    throw new DataError(`dataset ${ds.name}: ${what}`);
  };
  const [c, h, w] = ds.shape;
  if (![c, h, w].every((d) => Number.isInteger(d) && d > 0)) fail(`bad image shape [${ds.shape}]`);
  if (ds.classNames.length !== ds.numClasses) {
    fail(`${ds.classNames.length} class names for ${ds.numClasses} classes`);
  }
  if (ds.mean.length !== c || ds.std.length !== c) fail(`mean/std need ${c} values`);
  if (ds.std.some((s) => !(s > 0))) fail(`std must be positive, got [${ds.std}]`);
  for (const [which, split] of [["train", ds.train], ["test", ds.test]] as const) {
    if (split.images.length !== split.count * c * h * w) {
      fail(
        `${which} split has ${split.images.length} pixel bytes for ${split.count} images of [${ds.shape}]`,
      );
    }
    if (split.labels.length !== split.count) {
      fail(`${which} split has ${split.labels.length} labels for ${split.count} images`);
    }
    for (let i = 0; i < split.count; i++) {
      const y = split.labels[i];
      if (y < 0 || y >= ds.numClasses) {
        fail(`${which} label ${y} at index ${i} outside [0, ${ds.numClasses})`);
      }
    }
  }
}

/**
 * Reads a file, turning I/O failures into a one-line {@link DataError} naming it.
 *
 * @example
 * ```ts
 * import { readDataFile } from "./dataset.ts";
 * try { await readDataFile("./no/such.bin"); } catch (e) { console.log((e as Error).message); } // ./no/such.bin: missing
 * ```
 */
export async function readDataFile(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new DataError(`${path}: missing`);
    throw new DataError(`${path}: cannot read (${(e as Error).message.split("\n")[0]})`);
  }
}
