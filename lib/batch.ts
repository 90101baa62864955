/**
 * The plain batch types every layer shares: data loaders produce them, engines consume them,
 * and neither needs the other to name them. Host arrays: NCHW float32 images (already
 * normalised) and int32 class labels.
 *
 * @example
 * ```ts
 * import type { LabelledBatch } from "./batch.ts";
 * const b: LabelledBatch = { x: new Float32Array(3 * 2 * 2), y: new Int32Array([1]), n: 1, shape: [3, 2, 2] };
 * console.log(b.x.length === b.n * b.shape[0] * b.shape[1] * b.shape[2]); // true
 * ```
 * @module
 */

/** A batch of images, NCHW, already normalised. */
export interface ImageBatch {
  /** `n * c * h * w` values. */
  x: Float32Array;
  /** Batch size. */
  n: number;
  /** `[c, h, w]` of one image. */
  shape: readonly [number, number, number];
}

/** A batch of images with integer class labels. */
export interface LabelledBatch extends ImageBatch {
  /** `n` labels in [0, classes). */
  y: Int32Array;
}
