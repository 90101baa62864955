/**
 * A small reader for the zip archives `torch.save` writes (entries STORED, padded so storages
 * are aligned; ZIP64 past 4 GiB). Reads the central directory, then hands out entry bytes
 * without copying, checking each entry's CRC-32 so damaged files fail loudly. DEFLATE entries
 * (an archive re-zipped by hand) are inflated with fflate.
 *
 * Errors are plain `Error`s with one-line messages; callers add the file name.
 *
 * @example
 * ```ts
 * import { zipSync } from "../lib/deps.ts";
 * import { ZipArchive } from "./zip_reader.ts";
 * const zip = new ZipArchive(zipSync({ "a/version": new TextEncoder().encode("3\n") }, { level: 0 }));
 * console.log(zip.names(), new TextDecoder().decode(zip.read("a/version"))); // ["a/version"] "3\n"
 * ```
 * @module
 */

import { inflateSync } from "../lib/deps.ts";

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_DIRECTORY = 0x06054b50;
const ZIP64_END_OF_DIRECTORY = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;

/**
 * Limits on what an archive may make the reader allocate. DEFLATE cannot expand data more than
 * about 1032 times, so a larger declared ratio is a lie; entries that overlap (one compressed
 * stream named by many entries, the classic zip bomb) are caught by the total.
 *
 * @example
 * ```ts
 * import { ZIP_LIMITS } from "./zip_reader.ts";
 * console.log(ZIP_LIMITS.maxRatio); // 1100
 * ```
 */
export const ZIP_LIMITS = {
  /** Declared size over compressed size of a deflated entry. */
  maxRatio: 1100,
  /** Bytes inflated over all reads, per byte of archive. */
  maxTotalRatio: 1100,
  /** Bytes of one inflated entry. */
  maxEntryBytes: 2 ** 31,
  /** Entries in the central directory. */
  maxEntries: 1 << 20,
} as const;

/** One file of the archive, as its central directory describes it. */
export interface ZipEntry {
  /** Path inside the archive. */
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  /** CRC-32 of the uncompressed bytes. */
  crc32: number;
  /** Bytes as stored. */
  compressedSize: number;
  /** Bytes once extracted. */
  size: number;
  /** Where the entry's local header starts. */
  headerOffset: number;
  /** General-purpose flags (bit 0: encrypted). */
  flags: number;
}

/**
 * Whether `bytes` start like a zip archive (a local file header, or an empty archive).
 *
 * @example
 * ```ts
 * import { looksLikeZip } from "./zip_reader.ts";
 * console.log(looksLikeZip(new Uint8Array([0x50, 0x4b, 3, 4])), looksLikeZip(new Uint8Array([0x80, 2]))); // true false
 * ```
 */
export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
}

/**
 * A zip archive held in memory.
 *
 * @example
 * ```ts
 * import { zipSync } from "../lib/deps.ts";
 * import { ZipArchive } from "./zip_reader.ts";
 * const zip = new ZipArchive(zipSync({ "x.bin": new Uint8Array([1, 2, 3]) }, { level: 0 }));
 * console.log(zip.has("x.bin"), zip.entry("x.bin")!.size); // true 3
 * ```
 */
export class ZipArchive {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #entries = new Map<string, ZipEntry>();
  #inflated = 0;

  /** Parses the central directory of `bytes`; throws on anything malformed or truncated. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const e of this.#readDirectory()) this.#entries.set(e.name, e);
  }

  /** Entry names in directory order. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** Whether the archive holds `name`. */
  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** The directory record of `name`, if any. */
  entry(name: string): ZipEntry | undefined {
    return this.#entries.get(name);
  }

  /**
   * The extracted bytes of `name` (a view into the archive for stored entries), after checking
   * the CRC-32.
   */
  read(name: string): Uint8Array {
    const e = this.#entries.get(name);
    if (!e) throw new Error(`the archive has no entry ${name}`);
    if (e.flags & 1) throw new Error(`entry ${name} is encrypted`);
    const v = this.#view;
    const h = e.headerOffset;
    if (h + 30 > this.#bytes.length || v.getUint32(h, true) !== LOCAL_HEADER) {
      throw new Error(`entry ${name}: local header missing at byte ${h} (damaged archive)`);
    }
    const start = h + 30 + v.getUint16(h + 26, true) + v.getUint16(h + 28, true);
    const end = start + e.compressedSize;
    if (end > this.#bytes.length) {
      throw new Error(
        `entry ${name} ends at byte ${end} but the file has ${this.#bytes.length} bytes (truncated archive)`,
      );
    }
    const raw = this.#bytes.subarray(start, end);
    let data: Uint8Array;
    if (e.method === 0) data = raw;
    else if (e.method === 8) {
      if (e.size > ZIP_LIMITS.maxEntryBytes || e.size > ZIP_LIMITS.maxRatio * e.compressedSize + 1024) {
        throw new Error(
          `entry ${name} claims ${e.size} bytes from ${e.compressedSize} compressed bytes ` +
            `(a decompression bomb or a damaged archive); refused`,
        );
      }
      this.#inflated += e.size;
      if (this.#inflated > ZIP_LIMITS.maxTotalRatio * this.#bytes.length + 2 ** 20) {
        throw new Error(
          `entry ${name}: the archive's entries would inflate to more than ${ZIP_LIMITS.maxTotalRatio} times ` +
            `its ${this.#bytes.length} bytes (overlapping entries, a zip bomb); refused`,
        );
      }
      try {
        data = inflateSync(raw, { out: new Uint8Array(e.size) });
      } catch (err) {
        throw new Error(`entry ${name}: cannot inflate (${(err as Error).message})`);
      }
    } else {
      throw new Error(
        `entry ${name} uses compression method ${e.method}; only stored and deflate are read`,
      );
    }
    if (data.length !== e.size) {
      throw new Error(
        `entry ${name} has ${data.length} bytes, its directory says ${e.size} (damaged archive)`,
      );
    }
    if (crc32(data) !== e.crc32) throw new Error(`entry ${name} fails its CRC-32 check (damaged file)`);
    return data;
  }

  *#readDirectory(): Generator<ZipEntry> {
    const v = this.#view;
    const n = this.#bytes.length;
    const eocd = this.#findEndOfDirectory();
    let count = v.getUint16(eocd + 10, true);
    let dirSize = v.getUint32(eocd + 12, true);
    let dirOffset = v.getUint32(eocd + 16, true);
    if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || v.getUint32(loc, true) !== ZIP64_LOCATOR) {
        throw new Error("ZIP64 archive without its ZIP64 locator (damaged archive)");
      }
      const z = Number(v.getBigUint64(loc + 8, true));
      if (z + 56 > n || v.getUint32(z, true) !== ZIP64_END_OF_DIRECTORY) {
        throw new Error("ZIP64 end-of-directory record missing (damaged archive)");
      }
      count = Number(v.getBigUint64(z + 32, true));
      dirSize = Number(v.getBigUint64(z + 40, true));
      dirOffset = Number(v.getBigUint64(z + 48, true));
    }
    if (count > ZIP_LIMITS.maxEntries) {
      throw new Error(`the archive claims ${count} entries (at most ${ZIP_LIMITS.maxEntries}); refused`);
    }
    if (dirOffset + dirSize > n) {
      throw new Error(`the central directory lies past the end of the file (truncated archive)`);
    }
    const decoder = new TextDecoder();
    let p = dirOffset;
    for (let i = 0; i < count; i++) {
      if (p + 46 > n || v.getUint32(p, true) !== CENTRAL_HEADER) {
        throw new Error(`central directory record ${i} is damaged`);
      }
      const nameLen = v.getUint16(p + 28, true);
      const extraLen = v.getUint16(p + 30, true);
      const commentLen = v.getUint16(p + 32, true);
      if (p + 46 + nameLen + extraLen > n) throw new Error(`central directory record ${i} is truncated`);
      const entry: ZipEntry = {
        name: decoder.decode(this.#bytes.subarray(p + 46, p + 46 + nameLen)),
        flags: v.getUint16(p + 8, true),
        method: v.getUint16(p + 10, true),
        crc32: v.getUint32(p + 16, true),
        compressedSize: v.getUint32(p + 20, true),
        size: v.getUint32(p + 24, true),
        headerOffset: v.getUint32(p + 42, true),
      };
      this.#applyZip64Extra(entry, p + 46 + nameLen, extraLen);
      yield entry;
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  /** ZIP64 sizes and offsets live in extra field 0x0001, only for the fields saturated above. */
  #applyZip64Extra(e: ZipEntry, start: number, length: number): void {
    const v = this.#view;
    for (let q = start; q + 4 <= start + length;) {
      const id = v.getUint16(q, true);
      const size = v.getUint16(q + 2, true);
      if (id === 1) {
        let r = q + 4;
        const next = () => {
          if (r + 8 > q + 4 + size) throw new Error(`entry ${e.name}: short ZIP64 extra field`);
          const x = Number(v.getBigUint64(r, true));
          r += 8;
          return x;
        };
        if (e.size === 0xffffffff) e.size = next();
        if (e.compressedSize === 0xffffffff) e.compressedSize = next();
        if (e.headerOffset === 0xffffffff) e.headerOffset = next();
      }
      q += 4 + size;
    }
  }

  #findEndOfDirectory(): number {
    const v = this.#view;
    const n = this.#bytes.length;
    // The record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
    for (let p = n - 22; p >= Math.max(0, n - 22 - 0xffff); p--) {
      if (v.getUint32(p, true) === END_OF_DIRECTORY && p + 22 + v.getUint16(p + 20, true) <= n) return p;
    }
    throw new Error("the zip archive has no end-of-central-directory record (truncated or damaged file)");
  }
}

let crcTable: Uint32Array | undefined;

/**
 * CRC-32 (the zip/PNG polynomial) of `data`.
 *
 * @example
 * ```ts
 * import { crc32 } from "./zip_reader.ts";
 * console.log(crc32(new TextEncoder().encode("123456789")).toString(16)); // cbf43926
 * ```
 */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
