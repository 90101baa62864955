/**
 * A minimal protocol-buffers writer: just the wire types ONNX models use (varint, 32-bit float,
 * length-delimited), enough to serialise a ModelProto without a protobuf runtime.
 *
 * @example
 * ```ts
 * import { ProtoWriter } from "./protobuf.ts";
 * const w = new ProtoWriter();
 * w.varint(1, 150);
 * console.log(w.finish()); // Uint8Array [8, 150, 1]
 * ```
 * @module
 */

const encoder = new TextEncoder();

/** Appends protobuf fields to a growable byte buffer. */
export class ProtoWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  /** Field `field` as a varint (int32, int64, enum, bool); negative values use 10 bytes. */
  varint(field: number, value: number): this {
    this.#tag(field, 0);
    this.#rawVarint(value);
    return this;
  }

  /** Field `field` as a 32-bit float. */
  float(field: number, value: number): this {
    this.#tag(field, 5);
    this.#reserve(4);
    new DataView(this.#buf.buffer).setFloat32(this.#len, value, true);
    this.#len += 4;
    return this;
  }

  /** Field `field` as a UTF-8 string. */
  string(field: number, value: string): this {
    return this.bytes(field, encoder.encode(value));
  }

  /** Field `field` as raw bytes (also embedded messages: pass their `finish()`). */
  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, 2);
    this.#rawVarint(value.length);
    this.#reserve(value.length);
    this.#buf.set(value, this.#len);
    this.#len += value.length;
    return this;
  }

  /** Field `field` as a packed repeated varint. */
  packedVarints(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.#rawVarint(v);
    return this.bytes(field, inner.finish());
  }

  /** Field `field` as a packed repeated float. */
  packedFloats(field: number, values: readonly number[]): this {
    return this.bytes(field, new Uint8Array(Float32Array.from(values).buffer));
  }

  /** The bytes written so far. */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  #tag(field: number, wireType: number): void {
    this.#rawVarint(field * 8 + wireType);
  }

  #rawVarint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new Error(`protobuf varint must be a safe integer, got ${value}`);
    this.#reserve(10);
    // Two's complement for negatives (int64 semantics), via BigInt only when needed.
    let v = value < 0 ? BigInt.asUintN(64, BigInt(value)) : null;
    if (v === null) {
      let u = value;
      while (u >= 0x80) {
        this.#buf[this.#len++] = (u % 0x80) | 0x80;
        u = Math.floor(u / 0x80);
      }
      this.#buf[this.#len++] = u;
      return;
    }
    while (v >= 0x80n) {
      this.#buf[this.#len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#len++] = Number(v);
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
}
