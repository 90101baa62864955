/**
 * The IDX format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte`, optionally gzipped):
 * a big-endian header `0 0 <type> <ndims>`, the dimensions as uint32, then the values.
 * Only unsigned-byte data (type 0x08) is used by these datasets.
 *
 * @example
 * ```ts
 * import { parseIdx } from "./idx.ts";
 * const bytes = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 5, 9]);
 * const t = parseIdx(bytes, "labels.idx");
 * console.log(t.dims, t.data); // [2] Uint8Array [5, 9]
 * ```
 * @module
 */

import { gunzip, isGzip } from "./archive.ts";
import { DataError } from "./dataset.ts";

/** An unsigned-byte IDX tensor. */
export interface IdxTensor {
  /** Dimensions, outermost first. */
  dims: number[];
  /** Row-major values (a view into the file's bytes). */
  data: Uint8Array;
}

/**
 * Parses IDX bytes (gzip is detected by its magic number and decompressed). Errors name
 * `source` and say what is wrong (bad magic, unsupported type, truncated data).
 *
 * @example
 * ```ts
 * import { parseIdx } from "./idx.ts";
 * try { parseIdx(new Uint8Array([1, 2, 3, 4]), "x.idx"); }
 * catch (e) { console.log((e as Error).message); } // x.idx: not an IDX file (magic 01 02 03 04 ...)
 * ```
 */
export function parseIdx(bytes: Uint8Array, source: string): IdxTensor {
  if (isGzip(bytes)) bytes = gunzip(bytes, source);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new DataError(`${source}: not an IDX file (magic ${magic}, expected 00 00 08 <ndims>)`);
  }
  if (bytes[2] !== 0x08) {
    throw new DataError(`${source}: IDX element type 0x${bytes[2].toString(16)} is not unsigned byte (0x08)`);
  }
  const ndims = bytes[3];
  const headerSize = 4 + 4 * ndims;
  if (ndims === 0 || bytes.length < headerSize) {
    throw new DataError(`${source}: truncated IDX header (${bytes.length} bytes, ${ndims} dimensions)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const n = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== headerSize + n) {
    throw new DataError(
      `${source}: IDX data has ${bytes.length - headerSize} bytes, dimensions [${dims}] need ${n}`,
    );
  }
  return { dims, data: bytes.subarray(headerSize) };
}
