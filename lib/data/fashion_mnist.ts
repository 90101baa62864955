/**
 * Fashion-MNIST (28x28 grey, 10 classes) from its four IDX files, raw or gzipped. Debian's
 * `dataset-fashion-mnist` package installs them under /usr/share/datasets/fashion-mnist; they
 * can also be downloaded from the official mirror. Normalisation mean/std are computed from the
 * training split (about 0.2860 / 0.3530).
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_DEBIAN_DIR, findFashionMnist } from "./fashion_mnist.ts";
 * const dir = await findFashionMnist(["./data", FASHION_MNIST_DEBIAN_DIR]);
 * console.log(dir === null || typeof dir.trainImages === "string"); // true
 * ```
 * @module
 */

import { bytesDigest } from "./checksum.ts";
import {
  allocPixels,
  channelStats,
  DataError,
  type ImageDataset,
  type ImageSplit,
  readDataFile,
} from "./dataset.ts";
import { parseIdx } from "./idx.ts";
import { gunzip, isGzip } from "./archive.ts";
import { isFile } from "../fs_probe.ts";

/** Where Debian's `dataset-fashion-mnist` package puts the files. */
export const FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist";

/** The official download location. */
export const FASHION_MNIST_BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/** The standard class names, index = label. */
export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** One of the four files. */
export interface FashionMnistFile {
  /** File name without `.gz`. */
  name: string;
  /** MD5 of the official `.gz` (Fashion-MNIST README, torchvision `FashionMNIST.resources`). */
  gzMd5: string;
  /**
   * MD5 of the decompressed file. Checked for local copies, because repackaged `.gz` files
   * (Debian strips the gzip name field) differ from the official ones byte-wise but not in content.
   */
  rawMd5: string;
}

/** Roles of the four files. */
export type FashionMnistRole = "trainImages" | "trainLabels" | "testImages" | "testLabels";

/** The four files and their checksums. */
export const FASHION_MNIST_FILES: Record<FashionMnistRole, FashionMnistFile> = {
  trainImages: {
    name: "train-images-idx3-ubyte",
    gzMd5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    rawMd5: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
  },
  trainLabels: {
    name: "train-labels-idx1-ubyte",
    gzMd5: "25c81989df183df01b3e8a0aad5dffbe",
    rawMd5: "9018921c3c673c538a1fc5bad174d6f9",
  },
  testImages: {
    name: "t10k-images-idx3-ubyte",
    gzMd5: "bef4ecab320f06d8554ea6380940ec79",
    rawMd5: "8181f5470baa50b63fa0f6fddb340f0a",
  },
  testLabels: {
    name: "t10k-labels-idx1-ubyte",
    gzMd5: "bb300cfdad3c16e7a12a480ee83cd310",
    rawMd5: "15d484375f8d13e6eb1aabb0c3f46965",
  },
};

/** Paths of the four files. */
export type FashionMnistPaths = Record<FashionMnistRole, string>;

const ROLES = Object.keys(FASHION_MNIST_FILES) as FashionMnistRole[];

/**
 * The first folder holding all four files (each raw or `.gz`), or null.
 *
 * @example
 * ```ts
 * import { findFashionMnist } from "./fashion_mnist.ts";
 * console.log(await findFashionMnist(["/nonexistent"])); // null
 * ```
 */
export async function findFashionMnist(dirs: readonly string[]): Promise<FashionMnistPaths | null> {
  for (const dir of dirs) {
    const found: Partial<FashionMnistPaths> = {};
    for (const role of ROLES) {
      for (const candidate of [FASHION_MNIST_FILES[role].name, `${FASHION_MNIST_FILES[role].name}.gz`]) {
        const path = `${dir.replace(/\/+$/, "")}/${candidate}`;
        if (await isFile(path)) {
          found[role] = path;
          break;
        }
      }
    }
    if (ROLES.every((r) => found[r])) return found as FashionMnistPaths;
  }
  return null;
}

/** Options of {@link readFashionMnist}. */
export interface FashionMnistReadOptions {
  /** Check each file's decompressed content against the official MD5 (default true). */
  verify?: boolean;
}

/**
 * Reads the four IDX files into a dataset.
 *
 * @example
 * ```ts
 * import { findFashionMnist, readFashionMnist, FASHION_MNIST_DEBIAN_DIR } from "./fashion_mnist.ts";
 * const paths = await findFashionMnist([FASHION_MNIST_DEBIAN_DIR]);
 * if (paths) console.log((await readFashionMnist(paths)).train.count); // 60000
 * ```
 */
export async function readFashionMnist(
  paths: FashionMnistPaths,
  opts: FashionMnistReadOptions = {},
): Promise<ImageDataset> {
  const verify = opts.verify ?? true;
  const load = async (role: FashionMnistRole) => {
    const path = paths[role];
    let bytes: Uint8Array = await readDataFile(path);
    if (isGzip(bytes)) bytes = gunzip(bytes, path);
    if (verify) {
      const actual = bytesDigest(bytes, "md5");
      const expected = FASHION_MNIST_FILES[role].rawMd5;
      if (actual !== expected) {
        throw new DataError(
          `${path}: not the official ${
            FASHION_MNIST_FILES[role].name
          } (content md5 ${actual}, expected ${expected})`,
        );
      }
    }
    return { tensor: parseIdx(bytes, path), path };
  };
  const split = async (images: FashionMnistRole, labels: FashionMnistRole): Promise<ImageSplit> => {
    const im = await load(images);
    const lb = await load(labels);
    if (im.tensor.dims.length !== 3 || im.tensor.dims[1] !== 28 || im.tensor.dims[2] !== 28) {
      throw new DataError(`${im.path}: image dimensions [${im.tensor.dims}], expected [N, 28, 28]`);
    }
    if (lb.tensor.dims.length !== 1 || lb.tensor.dims[0] !== im.tensor.dims[0]) {
      throw new DataError(
        `${lb.path}: ${lb.tensor.dims[0]} labels for ${im.tensor.dims[0]} images in ${im.path}`,
      );
    }
    const count = im.tensor.dims[0];
    const pixels = allocPixels(count * 28 * 28);
    pixels.set(im.tensor.data);
    const y = Int32Array.from(lb.tensor.data);
    const bad = y.findIndex((v) => v >= 10);
    if (bad >= 0) throw new DataError(`${lb.path}: label ${y[bad]} at index ${bad} outside [0, 10)`);
    return { count, images: pixels, labels: y };
  };
  const train = await split("trainImages", "trainLabels");
  const test = await split("testImages", "testLabels");
  const shape: [number, number, number] = [1, 28, 28];
  const { mean, std } = channelStats(train, shape);
  return {
    name: "fashion-mnist",
    numClasses: 10,
    classNames: [...FASHION_MNIST_CLASSES],
    shape,
    mean,
    std,
    train,
    test,
  };
}
