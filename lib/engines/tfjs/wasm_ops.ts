/**
 * Backend-level building blocks for the project's wasm kernels: thin calls into the wasm
 * backend's own registered kernels (XNNPACK convolution, transpose, pad, ...) on raw
 * TensorInfos, plus direct views of the wasm heap. Nothing here records on a gradient tape or
 * registers tensors with the engine, so every intermediate must be handed to {@link WasmOps.dispose}.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { WasmOps } from "./wasm_ops.ts";
 * import type { TfjsWasmBackend } from "../../deps.ts";
 * const tf = await initTfjs("wasm");
 * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
 * const a = ops.output([2, 3]);
 * ops.f32(a).set([1, 2, 3, 4, 5, 6]);
 * const t = ops.transpose(a, [1, 0]);
 * console.log(Array.from(ops.f32(t))); // [1, 4, 2, 5, 3, 6]
 * ops.dispose(a, t);
 * ```
 * @module
 */

import type { Tf, TfjsWasmBackend, TfTensorInfo } from "../../deps.ts";

/** Explicit NHWC padding as tfjs spells it: `[[0, 0], [top, bottom], [left, right], [0, 0]]`. */
export type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

/** Convolution settings of {@link WasmOps.conv2d} (NHWC input, HWIO filter). */
export interface ConvSettings {
  /** `[strideHeight, strideWidth]`. */
  strides: [number, number];
  /** `[dilationHeight, dilationWidth]`. */
  dilations: [number, number];
  /** `[[top, bottom], [left, right]]`, all >= 0. */
  pads: [[number, number], [number, number]];
}

/** Kernel calls and heap access on the wasm backend. */
export class WasmOps {
  /** Binds the tfjs namespace (for the kernel registry) and the wasm backend instance. */
  constructor(readonly tf: Tf, readonly backend: TfjsWasmBackend) {}

  /**
   * Runs the wasm backend's registered kernel `name` and returns its single output.
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const z = ops.run("Fill", {}, { shape: [2], value: 3, dtype: "float32" });
   * console.log(Array.from(ops.f32(z))); // [3, 3]
   * ops.dispose(z);
   * ```
   */
  run(name: string, inputs: Record<string, TfTensorInfo>, attrs: Record<string, unknown> = {}): TfTensorInfo {
    const kernel = this.tf.getKernel(name, "wasm");
    if (!kernel) throw new Error(`wasm backend has no '${name}' kernel`);
    const out = kernel.kernelFunc({
      inputs,
      attrs: attrs as never,
      backend: this.backend as never,
    });
    if (Array.isArray(out)) throw new Error(`wasm kernel '${name}' returned several outputs`);
    return out;
  }

  /**
   * XNNPACK convolution: NHWC `x`, HWIO `filter`, explicit non-negative padding.
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const x = ops.output([1, 1, 2, 1]), w = ops.output([1, 1, 1, 1]);
   * ops.f32(x).set([1, 2]); ops.f32(w).set([3]);
   * const y = ops.conv2d(x, w, { strides: [1, 1], dilations: [1, 1], pads: [[0, 0], [0, 0]] });
   * console.log(Array.from(ops.f32(y))); // [3, 6]
   * ops.dispose(x, w, y);
   * ```
   */
  conv2d(x: TfTensorInfo, filter: TfTensorInfo, s: ConvSettings): TfTensorInfo {
    const [[top, bottom], [left, right]] = s.pads;
    if (Math.min(top, bottom, left, right) < 0) throw new Error("conv2d padding must be non-negative");
    const pad: ExplicitPadding = [[0, 0], [top, bottom], [left, right], [0, 0]];
    return this.run("Conv2D", { x, filter }, {
      strides: s.strides,
      dilations: s.dilations,
      pad,
      dataFormat: "NHWC",
      dimRoundingMode: "floor",
    });
  }

  /**
   * Per-channel affine map `y[..., c] = x[..., c] * scale[c] + shift[c]` (channels last), run as
   * an XNNPACK 1x1 depthwise convolution with bias: one SIMD pass.
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const x = ops.output([2, 2]);
   * ops.f32(x).set([1, 2, 3, 4]);
   * const y = ops.channelAffine(x, new Float32Array([10, 100]), new Float32Array([1, 0]));
   * console.log(Array.from(ops.f32(y))); // [11, 200, 31, 400]
   * ops.dispose(x, y);
   * ```
   */
  channelAffine(x: TfTensorInfo, scale: Float32Array, shift: Float32Array | null): TfTensorInfo {
    const c = scale.length;
    const size = x.shape.reduce((p, q) => p * q, 1);
    if (x.shape[x.shape.length - 1] !== c) {
      throw new Error(`channelAffine: ${c} scales for input [${x.shape}]`);
    }
    if (size === 0) return this.output(x.shape);
    const filter = this.output([1, 1, c, 1]);
    const bias = shift ? this.output([c]) : null;
    this.f32(filter).set(scale);
    if (bias) this.f32(bias).set(shift!);
    const flat = this.reshape(x, [1, 1, size / c, c]);
    const inputs: Record<string, TfTensorInfo> = { x: flat, filter };
    if (bias) inputs.bias = bias;
    const y = this.run("FusedDepthwiseConv2D", inputs, {
      strides: [1, 1],
      pad: "valid",
      dilations: [1, 1],
      dataFormat: "NHWC",
      activation: "linear",
    });
    this.dispose(flat, filter, bias);
    const out = this.reshape(y, x.shape);
    this.dispose(y);
    return out;
  }

  /**
   * Permutes dimensions.
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const a = ops.output([1, 2, 3]);
   * const t = ops.transpose(a, [2, 1, 0]);
   * console.log(t.shape); // [3, 2, 1]
   * ops.dispose(a, t);
   * ```
   */
  transpose(x: TfTensorInfo, perm: number[]): TfTensorInfo {
    return this.run("Transpose", { x }, { perm });
  }

  /**
   * Same data, new shape (shares the buffer; dispose it like any other output).
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const a = ops.output([2, 3]);
   * const r = ops.reshape(a, [3, 2]);
   * console.log(r.shape); // [3, 2]
   * ops.dispose(a, r);
   * ```
   */
  reshape(x: TfTensorInfo, shape: number[]): TfTensorInfo {
    return this.run("Reshape", { x }, { shape });
  }

  /**
   * Contiguous sub-block.
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const a = ops.output([4]);
   * ops.f32(a).set([1, 2, 3, 4]);
   * const s = ops.slice(a, [1], [2]);
   * console.log(Array.from(ops.f32(s))); // [2, 3]
   * ops.dispose(a, s);
   * ```
   */
  slice(x: TfTensorInfo, begin: number[], size: number[]): TfTensorInfo {
    return this.run("Slice", { x }, { begin, size });
  }

  /**
   * Concatenation along `axis`.
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const a = ops.output([1, 2]), b = ops.output([1, 2]);
   * const c = ops.concat([a, b], 0);
   * console.log(c.shape); // [2, 2]
   * ops.dispose(a, b, c);
   * ```
   */
  concat(xs: TfTensorInfo[], axis: number): TfTensorInfo {
    const kernel = this.tf.getKernel("Concat", "wasm")!;
    return kernel.kernelFunc({
      inputs: xs as never,
      attrs: { axis } as never,
      backend: this.backend as never,
    }) as TfTensorInfo;
  }

  /**
   * A new float32 tensor on the wasm heap (contents undefined until written).
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const a = ops.output([2, 2]);
   * console.log(ops.f32(a).length); // 4
   * ops.dispose(a);
   * ```
   */
  output(shape: number[]): TfTensorInfo {
    return this.backend.makeOutput(shape, "float32");
  }

  /**
   * Float32 view of a tensor's heap memory. Take it after the last allocation that precedes
   * its use: a growing wasm memory detaches earlier views.
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const a = ops.output([3]);
   * ops.f32(a).fill(1);
   * console.log(Array.from(ops.f32(a))); // [1, 1, 1]
   * ops.dispose(a);
   * ```
   */
  f32(x: TfTensorInfo): Float32Array {
    if (x.dtype !== "float32") throw new Error(`expected a float32 tensor, got ${x.dtype}`);
    return this.backend.typedArrayFromHeap(x) as Float32Array;
  }

  /**
   * Releases intermediates (a reshape's shared buffer goes when its last holder goes).
   *
   * @example
   * ```ts
   * import { initTfjs } from "./backend.ts";
   * import { WasmOps } from "./wasm_ops.ts";
   * import type { TfjsWasmBackend } from "../../deps.ts";
   * const tf = await initTfjs("wasm");
   * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
   * const before = ops.backend.numDataIds();
   * ops.dispose(ops.output([8]));
   * console.log(ops.backend.numDataIds() === before); // true
   * ```
   */
  dispose(...xs: (TfTensorInfo | null | undefined)[]): void {
    for (const x of xs) if (x) this.backend.disposeData(x.dataId);
  }
}

/**
 * Normalises a stride or dilation attribute to `[height, width]`.
 *
 * @example
 * ```ts
 * import { pair } from "./wasm_ops.ts";
 * console.log(pair(2), pair([1, 3])); // [2, 2] [1, 3]
 * ```
 */
export function pair(v: number | readonly number[]): [number, number] {
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}
