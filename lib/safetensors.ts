/**
 * Reads and writes the safetensors format (an 8-byte little-endian header length, a JSON header
 * naming each tensor's dtype, shape and byte range, then raw little-endian data). Used for
 * checkpoints: simple, safe to load, and readable by Python's `safetensors` package.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const sd = new Map([["w", { dtype: "float32" as const, shape: [2], data: new Float32Array([1, 2]) }]]);
 * const back = decodeSafetensors(encodeSafetensors(sd, { note: "hi" }), "mem");
 * console.log(back.tensors.get("w")!.data, back.metadata.note); // Float32Array [1, 2] hi
 * ```
 * @module
 */

import type { HostTensor, StateDict } from "./tensor.ts";
import { numel } from "./tensor.ts";

/** Largest header the format allows (safetensors caps it at 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** Decoded file: tensors plus string metadata. */
export interface SafetensorsFile {
  /** Tensors in file order. */
  tensors: StateDict;
  /** `__metadata__` string map. */
  metadata: Record<string, string>;
}

/**
 * Serialises tensors (float32 as F32, int64 as I64) with string metadata.
 *
 * @example
 * ```ts
 * import { encodeSafetensors } from "./safetensors.ts";
 * console.log(encodeSafetensors(new Map()).length > 8); // true
 * ```
 */
export function encodeSafetensors(tensors: StateDict, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = numel(t.shape) * (t.dtype === "int64" ? 8 : 4);
    header[name] = {
      dtype: t.dtype === "int64" ? "I64" : "F32",
      shape: t.shape,
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces to 8 bytes so the data section is aligned.
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  json = padded;
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const t of tensors.values()) {
    if (t.dtype === "int64") {
      const v = BigInt64Array.from(t.data, (x) => BigInt(Math.trunc(x)));
      out.set(new Uint8Array(v.buffer), pos);
      pos += v.byteLength;
    } else {
      const v = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
      out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), pos);
      pos += v.byteLength;
    }
  }
  return out;
}

/**
 * Parses safetensors bytes; errors name `fileName` and the problem.
 *
 * @example
 * ```ts
 * import { decodeSafetensors } from "./safetensors.ts";
 * try { decodeSafetensors(new Uint8Array(3), "x.safetensors"); } catch (e) { console.log((e as Error).message); }
 * // x.safetensors: not a safetensors file (too short)
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array, fileName: string): SafetensorsFile {
  const fail = (why: string): never => {
    throw new Error(`${fileName}: ${why}`);
  };
  if (bytes.length < 8) fail("not a safetensors file (too short)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) {
    fail(`header claims ${headerLen} bytes (the format allows ${MAX_HEADER_BYTES}); not a safetensors file`);
  }
  if (headerLen > bytes.length - 8) {
    fail(`truncated or not a safetensors file (header claims ${headerLen} bytes)`);
  }
  let header: Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>
  >;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch {
    return fail("corrupt header (not JSON)");
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    return fail("corrupt header (not a JSON object)");
  }
  const dataStart = 8 + headerLen;
  const dataBytes = bytes.length - dataStart;
  let claimed = 0;
  const tensors: StateDict = new Map();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (
        entry === null || typeof entry !== "object" || Array.isArray(entry) ||
        !Object.values(entry).every((v) => typeof v === "string")
      ) {
        fail("corrupt header (__metadata__ is not a map of strings)");
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (
      e === null || typeof e !== "object" || !Array.isArray(e.shape) || e.shape.length > 64 ||
      !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || !Array.isArray(e.data_offsets) ||
      !e.data_offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(
        `tensor ${
          name.slice(0, 80)
        }: malformed entry (shape and data_offsets must be lists of non-negative integers)`,
      );
    }
    const [a, b] = e.data_offsets ?? [];
    const size = e.dtype === "I64"
      ? 8
      : e.dtype === "F32"
      ? 4
      : fail(`tensor ${name.slice(0, 80)}: unsupported dtype ${String(e.dtype).slice(0, 20)}`);
    if (!(b - a === numel(e.shape) * size) || dataStart + b > bytes.length) {
      fail(
        `tensor ${
          name.slice(0, 80)
        }: data range [${a}, ${b}) does not fit shape [${e.shape}] or the file (truncated?)`,
      );
    }
    // Tensors may not overlap (the format forbids it), so the copies add up to at most the file.
    claimed += b - a;
    if (claimed > dataBytes) {
      fail(`tensor ${name.slice(0, 80)}: tensors claim more bytes than the file holds (overlapping ranges)`);
    }
    const raw = bytes.slice(dataStart + a, dataStart + b);
    const t: HostTensor = e.dtype === "I64"
      ? { dtype: "int64", shape: e.shape, data: Float64Array.from(new BigInt64Array(raw.buffer), Number) }
      : { dtype: "float32", shape: e.shape, data: new Float32Array(raw.buffer) };
    tensors.set(name, t);
  }
  return { tensors, metadata };
}
