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

import { type AttributeRecord, encodeModelProto, type NodeRecord, type ValueInfoRecord } from "./messages.ts";

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

interface BuilderNode {
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
  readonly #nodes: BuilderNode[] = [];
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
    const domains = new Set(this.#nodes.map((n) => n.domain).filter((d) => d !== ""));
    return encodeModelProto({
      irVersion: 8,
      producerName: "oracle-kd",
      graph: {
        nodes: this.#nodes.map(nodeRecord),
        name: this.name,
        initializers: this.#inits.map((t) => ({
          name: t.name,
          dataType: ONNX_DTYPES[t.dtype],
          dims: t.dims,
          raw: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        })),
        inputs: this.#inputs.map(valueInfoRecord),
        outputs: this.#outputs.map(valueInfoRecord),
      },
      opsetImports: [
        { domain: "", version: opset },
        ...[...domains].map((domain) => ({ domain, version: 1 })),
      ],
    });
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

/** The node as the writer's record: named after its first output, the default domain left out. */
function nodeRecord(n: BuilderNode): NodeRecord {
  return {
    inputs: n.inputs,
    outputs: n.outputs,
    name: n.outputs[0],
    opType: n.op,
    attributes: Object.entries(n.attrs).map(([name, v]) => attributeRecord(name, v)),
    domain: n.domain || undefined,
  };
}

// AttributeProto.AttributeType codes.
const ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_STRING = 3, ATTR_INTS = 7;

function attributeRecord(name: string, v: AttrValue): AttributeRecord {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an int (use floatAttr)`);
    return { name, type: ATTR_INT, i: v };
  }
  if (typeof v === "string") return { name, type: ATTR_STRING, s: v };
  if (Array.isArray(v)) return { name, type: ATTR_INTS, ints: v };
  return { name, type: ATTR_FLOAT, f: (v as FloatAttr).float };
}

function valueInfoRecord(v: ValueRecord): ValueInfoRecord {
  return { name: v.name, elemType: ONNX_DTYPES[v.dtype], dims: v.dims ?? null };
}
