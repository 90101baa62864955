/**
 * onnxruntime's blocked "NCHWc" layout, used explicitly by the fast graph compilers. A blocked
 * activation [N, C, H, W] (C a multiple of the block size B) is stored as [N, C/B, H, W, B], so
 * per-channel vectors keep plain channel order, and MLAS's direct NCHWc convolutions run on it
 * with weights in OIHWBiBo (or OIHWBo for NCHW inputs with fewer than B channels) order, whether
 * the weights are constants or graph inputs. onnxruntime only converts constant-weight
 * convolutions to this layout on its own, and inserts a reorder around every operator it does
 * not know; compiling to it directly avoids both limits.
 *
 * @example
 * ```ts
 * import { nchwcBlockSize } from "./nchwc.ts";
 * console.log([0, 4, 8, 16].includes(await nchwcBlockSize())); // true
 * ```
 * @module
 */

import type { OnnxBuilder } from "../../onnx/builder.ts";
import { ort } from "./session.ts";

/** Domain of onnxruntime's NCHWc operators. */
export const NCHWC_DOMAIN = "com.microsoft.nchwc";

let blockSize: Promise<number> | null = null;

/**
 * MLAS's NCHWc block size on this machine (16 with AVX-512, 8 with AVX2), or 0 when the
 * onnxruntime build has no NCHWc kernels. Probed once with a one-node model.
 *
 * @example
 * ```ts
 * import { nchwcBlockSize } from "./nchwc.ts";
 * console.log(Number.isInteger(await nchwcBlockSize())); // true
 * ```
 */
export function nchwcBlockSize(): Promise<number> {
  blockSize ??= probeBlockSize();
  return blockSize;
}

async function probeBlockSize(): Promise<number> {
  const { OnnxBuilder } = await import("../../onnx/builder.ts");
  try {
    const o = await ort();
    const b = new OnnxBuilder("nchwc_probe");
    b.output(b.op("ReorderInput", [b.input("x", "float32", [1, 4, 1, 1])], {}, NCHWC_DOMAIN), "y");
    const s = await o.InferenceSession.create(b.toModel(), { logSeverityLevel: 3 });
    const out = await s.run({ x: new o.Tensor("float32", new Float32Array(4), [1, 4, 1, 1]) });
    const size = Number(out.y.dims[1]);
    out.y.dispose();
    await s.release();
    return size > 1 ? size : 0;
  } catch {
    return 0;
  }
}

/**
 * Rounds `c` up to a multiple of `block`.
 *
 * @example
 * ```ts
 * import { padChannels } from "./nchwc.ts";
 * console.log(padChannels(3, 16), padChannels(32, 16)); // 16 32
 * ```
 */
export function padChannels(c: number, block: number): number {
  return Math.ceil(c / block) * block;
}

/**
 * Host-side reorder of a constant OIHW kernel [co, ci, k, k] for NCHWc convolutions: OIHWBiBo
 * ([co/B, ci/B, k, k, B(in), B(out)]) when the input is blocked, OIHWBo ([co/B, ci, k, k, B(out)])
 * when it is a plain NCHW tensor. Output channels are zero-padded to a multiple of B. Returns the
 * data and the logical dims onnxruntime expects ([co', ci', k, k]).
 *
 * @example
 * ```ts
 * import { reorderKernel } from "./nchwc.ts";
 * const r = reorderKernel(new Float32Array(3 * 2 * 1 * 1).map((_, i) => i), 3, 2, 1, 4, false);
 * console.log(r.dims, r.data.slice(0, 4)); // [4, 2, 1, 1] Float32Array [0, 2, 4, 0]
 * ```
 */
export function reorderKernel(
  w: Float32Array,
  co: number,
  ci: number,
  k: number,
  block: number,
  blockedInput: boolean,
): { data: Float32Array; dims: number[] } {
  const cop = padChannels(co, block);
  const kk = k * k;
  if (!blockedInput) {
    const out = new Float32Array(cop * ci * kk);
    for (let o = 0; o < co; o++) {
      const ob = Math.floor(o / block), bo = o % block;
      for (let i = 0; i < ci; i++) {
        for (let s = 0; s < kk; s++) out[((ob * ci + i) * kk + s) * block + bo] = w[(o * ci + i) * kk + s];
      }
    }
    return { data: out, dims: [cop, ci, k, k] };
  }
  const cip = padChannels(ci, block);
  const ib = cip / block;
  const out = new Float32Array(cop * cip * kk);
  for (let o = 0; o < co; o++) {
    const ob = Math.floor(o / block), bo = o % block;
    for (let i = 0; i < ci; i++) {
      const iblk = Math.floor(i / block), bi = i % block;
      for (let s = 0; s < kk; s++) {
        out[((((ob * ib + iblk) * kk + s) * block + bi) * block) + bo] = w[(o * ci + i) * kk + s];
      }
    }
  }
  return { data: out, dims: [cop, cip, k, k] };
}

/**
 * In-graph reorder of an OIHW kernel value [co, ci, k, k] (a graph input) to OIHWBiBo, or OIHWBo
 * when `blockedInput` is false; channel counts must already be multiples of B where blocked.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { reorderKernelOp } from "./nchwc.ts";
 * const b = new OnnxBuilder("r");
 * console.log(typeof reorderKernelOp(b, b.input("w", "float32", [16, 16, 3, 3]), 16, 16, 3, 16, true)); // string
 * ```
 */
export function reorderKernelOp(
  b: OnnxBuilder,
  w: string,
  co: number,
  ci: number,
  k: number,
  block: number,
  blockedInput: boolean,
): string {
  if (co % block !== 0) {
    throw new Error(`NCHWc kernel needs output channels divisible by ${block}, got ${co}`);
  }
  if (!blockedInput) {
    const v = b.op("Reshape", [w, b.int64s([co / block, block, ci, k, k])]);
    return b.op("Reshape", [b.op("Transpose", [v], { perm: [0, 2, 3, 4, 1] }), b.int64s([co, ci, k, k])]);
  }
  if (ci % block !== 0) throw new Error(`NCHWc kernel needs input channels divisible by ${block}, got ${ci}`);
  const v = b.op("Reshape", [w, b.int64s([co / block, block, ci / block, block, k, k])]);
  return b.op("Reshape", [b.op("Transpose", [v], { perm: [0, 2, 4, 5, 3, 1] }), b.int64s([co, ci, k, k])]);
}

/**
 * Spreads a blocked [n, c, oh, ow] tensor onto a grid `stride` times finer, zeros between: the
 * output gradient of a strided convolution on its input's grid.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { zeroInsertBlocked } from "./nchwc.ts";
 * const b = new OnnxBuilder("zi");
 * b.output(zeroInsertBlocked(b, b.input("v", "float32", [1, 16, 2, 2]), { n: 1, c: 16, oh: 2, ow: 2, stride: 2, block: 16 }), "y");
 * console.log(b.nodeCount); // 3
 * ```
 */
export function zeroInsertBlocked(
  b: OnnxBuilder,
  v: string,
  g: { n: number; c: number; oh: number; ow: number; stride: number; block: number },
): string {
  const { n, c, oh, ow, stride, block } = g;
  const spread = b.op("Reshape", [v, b.int64s([n, c / block, oh, 1, ow, 1, block])]);
  const s = stride - 1;
  const padded = b.op("Pad", [spread, b.int64s([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, s, 0, s, 0])]);
  return b.op("Reshape", [padded, b.int64s([n, c, oh * stride, ow * stride])]);
}

/**
 * Pads `[top/left, bottom, right]` of the stride-1 convolution with the flipped kernel that takes
 * a convolution's zero-inserted output gradient back to its input extent `h` x `w`, or null where
 * no such padding exists.
 *
 * @example
 * ```ts
 * import { inputGradPads } from "./nchwc.ts";
 * console.log(inputGradPads({ h: 32, w: 32, oh: 16, ow: 16, k: 3, stride: 2, pad: 1 })); // [ 1, 2, 2 ]
 * ```
 */
export function inputGradPads(
  g: { h: number; w: number; oh: number; ow: number; k: number; stride: number; pad: number },
): [number, number, number] | null {
  const pl = g.k - 1 - g.pad;
  const prH = g.h + g.k - 1 - g.stride * g.oh - pl;
  const prW = g.w + g.k - 1 - g.stride * g.ow - pl;
  return prH < 0 || prW < 0 ? null : [pl, prH, prW];
}
