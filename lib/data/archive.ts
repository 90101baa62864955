/**
 * Just enough of gzip and tar to read the official dataset archives in memory (ustar, GNU long
 * names and pax paths), plus a small tar writer for packaging test data.
 *
 * @example
 * ```ts
 * import { gzip, gunzip, readTar, writeTar } from "./archive.ts";
 * const tgz = gzip(writeTar([{ name: "a/b.txt", data: new TextEncoder().encode("hi") }]));
 * const files = readTar(gunzip(tgz, "test.tar.gz"), "test.tar.gz");
 * console.log(new TextDecoder().decode(files.get("a/b.txt"))); // hi
 * ```
 * @module
 */

import { gunzipSync, gzipSync } from "node:zlib";
import { DataError } from "./dataset.ts";

const BLOCK = 512;

/**
 * Whether bytes start with the gzip magic number.
 *
 * @example
 * ```ts
 * import { isGzip } from "./archive.ts";
 * console.log(isGzip(new Uint8Array([0x1f, 0x8b, 8]))); // true
 * ```
 */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses gzip data; `source` names the file in the error when the data is corrupt.
 *
 * @example
 * ```ts
 * import { gunzip, gzip } from "./archive.ts";
 * console.log(gunzip(gzip(new Uint8Array([1, 2])), "x.gz")); // Uint8Array [1, 2]
 * ```
 */
export function gunzip(bytes: Uint8Array, source: string): Uint8Array {
  if (!isGzip(bytes)) throw new DataError(`${source}: not a gzip file`);
  const limit = gunzipLimit(bytes.length);
  try {
    const out = gunzipSync(bytes, { maxOutputLength: limit });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new DataError(
        `${source}: gzip data inflates past ${limit} bytes from ${bytes.length} ` +
          `(a decompression bomb, or larger than any dataset archive this package reads); refused`,
      );
    }
    throw new DataError(`${source}: corrupt gzip data (${(e as Error).message.split("\n")[0]})`);
  }
}

/**
 * Limits on decompressed data: real dataset archives (CIFAR, Fashion-MNIST) expand 1 to 10
 * times and stay under a few hundred MiB.
 *
 * @example
 * ```ts
 * import { GUNZIP_LIMITS } from "./archive.ts";
 * console.log(GUNZIP_LIMITS.maxRatio); // 100
 * ```
 */
export const GUNZIP_LIMITS = {
  /** Bytes any archive may inflate to. */
  maxBytes: 2 ** 30,
  /** Bytes allowed whatever the ratio. */
  slackBytes: 16 * 2 ** 20,
  /** Inflated bytes per compressed byte beyond the slack. */
  maxRatio: 100,
} as const;

/**
 * The most bytes `compressed` gzip bytes may inflate to.
 *
 * @example
 * ```ts
 * import { gunzipLimit } from "./archive.ts";
 * console.log(gunzipLimit(0)); // 16777216
 * ```
 */
export function gunzipLimit(compressed: number): number {
  return Math.min(GUNZIP_LIMITS.maxBytes, GUNZIP_LIMITS.slackBytes + GUNZIP_LIMITS.maxRatio * compressed);
}

/**
 * Gzip-compresses bytes.
 *
 * @example
 * ```ts
 * import { gzip, isGzip } from "./archive.ts";
 * console.log(isGzip(gzip(new Uint8Array(3)))); // true
 * ```
 */
export function gzip(bytes: Uint8Array): Uint8Array {
  const out = gzipSync(bytes);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * The regular files of a tar archive, keyed by path (leading `./` removed). Values are views
 * into `bytes`. Throws a {@link DataError} naming `source` for a damaged archive.
 *
 * @example
 * ```ts
 * import { readTar, writeTar } from "./archive.ts";
 * const files = readTar(writeTar([{ name: "x", data: new Uint8Array([7]) }]), "x.tar");
 * console.log(files.get("x")); // Uint8Array [7]
 * ```
 */
export function readTar(bytes: Uint8Array, source: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  let offset = 0;
  let longName: string | null = null;
  let paxPath: string | null = null;
  while (offset + BLOCK <= bytes.length) {
    const header = bytes.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const stored = parseOctal(header.subarray(148, 156));
    if (stored !== headerChecksum(header)) {
      throw new DataError(`${source}: damaged tar header at byte ${offset} (checksum mismatch)`);
    }
    const size = parseSize(header.subarray(124, 136));
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new DataError(`${source}: damaged tar header at byte ${offset} (entry size is not a number)`);
    }
    const type = String.fromCharCode(header[156] || 0x30);
    const dataStart = offset + BLOCK;
    const dataEnd = dataStart + size;
    if (dataEnd > bytes.length) {
      throw new DataError(`${source}: truncated tar archive (entry at byte ${offset} needs ${size} bytes)`);
    }
    const data = bytes.subarray(dataStart, dataEnd);
    if (type === "L") {
      longName = cString(data);
    } else if (type === "x") {
      paxPath = parsePaxPath(data) ?? paxPath;
    } else if (type !== "g") {
      let name = longName ?? paxPath ?? headerName(header);
      longName = paxPath = null;
      name = name.replace(/^(\.\/)+/, "");
      if (type === "0" || type === "7") files.set(name, data);
    }
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}

/** A file to put into a tar archive. */
export interface TarEntry {
  /** Path inside the archive (at most 100 bytes). */
  name: string;
  /** Contents. */
  data: Uint8Array;
}

/**
 * Builds a ustar archive of regular files (names up to 100 bytes).
 *
 * @example
 * ```ts
 * import { writeTar } from "./archive.ts";
 * console.log(writeTar([{ name: "a", data: new Uint8Array(1) }]).length); // 2048
 * ```
 */
export function writeTar(entries: readonly TarEntry[]): Uint8Array {
  let total = 2 * BLOCK;
  for (const e of entries) total += BLOCK + Math.ceil(e.data.length / BLOCK) * BLOCK;
  const out = new Uint8Array(total);
  const enc = new TextEncoder();
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    if (name.length > 100) throw new Error(`tar entry name longer than 100 bytes: ${e.name}`);
    const h = out.subarray(offset, offset + BLOCK);
    h.set(name, 0);
    h.set(enc.encode("0000644\0"), 100);
    h.set(enc.encode("0000000\0"), 108);
    h.set(enc.encode("0000000\0"), 116);
    h.set(enc.encode(e.data.length.toString(8).padStart(11, "0") + "\0"), 124);
    h.set(enc.encode("00000000000\0"), 136);
    h[156] = 0x30;
    h.set(enc.encode("ustar\x0000"), 257);
    h.set(enc.encode(headerChecksum(h).toString(8).padStart(6, "0") + "\0 "), 148);
    out.set(e.data, offset + BLOCK);
    offset += BLOCK + Math.ceil(e.data.length / BLOCK) * BLOCK;
  }
  return out;
}

function headerChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  return sum;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function parseOctal(field: Uint8Array): number {
  const s = cString(field).trim();
  return s === "" ? 0 : /^[0-7]+$/.test(s) ? parseInt(s, 8) : NaN;
}

function parseSize(field: Uint8Array): number {
  // GNU base-256 encoding for sizes of 8 GiB and more.
  if (field[0] & 0x80) {
    let n = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i];
    return n;
  }
  return parseOctal(field);
}

function headerName(header: Uint8Array): string {
  const name = cString(header.subarray(0, 100));
  const isUstar = cString(header.subarray(257, 263)).startsWith("ustar");
  const prefix = isUstar ? cString(header.subarray(345, 500)) : "";
  return prefix ? `${prefix}/${name}` : name;
}

function parsePaxPath(data: Uint8Array): string | null {
  // Records are "<len> <key>=<value>\n".
  const text = new TextDecoder().decode(data);
  for (const line of text.split("\n")) {
    const m = /^\d+ path=(.*)$/.exec(line);
    if (m) return m[1];
  }
  return null;
}
