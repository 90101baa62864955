/**
 * The input gradient of a strided convolution in sub-pixel (phase) form, for NCHWc graphs.
 *
 * A stride-s convolution's input gradient is usually a stride-1 convolution of dy spread onto
 * the input grid with zeros between (`zeroInsertBlocked`): s*s times the multiply-adds the
 * gradient needs, and a single-threaded 7-D Pad writing the spread copy. Split by the phase
 * (a, b) of each input position (row s*i + a, column s*j + b), every phase is a small stride-1
 * convolution of dy itself on the output grid, using only the kernel taps of that phase. One
 * NCHWc convolution with s*s*ci outputs (phase-major channels) computes all phases at once, and a
 * Transpose interleaves them onto the input grid. Gradients of several strided convolutions of
 * one input (a ResNet block's 3x3 and 1x1 shortcut) add up in phase form, through the
 * convolution's fused sum, before that one Transpose.
 *
 * For the 3x3, stride 2, pad 1 convolutions of CIFAR ResNets the phase kernel is 2x2: the four
 * phases hold the 9 taps in 16 weights (7 of them zero), and each input position costs its
 * phase's 1, 2 or 4 taps instead of all 9 of the zero-inserted form (2.25x fewer multiply-adds).
 *
 * @example
 * ```ts
 * import { phaseGeometry } from "./strided_phases.ts";
 * console.log(phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 3, stride: 2, pad: 1 }));
 * // { stride: 2, k: 3, pad: 1, taps: 2, first: 0, pads: [ 0, 0, 1, 1 ] }
 * ```
 * @module
 */

import type { OnnxBuilder } from "../../onnx/builder.ts";
import type { GradAccumulator } from "./grad_accumulator.ts";
import { NCHWC_DOMAIN } from "./nchwc.ts";

/** How a strided convolution's input gradient splits into phases. */
export interface PhaseGeometry {
  /** The convolution's stride. */
  stride: number;
  /** The convolution's (square) kernel size. */
  k: number;
  /** The convolution's padding on every side. */
  pad: number;
  /** Side of the square phase kernel (dy rows/columns that reach one input position). */
  taps: number;
  /** Offset of the phase kernel's first tap on dy, relative to the output position (<= 0). */
  first: number;
  /** Pads `[top, left, bottom, right]` of the phase convolution on dy. */
  pads: [number, number, number, number];
  /** Rows and columns of each phase, ceil(h / stride) x ceil(w / stride); interleaved, cut to h x w. */
  grid: [number, number];
  /** The input extent h x w. */
  input: [number, number];
}

/**
 * The phase form of a strided square convolution's input gradient, or null where it does not
 * apply: stride 1, or a geometry whose phase convolution would need negative padding (a kernel
 * window entirely on one side of the position). Input extents that are not a multiple of the
 * stride (7 -> 4) are covered: the phases' last row or column is cut after interleaving.
 *
 * @example
 * ```ts
 * import { phaseGeometry } from "./strided_phases.ts";
 * console.log(phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 1, stride: 2, pad: 0 })?.taps); // 1
 * console.log(phaseGeometry({ h: 7, w: 7, oh: 4, ow: 4, k: 3, stride: 2, pad: 1 })?.grid); // [ 4, 4 ]
 * console.log(phaseGeometry({ h: 32, w: 32, oh: 32, ow: 32, k: 3, stride: 1, pad: 1 })); // null
 * ```
 */
export function phaseGeometry(
  g: { h: number; w: number; oh: number; ow: number; k: number; stride: number; pad: number },
): PhaseGeometry | null {
  const { k, stride: s, pad: p } = g;
  if (s < 2) return null;
  // Input position s*i + a takes dy[i + d] through tap kh = a + p - s*d, for 0 <= kh < k.
  let first = Infinity;
  let last = -Infinity;
  for (let a = 0; a < s; a++) {
    for (let d = Math.ceil((a + p - k + 1) / s); d <= Math.floor((a + p) / s); d++) {
      first = Math.min(first, d);
      last = Math.max(last, d);
    }
  }
  // Each phase has ceil(extent / s) positions; the phase convolution reads dy rows i + first ..
  // i + last for them, zero beyond dy's oh rows. Padding is never negative.
  const [gh, gw] = [Math.ceil(g.h / s), Math.ceil(g.w / s)];
  const [bottom, right] = [gh - g.oh + last, gw - g.ow + last];
  if (!(first <= 0 && bottom >= 0 && right >= 0)) return null;
  // Math.ceil gives -0 for small negatives; + 0 and 0 - make it a plain 0 in the result.
  const [f, top] = [first + 0, 0 - first];
  return {
    stride: s,
    k,
    pad: p,
    taps: last - first + 1,
    first: f,
    pads: [top, top, bottom, right],
    grid: [gh, gw],
    input: [g.h, g.w],
  };
}

/**
 * The kernel tap `[kh, kw]` of the convolution that phase `(a, b)` applies at phase-kernel tap
 * `(u, v)`, or null where that phase has no such tap (a zero weight).
 */
function phaseTap(geo: PhaseGeometry, a: number, b: number, u: number, v: number): [number, number] | null {
  const kh = a + geo.pad - geo.stride * (geo.first + u);
  const kw = b + geo.pad - geo.stride * (geo.first + v);
  return kh >= 0 && kh < geo.k && kw >= 0 && kw < geo.k ? [kh, kw] : null;
}

/**
 * Where each weight of the blocked phase kernel comes from: indices into the convolution's
 * weights [co, ci, k, k] flattened, with `co * ci * k * k` (one past the end) for a zero. The
 * phase kernel has s*s*ci output channels (phase-major: `(a * s + b) * ci + c`) and co input
 * channels, in the NCHWc layout for a blocked input (OIHWBiBo, blocks of `block`).
 *
 * @example
 * ```ts
 * import { phaseGeometry, phaseKernelSources } from "./strided_phases.ts";
 * const geo = phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 1, stride: 2, pad: 0 })!;
 * const src = phaseKernelSources(16, 16, geo, 16);
 * console.log(src.length, src.filter((i) => i < 256).length); // 1024 256
 * ```
 */
export function phaseKernelSources(co: number, ci: number, geo: PhaseGeometry, block: number): Int32Array {
  const { stride: s, k, taps: t } = geo;
  const outs = s * s * ci;
  const zero = co * ci * k * k;
  const src = new Int32Array(outs * co * t * t).fill(zero);
  for (let q = 0; q < outs; q++) {
    const phase = Math.floor(q / ci);
    const [a, b, c] = [Math.floor(phase / s), phase % s, q % ci];
    for (let o = 0; o < co; o++) {
      for (let u = 0; u < t; u++) {
        for (let v = 0; v < t; v++) {
          const tap = phaseTap(geo, a, b, u, v);
          if (!tap) continue;
          // OIHWBiBo: [q / B, o / B, u, v, o % B, q % B].
          const at = (((((Math.floor(q / block) * (co / block) + Math.floor(o / block)) * t + u) * t + v) *
              block + (o % block)) * block) + (q % block);
          src[at] = ((o * ci + c) * k + tap[0]) * k + tap[1];
        }
      }
    }
  }
  return src;
}

/**
 * The blocked phase kernel from the weights [co, ci, k, k] in the graph (weights that change
 * every step): one Gather over the flattened weights with a zero appended.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { phaseGeometry, phaseKernelOp } from "./strided_phases.ts";
 * const b = new OnnxBuilder("pk");
 * const geo = phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 3, stride: 2, pad: 1 })!;
 * phaseKernelOp(b, b.input("w", "float32", [32, 16, 3, 3]), 32, 16, geo, 16);
 * console.log(b.nodeCount); // 4
 * ```
 */
export function phaseKernelOp(
  b: OnnxBuilder,
  w: string,
  co: number,
  ci: number,
  geo: PhaseGeometry,
  block: number,
): string {
  const src = phaseKernelSources(co, ci, geo, block);
  const flat = b.op("Pad", [b.op("Reshape", [w, b.int64s([-1])]), b.int64s([0, 1])]);
  // int64s shares one index tensor among convolutions of the same geometry.
  const gathered = b.op("Gather", [flat, b.int64s(Array.from(src))]);
  const s = geo.stride;
  return b.op("Reshape", [gathered, b.int64s([s * s * ci, co, geo.taps, geo.taps])]);
}

/**
 * The blocked phase kernel from constant weights [co, ci, k, k] (frozen graphs).
 *
 * @example
 * ```ts
 * import { phaseGeometry, phaseKernel } from "./strided_phases.ts";
 * const geo = phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 1, stride: 2, pad: 0 })!;
 * const kernel = phaseKernel(new Float32Array(256).fill(1), 16, 16, geo, 16);
 * console.log(kernel.length, kernel.reduce((s, v) => s + v)); // 1024 256
 * ```
 */
export function phaseKernel(
  w: Float32Array,
  co: number,
  ci: number,
  geo: PhaseGeometry,
  block: number,
): Float32Array {
  const src = phaseKernelSources(co, ci, geo, block);
  return Float32Array.from(src, (i) => i < w.length ? w[i] : 0);
}

/**
 * The phase convolution of a blocked dy [n, co, oh, ow] (stride 1, the phase kernel), with an
 * optional fused `sum` in phase form: [n, s*s*ci, oh, ow], blocked.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { phaseConv, phaseGeometry } from "./strided_phases.ts";
 * const b = new OnnxBuilder("pc");
 * const geo = phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 3, stride: 2, pad: 1 })!;
 * phaseConv(b, b.input("dy", "float32", [1, 16, 16, 16]), b.input("k", "float32", [64, 16, 2, 2]), geo, null);
 * console.log(b.nodeCount); // 1
 * ```
 */
export function phaseConv(
  b: OnnxBuilder,
  dy: string,
  kernel: string,
  geo: PhaseGeometry,
  sum: string | null,
): string {
  const ins = [dy, kernel, ""];
  if (sum) ins.push(sum);
  return b.op("Conv", ins, { kernel_shape: [geo.taps, geo.taps], pads: geo.pads }, NCHWC_DOMAIN);
}

/**
 * Interleaves a blocked phase-form gradient [n, s*s*c, gh, gw] (gh x gw: `geo.grid`) onto the
 * input grid: blocked [n, c, h, w] (`geo.input`), the phases' extra last row or column cut where
 * the input extent is not a multiple of the stride.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { interleavePhases, phaseGeometry } from "./strided_phases.ts";
 * const b = new OnnxBuilder("ip");
 * const geo = phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 3, stride: 2, pad: 1 })!;
 * interleavePhases(b, b.input("p", "float32", [1, 64, 16, 16]), geo, { n: 1, c: 16, block: 16 });
 * console.log(b.nodeCount); // 3: Reshape, Transpose, Reshape
 * const odd = phaseGeometry({ h: 7, w: 7, oh: 4, ow: 4, k: 3, stride: 2, pad: 1 })!;
 * interleavePhases(b, b.input("q", "float32", [1, 64, 4, 4]), odd, { n: 1, c: 16, block: 16 });
 * console.log(b.nodeCount); // 7: the same, then a Slice to 7 x 7
 * ```
 */
export function interleavePhases(
  b: OnnxBuilder,
  phases: string,
  geo: PhaseGeometry,
  g: { n: number; c: number; block: number },
): string {
  const { n, c, block } = g;
  const s = geo.stride;
  const [gh, gw] = geo.grid;
  const [h, w] = geo.input;
  const split = b.op("Reshape", [phases, b.int64s([n, s, s, c / block, gh, gw, block])]);
  // [n, a, b, cb, i, j, B] -> [n, cb, i, a, j, b, B]
  const t = b.op("Transpose", [split], { perm: [0, 3, 4, 1, 5, 2, 6] });
  if (gh * s === h && gw * s === w) return b.op("Reshape", [t, b.int64s([n, c, h, w])]);
  // Cut on the blocked layout's own axes [n, cb, H, W, B].
  const blocked = b.op("Reshape", [t, b.int64s([n, c / block, gh * s, gw * s, block])]);
  const cut = b.op("Slice", [blocked, b.int64s([0, 0]), b.int64s([h, w]), b.int64s([2, 3])]);
  return b.op("Reshape", [cut, b.int64s([n, c, h, w])]);
}

/**
 * Adds a strided convolution's input gradient, as the phase convolution of blocked `dy` with
 * `kernel` (from {@link phaseKernelOp} or {@link phaseKernel}), to `input`'s gradients: onto the
 * phase-form gradient of the input's other strided convolutions, when one is pending, through
 * the convolution's fused sum; the total is interleaved once, when the input's producer takes it.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { gradAccumulator } from "./grad_accumulator.ts";
 * import { phaseGeometry, pushPhaseInputGrad } from "./strided_phases.ts";
 * const b = new OnnxBuilder("pp");
 * const grads = gradAccumulator(b, "y", "dy");
 * const geo3 = phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 3, stride: 2, pad: 1 })!;
 * const geo1 = phaseGeometry({ h: 32, w: 32, oh: 16, ow: 16, k: 1, stride: 2, pad: 0 })!;
 * const g = { n: 1, c: 16, block: 16 };
 * pushPhaseInputGrad(b, grads, "x", b.input("dy1", "float32", [1, 32, 16, 16]), b.input("k1", "float32", [64, 32, 2, 2]), geo3, g);
 * pushPhaseInputGrad(b, grads, "x", b.input("dy2", "float32", [1, 32, 16, 16]), b.input("k2", "float32", [64, 32, 1, 1]), geo1, g);
 * grads.take("x");
 * console.log(b.nodeCount); // 5: two convolutions, then Reshape, Transpose, Reshape
 * ```
 */
export function pushPhaseInputGrad(
  b: OnnxBuilder,
  grads: GradAccumulator,
  input: string,
  dy: string,
  kernel: string,
  geo: PhaseGeometry,
  g: { n: number; c: number; block: number },
): void {
  // Strided convolutions of one input share the phase layout when their strides agree (the
  // phase grid then follows from the input extent).
  const form = `phases:${geo.stride}`;
  const total = phaseConv(b, dy, kernel, geo, grads.takeDeferred(input, form));
  grads.pushDeferred(input, form, total, (p) => interleavePhases(b, p, geo, g));
}
