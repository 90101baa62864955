/**
 * Builds ONNX models in memory: graph inputs and outputs, initializers, nodes with attributes,
 * serialised to ModelProto bytes that onnxruntime loads directly. Names of intermediate values
 * are generated, so graph compilers only wire values together.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "./builder.ts";
 * const b = new OnnxBuilder("double");
 * const x = b.input("x", "float32", [2]);
 * b.output(b.op("Mul", [x, b.scalar(2)]), "y");
 * console.log(b.toModel().length > 0); // true
 * ```
 * @module
 */

import { ProtoWriter } from "./protobuf.ts";

/** Element types the compilers use, with their ONNX TensorProto.DataType codes. */
export const ONNX_DTYPES = { float32: 1, int32: 6, int64: 7, bool: 9 } as const;
/** An element type name. */
export type OnnxDType = keyof typeof ONNX_DTYPES;

/** A float attribute (plain numbers are int attributes). */
export interface FloatAttr {
  /** Marks the value as FLOAT. */
  float: number;
}

/** Attribute values: int, ints, string, or float. */
export type AttrValue = number | readonly number[] | string | FloatAttr;

/**
 * Marks `v` as a float attribute.
 *
 * @example
 * ```ts
 * import { floatAttr } from "./builder.ts";
 * console.log(floatAttr(0.5)); // { float: 0.5 }
 * ```
 */
export function floatAttr(v: number): FloatAttr {
  return { float: v };
}

interface NodeRecord {
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

interface ValueRecord {
  name: string;
  dtype: OnnxDType;
  /** Dimensions; a string is a symbolic dimension, undefined an unknown shape. */
  dims?: readonly (number | string)[];
}

interface InitializerRecord {
  name: string;
  dtype: OnnxDType;
  dims: readonly number[];
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

/** Accumulates an ONNX graph and serialises it. */
export class OnnxBuilder {
  readonly #nodes: NodeRecord[] = [];
  readonly #inputs: ValueRecord[] = [];
  readonly #outputs: ValueRecord[] = [];
  readonly #inits: InitializerRecord[] = [];
  readonly #scalars = new Map<string, string>();
  readonly #taken = new Set<string>();
  #counter = 0;

  /** Starts an empty graph called `name`. */
  constructor(readonly name: string) {}

  /** Declares a graph input and returns its name. */
  input(name: string, dtype: OnnxDType, dims: readonly (number | string)[]): string {
    this.#claim(name);
    this.#inputs.push({ name, dtype, dims });
    return name;
  }

  /**
   * Declares `value` a graph output called `name` (an Identity is inserted when the names
   * differ). Returns `name`.
   */
  output(value: string, name = value, dtype: OnnxDType = "float32"): string {
    if (name !== value) {
      this.#claim(name);
      this.#nodes.push({ op: "Identity", domain: "", inputs: [value], outputs: [name], attrs: {} });
    }
    this.#outputs.push({ name, dtype });
    return name;
  }

  /** Adds a named constant tensor (weights) and returns its name. */
  initializer(
    name: string,
    data: Float32Array | Int32Array | BigInt64Array | Uint8Array,
    dims: readonly number[],
    dtype: OnnxDType = "float32",
  ): string {
    this.#claim(name);
    return this.#pushInit(name, data, dims, dtype);
  }

  /** A float32 constant with a generated name. */
  constant(data: Float32Array | readonly number[], dims: readonly number[]): string {
    return this.#pushInit(this.fresh("const"), Float32Array.from(data), dims, "float32");
  }

  /** An int64 constant (shapes, axes) with a generated name; equal values share one tensor. */
  int64s(values: readonly number[]): string {
    const key = `i64:${values.join(",")}`;
    let name = this.#scalars.get(key);
    if (!name) {
      name = this.#pushInit(
        this.fresh("ints"),
        BigInt64Array.from(values.map(BigInt)),
        [values.length],
        "int64",
      );
      this.#scalars.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant; equal values share one tensor. */
  scalar(value: number): string {
    const key = `f32:${Object.is(value, -0) ? "-0" : value}`;
    let name = this.#scalars.get(key);
    if (!name) {
      name = this.#pushInit(this.fresh("scalar"), new Float32Array([value]), [], "float32");
      this.#scalars.set(key, name);
    }
    return name;
  }

  /** Adds a node with one output and returns the output's (generated) name. */
  op(op: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, domain = ""): string {
    return this.opN(op, inputs, 1, attrs, domain)[0];
  }

  /** Adds a node with `count` outputs and returns their generated names. */
  opN(
    op: string,
    inputs: readonly string[],
    count: number,
    attrs: Record<string, AttrValue> = {},
    domain = "",
  ): string[] {
    const outputs = Array.from({ length: count }, () => this.fresh(op.toLowerCase()));
    this.#nodes.push({ op, domain, inputs: [...inputs], outputs, attrs });
    return outputs;
  }

  /** A new unused value name starting with `prefix`. */
  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.#counter++}`; while (this.#taken.has(name));
    this.#taken.add(name);
    return name;
  }

  /** Number of nodes so far. */
  get nodeCount(): number {
    return this.#nodes.length;
  }

  /** Serialises the model (ONNX IR 8, default opset `opset`, plus com.microsoft when used). */
  toModel(opset = 18): Uint8Array {
    const graph = new ProtoWriter();
    for (const n of this.#nodes) graph.bytes(1, encodeNode(n));
    graph.string(2, this.name);
    for (const t of this.#inits) graph.bytes(5, encodeTensor(t));
    for (const v of this.#inputs) graph.bytes(11, encodeValueInfo(v));
    for (const v of this.#outputs) graph.bytes(12, encodeValueInfo(v));
    const model = new ProtoWriter();
    model.varint(1, 8);
    model.string(2, "oracle-kd");
    model.bytes(7, graph.finish());
    model.bytes(8, new ProtoWriter().string(1, "").varint(2, opset).finish());
    const domains = new Set(this.#nodes.map((n) => n.domain).filter((d) => d !== ""));
    for (const d of domains) model.bytes(8, new ProtoWriter().string(1, d).varint(2, 1).finish());
    return model.finish();
  }

  #pushInit(
    name: string,
    data: InitializerRecord["data"],
    dims: readonly number[],
    dtype: OnnxDType,
  ): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims}]`);
    this.#inits.push({ name, dtype, dims, data });
    return name;
  }

  #claim(name: string): void {
    if (this.#taken.has(name)) throw new Error(`ONNX value name ${name} used twice`);
    this.#taken.add(name);
  }
}

function encodeNode(n: NodeRecord): Uint8Array {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.outputs[0]);
  w.string(4, n.op);
  for (const [name, v] of Object.entries(n.attrs)) w.bytes(5, encodeAttr(name, v));
  if (n.domain) w.string(7, n.domain);
  return w.finish();
}

// AttributeProto.AttributeType codes.
const ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_STRING = 3, ATTR_INTS = 7;

function encodeAttr(name: string, v: AttrValue): Uint8Array {
  const w = new ProtoWriter().string(1, name);
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an int (use floatAttr)`);
    w.varint(3, v).varint(20, ATTR_INT);
  } else if (typeof v === "string") {
    w.string(4, v).varint(20, ATTR_STRING);
  } else if (Array.isArray(v)) {
    w.packedVarints(8, v).varint(20, ATTR_INTS);
  } else {
    w.float(2, (v as FloatAttr).float).varint(20, ATTR_FLOAT);
  }
  return w.finish();
}

function encodeTensor(t: InitializerRecord): Uint8Array {
  const w = new ProtoWriter();
  if (t.dims.length) w.packedVarints(1, t.dims);
  w.varint(2, ONNX_DTYPES[t.dtype]);
  w.string(8, t.name);
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w.finish();
}

function encodeValueInfo(v: ValueRecord): Uint8Array {
  const tensorType = new ProtoWriter().varint(1, ONNX_DTYPES[v.dtype]);
  if (v.dims) {
    const shape = new ProtoWriter();
    for (const d of v.dims) {
      shape.bytes(
        1,
        typeof d === "number"
          ? new ProtoWriter().varint(1, d).finish()
          : new ProtoWriter().string(2, d).finish(),
      );
    }
    tensorType.bytes(2, shape.finish());
  }
  const type = new ProtoWriter().bytes(1, tensorType.finish());
  return new ProtoWriter().string(1, v.name).bytes(2, type.finish()).finish();
}
