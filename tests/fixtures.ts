/**
 * Reads golden fixtures written by `tools/fixture_io.py` (PyTorch outputs; tests never need
 * PyTorch itself).
 *
 * @example
 * ```ts
 * import { decodeFixtureTensor } from "./fixtures.ts";
 * const t = decodeFixtureTensor({ dtype: "float32", shape: [1], data_b64: "AACAPw==" });
 * console.log(t.data[0]); // 1
 * ```
 * @module
 */

import { decodeBase64 } from "./test_utils.ts";

/** One stored array. */
export interface FixtureTensorJson {
  /** numpy dtype name. */
  dtype: "float32" | "int64" | "int32" | "uint8";
  /** Dimensions. */
  shape: number[];
  /** Little-endian raw values, base64. */
  data_b64: string;
}

/** A decoded array (int64 values become float64 numbers). */
export interface FixtureTensor {
  /** numpy dtype name. */
  dtype: FixtureTensorJson["dtype"];
  /** Dimensions. */
  shape: number[];
  /** Values. */
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
}

/** A decoded fixture. */
export interface Fixture {
  /** Free-form metadata the generator stored. */
  meta: Record<string, unknown>;
  /** Arrays by name. */
  tensors: Map<string, FixtureTensor>;
}

/**
 * Decodes one array.
 *
 * @example
 * ```ts
 * import { decodeFixtureTensor } from "./fixtures.ts";
 * console.log(decodeFixtureTensor({ dtype: "int32", shape: [1], data_b64: "BwAAAA==" }).data[0]); // 7
 * ```
 */
export function decodeFixtureTensor(j: FixtureTensorJson): FixtureTensor {
  const bytes = decodeBase64(j.data_b64);
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  switch (j.dtype) {
    case "float32":
      return { dtype: j.dtype, shape: j.shape, data: new Float32Array(buf) };
    case "int32":
      return { dtype: j.dtype, shape: j.shape, data: new Int32Array(buf) };
    case "uint8":
      return { dtype: j.dtype, shape: j.shape, data: new Uint8Array(buf) };
    case "int64":
      return { dtype: j.dtype, shape: j.shape, data: Float64Array.from(new BigInt64Array(buf), Number) };
  }
}

/**
 * Loads `tests/fixtures/<name>`.
 *
 * @example
 * ```ts ignore
 * import { loadFixture } from "./fixtures.ts";
 * const f = await loadFixture("teacher_logits.json");
 * ```
 */
export async function loadFixture(name: string): Promise<Fixture> {
  const url = new URL(`./fixtures/${name}`, import.meta.url);
  const raw = JSON.parse(await Deno.readTextFile(url)) as {
    meta: Record<string, unknown>;
    tensors: Record<string, FixtureTensorJson>;
  };
  const tensors = new Map<string, FixtureTensor>();
  for (const [k, v] of Object.entries(raw.tensors)) tensors.set(k, decodeFixtureTensor(v));
  return { meta: raw.meta, tensors };
}
