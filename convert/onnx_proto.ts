/**
 * A plain-data view of ONNX models: decodes the protobuf (through onnx-proto) into objects with
 * every field present, numbers instead of `Long`s and tensors as typed arrays, and encodes such
 * objects back. The importer, exporter, describer and tests only ever see these objects.
 *
 * @example
 * ```ts
 * import { decodeOnnxModel, encodeOnnxModel, floatTensor } from "./onnx_proto.ts";
 * const bytes = encodeOnnxModel({
 *   irVersion: 8, opsetImports: [{ domain: "", version: 13 }], producerName: "demo", producerVersion: "1",
 *   docString: "", graphName: "g", metadata: [],
 *   inputs: [{ name: "x", elemType: 1, dims: ["batch", 4] }], outputs: [{ name: "y", elemType: 1, dims: ["batch", 4] }],
 *   initializers: [floatTensor("w", [4], new Float32Array([1, 2, 3, 4]))],
 *   nodes: [{ name: "add", opType: "Add", domain: "", inputs: ["x", "w"], outputs: ["y"], attributes: [] }],
 * });
 * console.log(decodeOnnxModel(bytes, "demo.onnx").initializers[0].data); // Float32Array [1, 2, 3, 4]
 * ```
 * @module
 */

import { onnxProto } from "../lib/deps.ts";
import { numel } from "../lib/tensor.ts";
import { OnnxFormatError } from "./onnx_errors.ts";
import { type AttributeRecord, encodeModelProto, type TensorRecord } from "../lib/onnx/messages.ts";

/** ONNX TensorProto element types this package reads. */
export const ONNX_DTYPE = { FLOAT: 1, INT32: 6, INT64: 7, DOUBLE: 11 } as const;

const DTYPE_NAMES: Record<number, string> = {
  0: "UNDEFINED",
  1: "FLOAT",
  2: "UINT8",
  3: "INT8",
  4: "UINT16",
  5: "INT16",
  6: "INT32",
  7: "INT64",
  8: "STRING",
  9: "BOOL",
  10: "FLOAT16",
  11: "DOUBLE",
  12: "UINT32",
  13: "UINT64",
  16: "BFLOAT16",
};

/**
 * Name of an ONNX element type number.
 *
 * @example
 * ```ts
 * import { onnxDtypeName } from "./onnx_proto.ts";
 * console.log(onnxDtypeName(10)); // FLOAT16
 * ```
 */
export function onnxDtypeName(t: number): string {
  return DTYPE_NAMES[t] ?? `type ${t}`;
}

/** A dense tensor: FLOAT as Float32Array, integer and DOUBLE types as Float64Array. */
export interface OnnxTensor {
  /** Initializer or constant name. */
  name: string;
  /** ONNX element type ({@link ONNX_DTYPE}). */
  dataType: number;
  /** Dimensions (`[]` for a scalar). */
  dims: number[];
  /** Row-major values (int64 values beyond 2^53 lose precision; shapes never get there). */
  data: Float32Array | Float64Array;
}

/** One node attribute; only the fields of its `type` are meaningful. */
export interface OnnxAttribute {
  /** Attribute name. */
  name: string;
  /** AttributeProto type: 1 FLOAT, 2 INT, 3 STRING, 4 TENSOR, 6 FLOATS, 7 INTS, 8 STRINGS. */
  type: number;
  /** FLOAT value. */
  f?: number;
  /** INT value. */
  i?: number;
  /** STRING value (UTF-8 decoded). */
  s?: string;
  /** TENSOR value. */
  t?: OnnxTensor;
  /** FLOATS values. */
  floats?: number[];
  /** INTS values. */
  ints?: number[];
  /** STRINGS values. */
  strings?: string[];
}

/** AttributeProto type numbers. */
export const ATTR = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const;

/** A graph node. */
export interface OnnxNode {
  /** Node name (may be empty). */
  name: string;
  /** Operator type, e.g. `Conv`. */
  opType: string;
  /** Operator domain (`""` is the default ai.onnx domain). */
  domain: string;
  /** Input value names (`""` marks an omitted optional input). */
  inputs: string[];
  /** Output value names. */
  outputs: string[];
  /** Attributes in file order. */
  attributes: OnnxAttribute[];
}

/** A graph input or output: element type and dimensions (numbers, symbolic names or null). */
export interface OnnxValueInfo {
  /** Value name. */
  name: string;
  /** Element type (0 when the file does not say). */
  elemType: number;
  /** Dimensions, or null when the rank is unknown. */
  dims: (number | string | null)[] | null;
}

/** A whole model. */
export interface OnnxModel {
  /** ONNX IR version. */
  irVersion: number;
  /** Operator sets (`""` is ai.onnx). */
  opsetImports: { domain: string; version: number }[];
  /** Producer, e.g. `pytorch`. */
  producerName: string;
  /** Producer version, e.g. `1.13.0`. */
  producerVersion: string;
  /** Model documentation string. */
  docString: string;
  /** Graph name. */
  graphName: string;
  /** `metadata_props` key/value pairs in file order. */
  metadata: [string, string][];
  /** Graph inputs (older exporters also list initializers here). */
  inputs: OnnxValueInfo[];
  /** Graph outputs. */
  outputs: OnnxValueInfo[];
  /** Initializers. */
  initializers: OnnxTensor[];
  /** Nodes in file (topological) order. */
  nodes: OnnxNode[];
}

const ELEMENT_BYTES: Record<number, number> = {
  [ONNX_DTYPE.FLOAT]: 4,
  [ONNX_DTYPE.DOUBLE]: 8,
  [ONNX_DTYPE.INT32]: 4,
  [ONNX_DTYPE.INT64]: 8,
};

type Long = { toNumber(): number };

function num(v: number | Long | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === "number" ? v : v.toNumber();
}

const utf8 = new TextDecoder();

/**
 * Decodes ONNX bytes. Anything that is not a protobuf ModelProto with a graph, or is cut short,
 * throws an {@link OnnxFormatError} naming `fileName`.
 *
 * @example
 * ```ts
 * import { decodeOnnxModel } from "./onnx_proto.ts";
 * try { decodeOnnxModel(new TextEncoder().encode("hello"), "hello.txt"); } catch (e) { console.log((e as Error).message.startsWith("hello.txt: not an ONNX model")); } // true
 * ```
 */
export function decodeOnnxModel(bytes: Uint8Array, fileName: string): OnnxModel {
  const depth = protobufNesting(bytes, ONNX_DECODE_LIMITS.maxNesting);
  if (depth > ONNX_DECODE_LIMITS.maxNesting) {
    throw new OnnxFormatError(
      fileName,
      `messages nested more than ${ONNX_DECODE_LIMITS.maxNesting} deep (a crafted or damaged file); refused`,
    );
  }
  // deno-lint-ignore no-explicit-any
  let m: any;
  try {
    m = onnxProto.ModelProto.decode(bytes);
  } catch (e) {
    const why = String((e as Error).message ?? e).split("\n")[0];
    const truncated = /index out of range/.test(why);
    throw new OnnxFormatError(
      fileName,
      truncated
        ? `not an ONNX model or truncated: the protobuf data ends early (${why})`
        : `not an ONNX model: protobuf decoding failed (${why})`,
    );
  }
  const g = m.graph;
  if (!g || num(m.irVersion) <= 0 || !g.node || g.node.length === 0) {
    throw new OnnxFormatError(fileName, "not an ONNX model: no IR version or no graph nodes");
  }
  return {
    irVersion: num(m.irVersion),
    opsetImports: (m.opsetImport ?? []).map((o: { domain?: string; version?: number | Long }) => ({
      domain: o.domain ?? "",
      version: num(o.version),
    })),
    producerName: m.producerName ?? "",
    producerVersion: m.producerVersion ?? "",
    docString: m.docString ?? "",
    graphName: g.name ?? "",
    metadata: (m.metadataProps ?? []).map((
      p: { key?: string; value?: string },
    ) => [p.key ?? "", p.value ?? ""]),
    inputs: (g.input ?? []).map(valueInfoFrom),
    outputs: (g.output ?? []).map(valueInfoFrom),
    initializers: (g.initializer ?? []).map((t: unknown) => tensorFrom(t, fileName)),
    nodes: g.node.map((n: unknown) => nodeFrom(n, fileName)),
  };
}

/**
 * Limits checked before the protobuf decoder (which recurses) sees the bytes.
 *
 * @example
 * ```ts
 * import { ONNX_DECODE_LIMITS } from "./onnx_proto.ts";
 * console.log(ONNX_DECODE_LIMITS.maxNesting); // 100
 * ```
 */
export const ONNX_DECODE_LIMITS = {
  /** Nesting of messages and groups (a real model with nested If/Loop bodies stays under 30). */
  maxNesting: 100,
} as const;

/**
 * How deeply the protobuf `bytes` nest messages (length-delimited fields that themselves parse
 * as messages) and groups, scanning with an explicit depth limit: returns `limit + 1` as soon as
 * the nesting goes past `limit`. Each byte is scanned once per enclosing level, so the cost is
 * at most `limit` passes over the file.
 *
 * @example
 * ```ts
 * import { protobufNesting } from "./onnx_proto.ts";
 * // field 1 (bytes) holding field 1 (varint 5): a message inside a message
 * console.log(protobufNesting(new Uint8Array([0x0a, 2, 0x08, 5]), 10)); // 2
 * ```
 */
export function protobufNesting(bytes: Uint8Array, limit: number): number {
  let deepest = 0;
  class TooDeep extends Error {}
  const varint = (p: number, end: number): [number, number] | undefined => {
    let x = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      if (p >= end) return undefined;
      const b = bytes[p++];
      x += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return [x, p];
    }
    return undefined;
  };
  // Whether bytes[start, end) parse as one message; `depth` counts the enclosing messages.
  const scan = (start: number, end: number, depth: number): boolean => {
    if (depth > limit) throw new TooDeep();
    deepest = Math.max(deepest, depth);
    let groups = 0;
    let p = start;
    while (p < end) {
      const tag = varint(p, end);
      if (!tag || tag[0] < 8) return false;
      p = tag[1];
      const wire = tag[0] % 8;
      if (wire === 0) {
        const v = varint(p, end);
        if (!v) return false;
        p = v[1];
      } else if (wire === 1) p += 8;
      else if (wire === 5) p += 4;
      else if (wire === 2) {
        const len = varint(p, end);
        if (!len || len[1] + len[0] > end) return false;
        p = len[1];
        if (len[0] > 0) scan(p, p + len[0], depth + 1);
        p += len[0];
      } else if (wire === 3) {
        groups++;
        if (depth + groups > limit) throw new TooDeep();
        deepest = Math.max(deepest, depth + groups);
      } else if (wire === 4) {
        if (--groups < 0) return false;
      } else return false;
    }
    if (p !== end || groups !== 0) return false;
    return true;
  };
  try {
    scan(0, bytes.length, 1);
  } catch (e) {
    if (e instanceof TooDeep) return limit + 1;
    throw e;
  }
  return deepest;
}

// deno-lint-ignore no-explicit-any
function valueInfoFrom(v: any): OnnxValueInfo {
  const tt = v.type?.tensorType;
  const shape = tt?.shape;
  return {
    name: v.name ?? "",
    elemType: tt?.elemType ?? 0,
    dims: shape
      ? shape.dim.map((d: { value?: string; dimValue?: number | Long; dimParam?: string }) =>
        d.value === "dimValue" ? num(d.dimValue) : d.value === "dimParam" ? d.dimParam! : null
      )
      : null,
  };
}

// deno-lint-ignore no-explicit-any
function nodeFrom(n: any, fileName: string): OnnxNode {
  return {
    name: n.name ?? "",
    opType: n.opType ?? "",
    domain: n.domain ?? "",
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    // deno-lint-ignore no-explicit-any
    attributes: (n.attribute ?? []).map((a: any): OnnxAttribute => {
      const at: OnnxAttribute = { name: a.name ?? "", type: a.type ?? 0 };
      switch (at.type) {
        case ATTR.FLOAT:
          at.f = a.f ?? 0;
          break;
        case ATTR.INT:
          at.i = num(a.i);
          break;
        case ATTR.STRING:
          at.s = utf8.decode(a.s ?? new Uint8Array());
          break;
        case ATTR.TENSOR:
          at.t = tensorFrom(a.t ?? {}, fileName);
          break;
        case ATTR.FLOATS:
          at.floats = [...(a.floats ?? [])];
          break;
        case ATTR.INTS:
          at.ints = (a.ints ?? []).map(num);
          break;
        case ATTR.STRINGS:
          at.strings = (a.strings ?? []).map((s: Uint8Array) => utf8.decode(s));
          break;
      }
      return at;
    }),
  };
}

/**
 * Copies little-endian bytes into a fresh, aligned buffer of exactly their length (protobufjs may
 * hand out Node Buffers, whose `slice` is a view into a shared pool).
 */
function aligned(raw: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  return copy.buffer;
}

// deno-lint-ignore no-explicit-any
function tensorFrom(t: any, fileName: string): OnnxTensor {
  const name: string = t.name ?? "";
  const dims: number[] = (t.dims ?? []).map(num);
  const dataType: number = t.dataType ?? 0;
  const label = name ? `tensor "${name}"` : "a constant tensor";
  if (t.dataLocation === 1 || (t.externalData ?? []).length > 0) {
    throw new OnnxFormatError(
      fileName,
      `${label} keeps its data in an external file, which is not supported`,
    );
  }
  const raw: Uint8Array | undefined = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const width = ELEMENT_BYTES[dataType];
  if (width === undefined) {
    throw new OnnxFormatError(
      fileName,
      `${label} has element type ${onnxDtypeName(dataType)}; supported: FLOAT, DOUBLE, INT32, INT64`,
    );
  }
  if (raw && raw.length % width !== 0) {
    throw new OnnxFormatError(
      fileName,
      `${label} has ${raw.length} data bytes, not a whole number of values`,
    );
  }
  let data: Float32Array | Float64Array;
  switch (dataType) {
    case ONNX_DTYPE.FLOAT:
      data = raw ? new Float32Array(aligned(raw)) : Float32Array.from(t.floatData ?? []);
      break;
    case ONNX_DTYPE.DOUBLE:
      data = raw ? new Float64Array(aligned(raw)) : Float64Array.from(t.doubleData ?? []);
      break;
    case ONNX_DTYPE.INT32:
      data = raw ? Float64Array.from(new Int32Array(aligned(raw))) : Float64Array.from(t.int32Data ?? []);
      break;
    default: // INT64
      data = raw
        ? Float64Array.from(new BigInt64Array(aligned(raw)), Number)
        : Float64Array.from((t.int64Data ?? []).map(num));
  }
  if (data.length !== numel(dims)) {
    throw new OnnxFormatError(
      fileName,
      `${label} holds ${data.length} values but its shape [${dims}] needs ${numel(dims)}`,
    );
  }
  return { name, dataType, dims, data };
}

/**
 * A FLOAT tensor for encoding.
 *
 * @example
 * ```ts
 * import { floatTensor } from "./onnx_proto.ts";
 * console.log(floatTensor("b", [2], new Float32Array([1, 2])).dataType); // 1
 * ```
 */
export function floatTensor(name: string, dims: number[], data: Float32Array): OnnxTensor {
  return { name, dataType: ONNX_DTYPE.FLOAT, dims: [...dims], data };
}

/**
 * An INT64 tensor for encoding.
 *
 * @example
 * ```ts
 * import { int64Tensor } from "./onnx_proto.ts";
 * console.log(int64Tensor("axes", [2], [2, 3]).data); // Float64Array [2, 3]
 * ```
 */
export function int64Tensor(name: string, dims: number[], values: number[]): OnnxTensor {
  return { name, dataType: ONNX_DTYPE.INT64, dims: [...dims], data: Float64Array.from(values) };
}

function rawBytes(t: OnnxTensor): Uint8Array {
  let arr: ArrayBufferView;
  switch (t.dataType) {
    case ONNX_DTYPE.FLOAT:
      arr = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
      break;
    case ONNX_DTYPE.DOUBLE:
      arr = Float64Array.from(t.data);
      break;
    case ONNX_DTYPE.INT32:
      arr = Int32Array.from(t.data);
      break;
    case ONNX_DTYPE.INT64:
      arr = BigInt64Array.from(t.data, (v) => BigInt(v));
      break;
    default:
      throw new Error(`cannot encode tensor "${t.name}" of element type ${onnxDtypeName(t.dataType)}`);
  }
  // Typed arrays are little-endian on every platform Deno runs on, as ONNX raw_data requires.
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).slice();
}

function tensorRecord(t: OnnxTensor): TensorRecord {
  return { name: t.name, dataType: t.dataType, dims: t.dims, raw: rawBytes(t) };
}

function attributeRecord(a: OnnxAttribute): AttributeRecord {
  return { ...a, t: a.t === undefined ? undefined : tensorRecord(a.t) };
}

/**
 * Encodes a model as ONNX protobuf bytes through the package's one writer
 * (`lib/onnx/messages.ts`). Same object, same bytes (fields in field-number order, tensors as
 * little-endian `raw_data`).
 *
 * @example
 * ```ts
 * import { encodeOnnxModel } from "./onnx_proto.ts";
 * const bytes = encodeOnnxModel({
 *   irVersion: 8, opsetImports: [{ domain: "", version: 13 }], producerName: "demo", producerVersion: "1",
 *   docString: "", graphName: "g", metadata: [["k", "v"]], inputs: [], outputs: [], initializers: [],
 *   nodes: [{ name: "id", opType: "Identity", domain: "", inputs: ["x"], outputs: ["y"], attributes: [] }],
 * });
 * console.log(bytes.length > 0); // true
 * ```
 */
export function encodeOnnxModel(m: OnnxModel): Uint8Array {
  return encodeModelProto({
    irVersion: m.irVersion,
    producerName: m.producerName,
    producerVersion: m.producerVersion,
    docString: m.docString,
    graph: {
      nodes: m.nodes.map((n) => ({ ...n, attributes: n.attributes.map(attributeRecord) })),
      name: m.graphName,
      initializers: m.initializers.map(tensorRecord),
      inputs: m.inputs,
      outputs: m.outputs,
    },
    opsetImports: m.opsetImports,
    metadata: m.metadata,
  });
}

/**
 * The operator-set version of the default (ai.onnx) domain, or undefined.
 *
 * @example
 * ```ts
 * import { defaultOpset } from "./onnx_proto.ts";
 * console.log(defaultOpset([{ domain: "ai.onnx", version: 13 }])); // 13
 * ```
 */
export function defaultOpset(imports: { domain: string; version: number }[]): number | undefined {
  return imports.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version;
}
