/**
 * Errors of the ONNX converters. Each carries one line that names the file (or the graph) and
 * the problem, so the CLI can print `error.message` as is.
 *
 * @example
 * ```ts
 * import { OnnxFormatError } from "./onnx_errors.ts";
 * const e = new OnnxFormatError("teacher.onnx", "not an ONNX model");
 * console.log(e.message, e.fileName); // teacher.onnx: not an ONNX model teacher.onnx
 * ```
 * @module
 */

/** A file that is not an ONNX model this package can read, with the reason. */
export class OnnxFormatError extends Error {
  /** Error name. */
  override name = "OnnxFormatError";

  /**
   * `fileName: problem` as the message.
   *
   * @example
   * ```ts
   * import { OnnxFormatError } from "./onnx_errors.ts";
   * console.log(new OnnxFormatError("a.onnx", "truncated").message); // a.onnx: truncated
   * ```
   */
  constructor(readonly fileName: string, readonly problem: string) {
    super(`${fileName}: ${problem}`);
  }
}

/** A graph, weights or options that cannot be written as ONNX, with the reason. */
export class OnnxExportError extends Error {
  /** Error name. */
  override name = "OnnxExportError";

  /**
   * `ONNX export of <arch>: problem` as the message.
   *
   * @example
   * ```ts
   * import { OnnxExportError } from "./onnx_errors.ts";
   * console.log(new OnnxExportError("resnet8", "opset 9 is not supported").message);
   * // ONNX export of resnet8: opset 9 is not supported
   * ```
   */
  constructor(readonly arch: string, readonly problem: string) {
    super(`ONNX export of ${arch}: ${problem}`);
  }
}
