/**
 * One entry point for every dataset: `cifar10`, `cifar100`, `fashion-mnist`, `synthetic`, or the
 * path of a PNG image folder. Looks for extracted files or archives in the data folder
 * (default `./data`; Fashion-MNIST also where Debian installs it), downloads when allowed, and
 * otherwise says which files were looked for where and how to get them.
 *
 * @example
 * ```ts
 * import { loadDataset } from "./load.ts";
 * const ds = await loadDataset("synthetic", { synthetic: { trainCount: 100, testCount: 20 } });
 * console.log(ds.name, ds.train.count); // synthetic 100
 * ```
 * @module
 */

import { CIFAR_SPECS, type CifarKind, readCifarArchive, readCifarFolder } from "./cifar.ts";
import { describeChecksum } from "./checksum.ts";
import { checkDataset, DataError, type DataProgressFn, type ImageDataset } from "./dataset.ts";
import { ensureFile } from "./download.ts";
import {
  FASHION_MNIST_BASE_URL,
  FASHION_MNIST_DEBIAN_DIR,
  FASHION_MNIST_FILES,
  type FashionMnistPaths,
  type FashionMnistRole,
  findFashionMnist,
  readFashionMnist,
} from "./fashion_mnist.ts";
import { readPngFolder } from "./png_folder.ts";
import { makeSyntheticDataset, type SyntheticOptions } from "./synthetic.ts";
import { isDir, isFile } from "../fs_probe.ts";

/** The built-in dataset names (anything else is taken as a PNG folder path). */
export const DATASET_NAMES = ["cifar10", "cifar100", "fashion-mnist", "synthetic"] as const;

/** Options of {@link loadDataset}. */
export interface LoadDatasetOptions {
  /** Folder holding archives or extracted files, and where downloads go (default `./data`). */
  dataDir?: string;
  /** Download missing files from the official URLs (default false). */
  download?: boolean;
  /** Settings of the `synthetic` dataset. */
  synthetic?: SyntheticOptions;
  /** Progress of downloads, archive reading and image decoding. */
  onProgress?: DataProgressFn;
  /** Appended to "not found" and download errors, e.g. the CLI flags that fix them. */
  hint?: string;
  /** Further read-only folders searched for Fashion-MNIST (default: Debian's location). */
  systemDirs?: string[];
  /** Only the test split is needed (CIFAR: the training files are neither required nor read). */
  testOnly?: boolean;
}

/**
 * Loads a dataset by name or PNG-folder path. Errors are {@link DataError}s with one-line
 * messages.
 *
 * @example
 * ```ts
 * import { loadDataset } from "./load.ts";
 * try { await loadDataset("cifar100", { dataDir: "/nonexistent" }); }
 * catch (e) { console.log((e as Error).message); } // cifar100 not found: looked for ...
 * ```
 */
export async function loadDataset(name: string, opts: LoadDatasetOptions = {}): Promise<ImageDataset> {
  const dataDir = (opts.dataDir ?? "./data").replace(/\/+$/, "") || "/";
  let ds: ImageDataset;
  switch (name) {
    case "cifar10":
    case "cifar100":
      ds = await loadCifar(name, dataDir, opts);
      break;
    case "fashion-mnist":
      ds = await loadFashionMnist(dataDir, opts);
      break;
    case "synthetic":
      ds = makeSyntheticDataset(opts.synthetic);
      break;
    default:
      if (!(await isDir(name))) {
        throw new DataError(
          `unknown dataset "${name}": use ${DATASET_NAMES.join(", ")} or the path of a PNG folder ` +
            `(<root>/train/<class>/*.png and <root>/test/<class>/*.png)`,
        );
      }
      ds = await readPngFolder(name, { onProgress: opts.onProgress });
  }
  checkDataset(ds);
  return ds;
}

async function loadCifar(kind: CifarKind, dataDir: string, opts: LoadDatasetOptions): Promise<ImageDataset> {
  const spec = CIFAR_SPECS[kind];
  const firstFile = opts.testOnly ? spec.testFile : spec.trainFiles[0];
  for (const folder of [`${dataDir}/${spec.folder}`, dataDir]) {
    if (await isFile(`${folder}/${firstFile}`)) {
      opts.onProgress?.({ stage: "read", what: folder, done: 0, total: null });
      return readCifarFolder(kind, folder, opts.testOnly);
    }
  }
  const archive = `${dataDir}/${spec.archive}`;
  const { algorithm, hex } = describeChecksum(spec.checksum);
  const hint = opts.hint ? ` ${opts.hint}` : "";
  if (await isFile(archive)) {
    return readCifarArchive(kind, archive, { onProgress: opts.onProgress, testOnly: opts.testOnly });
  }
  if (!opts.download) {
    throw new DataError(
      `${kind} not found: looked for ${dataDir}/${spec.folder}/${firstFile} (extracted) and ${archive}; ` +
        `download ${spec.url} (${algorithm} ${hex}) into ${dataDir}, or allow downloading.${hint}`,
    );
  }
  await ensureFile(spec.url, archive, spec.checksum, {
    hint: `Download it elsewhere and put it at ${archive} (or extract it there).${hint}`,
    onProgress: (done, total) => opts.onProgress?.({ stage: "download", what: spec.url, done, total }),
  });
  return readCifarArchive(kind, archive, {
    verify: false,
    onProgress: opts.onProgress,
    testOnly: opts.testOnly,
  });
}

async function loadFashionMnist(dataDir: string, opts: LoadDatasetOptions): Promise<ImageDataset> {
  const downloadDir = `${dataDir}/fashion-mnist`;
  const dirs = [dataDir, downloadDir, ...(opts.systemDirs ?? [FASHION_MNIST_DEBIAN_DIR])];
  let paths = await findFashionMnist(dirs);
  const hint = opts.hint ? ` ${opts.hint}` : "";
  if (!paths) {
    const names = Object.values(FASHION_MNIST_FILES).map((f) => `${f.name}[.gz]`).join(", ");
    if (!opts.download) {
      throw new DataError(
        `fashion-mnist not found: looked for ${names} in ${dirs.join(", ")}; ` +
          `install Debian's dataset-fashion-mnist, download them from ${FASHION_MNIST_BASE_URL} into ` +
          `${downloadDir}, or allow downloading.${hint}`,
      );
    }
    const downloaded: Partial<FashionMnistPaths> = {};
    for (
      const [role, file] of Object.entries(FASHION_MNIST_FILES) as [
        FashionMnistRole,
        typeof FASHION_MNIST_FILES[FashionMnistRole],
      ][]
    ) {
      const url = `${FASHION_MNIST_BASE_URL}${file.name}.gz`;
      const dest = `${downloadDir}/${file.name}.gz`;
      downloaded[role] = await ensureFile(url, dest, { md5: file.gzMd5 }, {
        hint:
          `Put the four Fashion-MNIST files in ${downloadDir} or install Debian's dataset-fashion-mnist.${hint}`,
        onProgress: (done, total) => opts.onProgress?.({ stage: "download", what: url, done, total }),
      });
    }
    paths = downloaded as FashionMnistPaths;
  }
  opts.onProgress?.({ stage: "read", what: paths.trainImages, done: 0, total: null });
  return readFashionMnist(paths);
}
