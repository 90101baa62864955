/**
 * The package's one ONNX writer: ModelProto and the messages below it, from plain records, on
 * {@link ProtoWriter}. Fields are written in field-number order; an `undefined` optional field
 * is left out, an empty string is written (proto2 presence). The training and frozen graph
 * compilers (through `OnnxBuilder`) and the exporter and model rewriter (through
 * `convert/onnx_proto.ts`) all serialise here.
 *
 * @example
 * ```ts
 * import { encodeModelProto } from "./messages.ts";
 * const bytes = encodeModelProto({
 *   irVersion: 8,
 *   producerName: "demo",
 *   opsetImports: [{ domain: "", version: 13 }],
 *   graph: {
 *     name: "g",
 *     nodes: [{ opType: "Identity", name: "id", inputs: ["x"], outputs: ["y"], attributes: [] }],
 *     initializers: [],
 *     inputs: [{ name: "x", elemType: 1, dims: [2] }],
 *     outputs: [{ name: "y", elemType: 1, dims: [2] }],
 *   },
 * });
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */

import { ProtoWriter } from "./protobuf.ts";

/** TensorProto with `raw_data` (little-endian values). */
export interface TensorRecord {
  /** Tensor name. */
  name: string;
  /** ONNX element type number. */
  dataType: number;
  /** Dimensions (`[]` for a scalar). */
  dims: readonly number[];
  /** Raw little-endian values. */
  raw: Uint8Array;
}

/** AttributeProto; only the fields of its type are set. */
export interface AttributeRecord {
  /** Attribute name. */
  name: string;
  /** AttributeProto.AttributeType number (1 FLOAT, 2 INT, 3 STRING, 4 TENSOR, 6 FLOATS, 7 INTS, 8 STRINGS). */
  type: number;
  /** FLOAT value. */
  f?: number;
  /** INT value. */
  i?: number;
  /** STRING value. */
  s?: string;
  /** TENSOR value. */
  t?: TensorRecord;
  /** FLOATS values. */
  floats?: readonly number[];
  /** INTS values. */
  ints?: readonly number[];
  /** STRINGS values. */
  strings?: readonly string[];
}

/** NodeProto. */
export interface NodeRecord {
  /** Input names (`""` for an omitted optional input). */
  inputs: readonly string[];
  /** Output names. */
  outputs: readonly string[];
  /** Node name. */
  name: string;
  /** Operator type. */
  opType: string;
  /** Attributes in order. */
  attributes: readonly AttributeRecord[];
  /** Operator domain; left out when undefined. */
  domain?: string;
}

/** ValueInfoProto of a tensor: element type and dimensions (numbers, names, or null for unknown). */
export interface ValueInfoRecord {
  /** Value name. */
  name: string;
  /** Element type number. */
  elemType: number;
  /** Dimensions, or null when the rank is unknown (no shape written). */
  dims: readonly (number | string | null)[] | null;
}

/** GraphProto. */
export interface GraphRecord {
  /** Nodes in topological order. */
  nodes: readonly NodeRecord[];
  /** Graph name. */
  name: string;
  /** Initializers. */
  initializers: readonly TensorRecord[];
  /** Graph inputs. */
  inputs: readonly ValueInfoRecord[];
  /** Graph outputs. */
  outputs: readonly ValueInfoRecord[];
}

/** ModelProto; optional fields left undefined are not written. */
export interface ModelRecord {
  /** IR version. */
  irVersion: number;
  /** Producer name. */
  producerName?: string;
  /** Producer version. */
  producerVersion?: string;
  /** Documentation string. */
  docString?: string;
  /** The graph. */
  graph: GraphRecord;
  /** Operator sets. */
  opsetImports: readonly { domain: string; version: number }[];
  /** `metadata_props` pairs. */
  metadata?: readonly (readonly [string, string])[];
}

/**
 * TensorProto bytes.
 *
 * @example
 * ```ts
 * import { encodeTensorProto } from "./messages.ts";
 * console.log(encodeTensorProto({ name: "w", dataType: 1, dims: [1], raw: new Uint8Array(4) }).length); // 13
 * ```
 */
export function encodeTensorProto(t: TensorRecord): Uint8Array {
  const w = new ProtoWriter();
  if (t.dims.length) w.packedVarints(1, t.dims);
  w.varint(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, t.raw);
  return w.finish();
}

/**
 * AttributeProto bytes.
 *
 * @example
 * ```ts
 * import { encodeAttributeProto } from "./messages.ts";
 * console.log(encodeAttributeProto({ name: "axis", type: 2, i: 1 })); // Uint8Array [10, 4, 97, 120, 105, 115, 24, 1, 160, 1, 2]
 * ```
 */
export function encodeAttributeProto(a: AttributeRecord): Uint8Array {
  const w = new ProtoWriter().string(1, a.name);
  if (a.f !== undefined) w.float(2, a.f);
  if (a.i !== undefined) w.varint(3, a.i);
  if (a.s !== undefined) w.string(4, a.s);
  if (a.t !== undefined) w.bytes(5, encodeTensorProto(a.t));
  if (a.floats?.length) w.packedFloats(7, a.floats);
  if (a.ints?.length) w.packedVarints(8, a.ints);
  for (const s of a.strings ?? []) w.string(9, s);
  w.varint(20, a.type);
  return w.finish();
}

/**
 * NodeProto bytes.
 *
 * @example
 * ```ts
 * import { encodeNodeProto } from "./messages.ts";
 * console.log(encodeNodeProto({ opType: "Relu", name: "r", inputs: ["x"], outputs: ["y"], attributes: [] }).length); // 15
 * ```
 */
export function encodeNodeProto(n: NodeRecord): Uint8Array {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes) w.bytes(5, encodeAttributeProto(a));
  if (n.domain !== undefined) w.string(7, n.domain);
  return w.finish();
}

/**
 * ValueInfoProto bytes of a tensor.
 *
 * @example
 * ```ts
 * import { encodeValueInfoProto } from "./messages.ts";
 * console.log(encodeValueInfoProto({ name: "x", elemType: 1, dims: ["batch", 3] }).length > 0); // true
 * ```
 */
export function encodeValueInfoProto(v: ValueInfoRecord): Uint8Array {
  const tensorType = new ProtoWriter().varint(1, v.elemType);
  if (v.dims !== null) {
    const shape = new ProtoWriter();
    for (const d of v.dims) {
      const dim = new ProtoWriter();
      if (typeof d === "number") dim.varint(1, d);
      else if (typeof d === "string") dim.string(2, d);
      shape.bytes(1, dim.finish());
    }
    tensorType.bytes(2, shape.finish());
  }
  const type = new ProtoWriter().bytes(1, tensorType.finish());
  return new ProtoWriter().string(1, v.name).bytes(2, type.finish()).finish();
}

/**
 * GraphProto bytes.
 *
 * @example
 * ```ts
 * import { encodeGraphProto } from "./messages.ts";
 * console.log(encodeGraphProto({ nodes: [], name: "g", initializers: [], inputs: [], outputs: [] })); // Uint8Array [18, 1, 103]
 * ```
 */
export function encodeGraphProto(g: GraphRecord): Uint8Array {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.bytes(1, encodeNodeProto(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.bytes(5, encodeTensorProto(t));
  for (const v of g.inputs) w.bytes(11, encodeValueInfoProto(v));
  for (const v of g.outputs) w.bytes(12, encodeValueInfoProto(v));
  return w.finish();
}

/**
 * ModelProto bytes.
 *
 * @example
 * ```ts
 * import { encodeModelProto } from "./messages.ts";
 * const graph = { nodes: [], name: "g", initializers: [], inputs: [], outputs: [] };
 * console.log(encodeModelProto({ irVersion: 8, graph, opsetImports: [] }).length); // 7
 * ```
 */
export function encodeModelProto(m: ModelRecord): Uint8Array {
  const w = new ProtoWriter().varint(1, m.irVersion);
  if (m.producerName !== undefined) w.string(2, m.producerName);
  if (m.producerVersion !== undefined) w.string(3, m.producerVersion);
  if (m.docString !== undefined) w.string(6, m.docString);
  w.bytes(7, encodeGraphProto(m.graph));
  for (const o of m.opsetImports) {
    w.bytes(8, new ProtoWriter().string(1, o.domain).varint(2, o.version).finish());
  }
  for (const [key, value] of m.metadata ?? []) {
    w.bytes(14, new ProtoWriter().string(1, key).string(2, value).finish());
  }
  return w.finish();
}
