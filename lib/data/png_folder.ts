/**
 * An ImageFolder-style tree of PNG files (Tiny-ImageNet converted to PNG, or any custom set):
 * `<root>/train/<class>/**\/*.png` and `<root>/test/<class>/...` (or `val/`). Classes are the
 * training sub-folders sorted by name, as torchvision's ImageFolder does. Every image must share
 * one size and one channel count: grey (grey+alpha loses its alpha) or RGB (RGBA loses its
 * alpha; palette images become RGB). Normalisation mean/std are computed from the training split.
 *
 * @example
 * ```ts
 * import { readPngFolder } from "./png_folder.ts";
 * try { await readPngFolder("./no-such-folder"); }
 * catch (e) { console.log((e as Error).message); } // ./no-such-folder/train: missing ...
 * ```
 * @module
 */

import { inflateSync } from "node:zlib";
import { type DecodedPng, decodePng } from "../deps.ts";
import {
  allocPixels,
  channelStats,
  DataError,
  type DataProgressFn,
  type ImageDataset,
  readDataFile,
} from "./dataset.ts";
import { isDir } from "../fs_probe.ts";

/** Options of {@link readPngFolder}. */
export interface PngFolderOptions {
  /** Progress while files are decoded. */
  onProgress?: DataProgressFn;
}

/**
 * Reads a PNG image folder into a dataset named after the root folder.
 *
 * @example
 * ```ts
 * import { encodePng } from "../deps.ts";
 * import { readPngFolder } from "./png_folder.ts";
 * const root = await Deno.makeTempDir();
 * for (const split of ["train", "test"]) {
 *   await Deno.mkdir(`${root}/${split}/cat`, { recursive: true });
 *   await Deno.writeFile(`${root}/${split}/cat/a.png`,
 *     encodePng({ width: 2, height: 2, channels: 1, depth: 8, data: new Uint8Array(4) }));
 * }
 * const ds = await readPngFolder(root);
 * console.log(ds.classNames, ds.shape); // ["cat"] [1, 2, 2]
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function readPngFolder(root: string, opts: PngFolderOptions = {}): Promise<ImageDataset> {
  root = root.replace(/\/+$/, "") || "/";
  const trainDir = `${root}/train`;
  if (!(await isDir(trainDir))) {
    throw new DataError(`${trainDir}: missing (a PNG dataset needs train/<class>/*.png and test/ or val/)`);
  }
  let testDir = `${root}/test`;
  if (!(await isDir(testDir))) testDir = `${root}/val`;
  if (!(await isDir(testDir))) {
    throw new DataError(`${root}: has no test/ or val/ folder beside train/`);
  }

  const classNames = (await subdirs(trainDir)).sort(byCodePoint);
  if (classNames.length === 0) throw new DataError(`${trainDir}: no class folders`);
  const classIndex = new Map(classNames.map((c, i) => [c, i]));
  const trainFiles = await listImages(trainDir, classNames, classIndex);
  if (trainFiles.length === 0) throw new DataError(`${trainDir}: no .png files`);
  const testClasses = (await subdirs(testDir)).sort(byCodePoint);
  const unknown = testClasses.find((c) => !classIndex.has(c));
  if (unknown !== undefined) {
    throw new DataError(`${testDir}/${unknown}: class not present in ${trainDir}`);
  }
  const testFiles = await listImages(testDir, testClasses, classIndex);
  if (testFiles.length === 0) throw new DataError(`${testDir}: no .png files`);

  const total = trainFiles.length + testFiles.length;
  const first = await decodeFile(trainFiles[0].path);
  const format: ImageFormat = { ...first.format, path: trainFiles[0].path };
  let done = 0;
  const decodeSplit = async (files: LabelledFile[]) => {
    const size = format.channels * format.height * format.width;
    const images = allocPixels(files.length * size);
    const labels = new Int32Array(files.length);
    for (let i = 0; i < files.length; i++) {
      const img = files[i].path === format.path ? first : await decodeFile(files[i].path);
      const f = img.format;
      if (f.width !== format.width || f.height !== format.height || f.channels !== format.channels) {
        throw new DataError(
          `${files[i].path}: ${describe(f)} image, but ${format.path} is ${describe(format)}; ` +
            `all images must share one size and channel count`,
        );
      }
      images.set(img.chw, i * size);
      labels[i] = files[i].label;
      done++;
      if (opts.onProgress && (done % 256 === 0 || done === total)) {
        opts.onProgress({ stage: "decode", what: root, done, total });
      }
    }
    return { count: files.length, images, labels };
  };
  const train = await decodeSplit(trainFiles);
  const test = await decodeSplit(testFiles);
  const shape: [number, number, number] = [format.channels, format.height, format.width];
  const { mean, std } = channelStats(train, shape);
  return {
    name: root.split("/").filter((s) => s !== "").pop() ?? "png-folder",
    numClasses: classNames.length,
    classNames,
    shape,
    mean,
    std,
    train,
    test,
  };
}

interface LabelledFile {
  path: string;
  label: number;
}

interface ImageFormat {
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB) after dropping alpha. */
  channels: number;
  path?: string;
}

function describe(f: ImageFormat): string {
  return `${f.width}x${f.height} ${f.channels === 1 ? "grey" : "RGB"}`;
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function subdirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory || (e.isSymlink && (await isDir(`${dir}/${e.name}`)))) out.push(e.name);
  }
  return out;
}

async function listImages(
  dir: string,
  classes: readonly string[],
  classIndex: ReadonlyMap<string, number>,
): Promise<LabelledFile[]> {
  const out: LabelledFile[] = [];
  for (const cls of classes) {
    const paths: string[] = [];
    await walk(`${dir}/${cls}`, paths, []);
    if (paths.length === 0) {
      throw new DataError(
        `${dir}/${cls}: empty class folder (no .png files); remove it or add its images`,
      );
    }
    paths.sort(byCodePoint);
    for (const path of paths) out.push({ path, label: classIndex.get(cls)! });
  }
  return out;
}

/** Folders nested deeper than this under a class folder are refused. */
const MAX_FOLDER_DEPTH = 32;

/**
 * Collects the .png files under `dir`. Symbolic links to folders are followed, but a link back
 * to a folder being walked (a loop) is refused, as is nesting deeper than {@link MAX_FOLDER_DEPTH}.
 */
async function walk(dir: string, out: string[], ancestors: string[]): Promise<void> {
  let real: string;
  try {
    real = await Deno.realPath(dir);
  } catch (e) {
    throw new DataError(`${dir}: cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  if (ancestors.includes(real)) {
    throw new DataError(`${dir}: symbolic link loop (it leads back to ${real}); remove the link`);
  }
  if (ancestors.length >= MAX_FOLDER_DEPTH) {
    throw new DataError(`${dir}: folders nested more than ${MAX_FOLDER_DEPTH} deep`);
  }
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(dir)) entries.push(e);
  entries.sort((a, b) => byCodePoint(a.name, b.name));
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory || (e.isSymlink && (await isDir(path)))) await walk(path, out, [...ancestors, real]);
    else if (/\.png$/i.test(e.name)) out.push(path);
  }
}

/**
 * Limits on one PNG, checked from its header before anything is decoded.
 *
 * @example
 * ```ts
 * import { PNG_LIMITS } from "./png_folder.ts";
 * console.log(PNG_LIMITS.maxPixels); // 16777216
 * ```
 */
export const PNG_LIMITS = {
  /** Pixels of one image (4096 x 4096). */
  maxPixels: 4096 * 4096,
  /** Bytes of one PNG file. */
  maxFileBytes: 256 * 2 ** 20,
} as const;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Checks a PNG's header and compressed data before decoding: the declared size is capped, and
 * the image data may not inflate past what that size needs (a decompression bomb). Throws a
 * {@link DataError} naming `source`.
 */
function checkPngBudget(bytes: Uint8Array, source: string): void {
  const bad = (why: string): never => {
    throw new DataError(`${source}: not a readable PNG (${why})`);
  };
  if (bytes.length < 33 || !PNG_SIGNATURE.every((b, i) => bytes[i] === b)) bad("no PNG signature");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(8) !== 13 || v.getUint32(12) !== 0x49484452) bad("the first chunk is not IHDR");
  const width = v.getUint32(16);
  const height = v.getUint32(20);
  const depth = bytes[24];
  const channels = PNG_CHANNELS[bytes[25]];
  if (width === 0 || height === 0 || channels === undefined || ![1, 2, 4, 8, 16].includes(depth)) {
    bad(`header declares ${width}x${height}, bit depth ${depth}, colour type ${bytes[25]}`);
  }
  if (width * height > PNG_LIMITS.maxPixels) {
    throw new DataError(
      `${source}: the PNG declares ${width}x${height} pixels, more than the ${PNG_LIMITS.maxPixels} ` +
        `allowed; refused`,
    );
  }
  const raw = height * (1 + Math.ceil((width * channels * depth) / 8));
  const idat: Uint8Array[] = [];
  for (let p = 8; p + 12 <= bytes.length;) {
    const len = v.getUint32(p);
    const type = v.getUint32(p + 4);
    if (p + 12 + len > bytes.length) bad(`chunk at byte ${p} runs past the end of the file (truncated)`);
    if (type === 0x49444154) idat.push(bytes.subarray(p + 8, p + 8 + len));
    if (type === 0x49454e44) break; // IEND
    p += 12 + len;
  }
  const joined = new Uint8Array(idat.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of idat) {
    joined.set(c, at);
    at += c.length;
  }
  // Interlaced images add filter bytes per pass; twice the plain size is generous.
  const limit = 2 * raw + 1024;
  try {
    inflateSync(joined, { maxOutputLength: limit });
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new DataError(
        `${source}: the PNG's image data inflates past the ${limit} bytes its ${width}x${height} ` +
          `header needs (a decompression bomb); refused`,
      );
    }
    // Other damage is reported by the decoder below, in its words.
  }
}

/**
 * Decodes one PNG file's bytes to CHW uint8 with 1 or 3 channels (alpha dropped, palette
 * expanded), after checking its declared size and compressed data against {@link PNG_LIMITS}.
 * Errors are {@link DataError}s naming `source`.
 *
 * @example
 * ```ts
 * import { encodePng } from "../deps.ts";
 * import { decodePngImage } from "./png_folder.ts";
 * const png = encodePng({ width: 2, height: 1, channels: 3, depth: 8, data: new Uint8Array([1, 2, 3, 4, 5, 6]) });
 * const img = decodePngImage(png, "a.png");
 * console.log(img.format, img.chw); // { width: 2, height: 1, channels: 3 } Uint8Array(6) [ 1, 4, 2, 5, 3, 6 ]
 * ```
 */
export function decodePngImage(
  bytes: Uint8Array,
  source: string,
): { format: { width: number; height: number; channels: number }; chw: Uint8Array } {
  checkPngBudget(bytes, source);
  return decodePngBytes(bytes, source);
}

/** Decodes one PNG to CHW uint8 with 1 or 3 channels. */
async function decodeFile(path: string): Promise<{ format: ImageFormat; chw: Uint8Array }> {
  // A link to /dev/zero or a FIFO named *.png would otherwise be read without end.
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(path);
  } catch { /* readDataFile reports it */ }
  if (info && !info.isFile) throw new DataError(`${path}: not a regular file`);
  if (info && info.size > PNG_LIMITS.maxFileBytes) {
    throw new DataError(
      `${path}: ${info.size} bytes, more than the ${PNG_LIMITS.maxFileBytes} a PNG may have here`,
    );
  }
  return decodePngImage(await readDataFile(path), path);
}

function decodePngBytes(bytes: Uint8Array, path: string): { format: ImageFormat; chw: Uint8Array } {
  let png: DecodedPng;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new DataError(`${path}: not a readable PNG (${(e as Error).message.split("\n")[0]})`);
  }
  const { width, height } = png;
  const n = width * height;
  // Unpack to one 8-bit value per sample, HWC.
  let samples = png.channels;
  let hwc: Uint8Array;
  if (png.palette) {
    const index = unpack(png, 1);
    hwc = new Uint8Array(n * 3);
    for (let p = 0; p < n; p++) {
      const entry = png.palette[index[p]];
      if (!entry) throw new DataError(`${path}: palette index ${index[p]} out of range`);
      hwc[3 * p] = entry[0];
      hwc[3 * p + 1] = entry[1];
      hwc[3 * p + 2] = entry[2];
    }
    samples = 3;
  } else {
    hwc = unpack(png, png.channels);
  }
  const channels = samples <= 2 ? 1 : 3; // alpha is dropped
  const chw = new Uint8Array(channels * n);
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < n; p++) chw[c * n + p] = hwc[p * samples + c];
  }
  return { format: { width, height, channels }, chw };
}

/** Samples of a decoded PNG as 8-bit values (16-bit keeps its high byte, 1/2/4-bit are scaled). */
function unpack(png: DecodedPng, samplesPerPixel: number): Uint8Array {
  const count = png.width * png.height * samplesPerPixel;
  const depth = png.depth;
  const data = png.data;
  if (depth === 8) return data as Uint8Array;
  const out = new Uint8Array(count);
  if (depth === 16) {
    for (let i = 0; i < count; i++) out[i] = (data[i] as number) >> 8;
    return out;
  }
  // Rows of sub-byte samples are packed and padded to whole bytes; palette indices are not scaled.
  const scale = png.palette ? 1 : 255 / ((1 << depth) - 1);
  const rowSamples = png.width * samplesPerPixel;
  const rowBytes = Math.ceil((rowSamples * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < rowSamples; x++) {
      const bit = x * depth;
      const byte = data[y * rowBytes + (bit >> 3)] as number;
      const v = (byte >> (8 - depth - (bit & 7))) & mask;
      out[y * rowSamples + x] = Math.round(v * scale);
    }
  }
  return out;
}
