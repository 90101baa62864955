/**
 * Any classifier ONNX file on onnxruntime-node: CPU by default with every core, CUDA when its
 * execution provider is installed, WebGPU (onnxruntime-node's built-in Dawn provider) on a GPU
 * with a Vulkan driver. Checks that the model takes NCHW images of the data's shape
 * and returns one score per class, with errors that show both shapes: declared shapes before
 * the first image is read, undeclared ones on the first batch. A model exported with a fixed
 * batch size (no dynamic batch axis) is fed batches of exactly that size.
 *
 * @example
 * ```ts
 * import { OnnxClassifier } from "./onnx_classifier.ts";
 * const url = new URL("../tests/fixtures/onnx/resnet8_opset13.onnx", import.meta.url);
 * const clf = await OnnxClassifier.open(url.pathname);
 * const logits = await clf.run(new Float32Array(2 * 3 * 32 * 32), 2, [3, 32, 32]);
 * console.log(logits.length, clf.device); // 20 cpu
 * await clf.close();
 * ```
 * @module
 */

import { decodeOnnxModel } from "../convert/onnx_proto.ts";
import { type ModelMetadata, parseModelMetadata } from "../convert/onnx_metadata.ts";
import { loadOnnxruntime, type Ort } from "../lib/deps.ts";
import { countNonFinite, describeNonFinite } from "../lib/non_finite.ts";
import { probeWebgpuAdapter, WEBGPU_INSTALL_HINT } from "../lib/engines/tfjs/webgpu_backend.ts";

import { type Device, DEVICES } from "../lib/engines/devices.ts";

export { type Device, DEVICES };

/** Thrown when onnxruntime's WebGPU execution provider finds no adapter it accepts. */
export class WebgpuProviderUnavailableError extends Error {
  /** Error name. */
  override name = "WebgpuProviderUnavailableError";
}

/** Thrown when the CUDA execution provider cannot be used. */
export class CudaUnavailableError extends Error {
  /** Error name. */
  override name = "CudaUnavailableError";
}

/** How to get CUDA support for onnxruntime-node (shown in errors). */
export const CUDA_INSTALL_HINT =
  "onnxruntime-node ships its CUDA execution provider (Linux x64, CUDA 12 + cuDNN 9) as a download made by " +
  "its install script, which Deno skips by default: in a project with a node_modules folder run " +
  "`npm install onnxruntime-node@1.30.0 --onnxruntime-node-install-cuda=v12` (or `deno install " +
  "--allow-scripts=npm:onnxruntime-node@1.30.0 npm:onnxruntime-node@1.30.0` with nodeModulesDir), then retry; " +
  "or use --device cpu";

/** The one-line error of `--device webgpu` where onnxruntime's WebGPU provider cannot run. */
function webgpuUnavailable(why: string): WebgpuProviderUnavailableError {
  return new WebgpuProviderUnavailableError(
    `WebGPU execution provider unavailable (${why}); ${
      WEBGPU_INSTALL_HINT.replace("--engine onnxruntime", "--device cpu")
    } (onnxruntime's Dawn refuses software adapters such as llvmpipe)`,
  );
}

/** Declared input/output shapes (null for symbolic dimensions; null lists where the file declares no shape). */
export interface IoShapes {
  /** Input name. */
  input: string;
  /** Output name. */
  output: string;
  /** Input dimensions, or null when undeclared. */
  inputDims: (number | null)[] | null;
  /** Output dimensions, or null when undeclared. */
  outputDims: (number | null)[] | null;
}

/** An ONNX classifier session. */
export class OnnxClassifier {
  /** Class count the output must have (set by {@link checkFits}). */
  #numClasses?: number;

  private constructor(
    private readonly ort: Ort,
    private readonly session: Awaited<ReturnType<Ort["InferenceSession"]["create"]>>,
    /** Device actually used. */
    readonly device: "cpu" | "cuda" | "webgpu",
    /** Metadata written by this package (empty for other producers). */
    readonly metadata: ModelMetadata,
    /** Declared shapes. */
    readonly io: IoShapes,
    /** Model file. */
    readonly file: string,
    /** Set when `auto` fell back to the CPU: why. */
    readonly fallbackReason?: string,
  ) {}

  /**
   * Opens `file`. `device` cuda fails with {@link CudaUnavailableError} when the provider is
   * missing, webgpu with {@link WebgpuProviderUnavailableError} when it finds no GPU (it refuses
   * software adapters); `auto` tries CUDA, then WebGPU where Deno sees a hardware adapter, then
   * falls back to the CPU and says why in {@link fallbackReason}.
   *
   * @example
   * ```ts
   * import { OnnxClassifier } from "./onnx_classifier.ts";
   * try { await OnnxClassifier.open("README.md"); } catch (e) { console.log((e as Error).message.startsWith("README.md:")); } // true
   * ```
   */
  static async open(file: string, device: Device = "cpu", threads?: number): Promise<OnnxClassifier> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (e) {
      throw new Error(`${file}: cannot read the model (${(e as Error).message.split("\n")[0]})`);
    }
    const model = decodeOnnxModel(bytes, file); // clear "not an ONNX file" errors
    const metadata = parseModelMetadata(Object.fromEntries(model.metadata), file);
    const io = ioShapes(model, file);
    const ort = await loadOnnxruntime();
    const cores = threads ?? navigator.hardwareConcurrency ?? 1;
    const base = { graphOptimizationLevel: "all" as const, intraOpNumThreads: cores, interOpNumThreads: 1 };
    if (device !== "cpu") {
      const level = ort.env.logLevel;
      ort.env.logLevel = "fatal"; // the native loader logs its own failure; we explain it below
      const missed: string[] = [];
      try {
        for (const ep of device === "auto" ? ["cuda", "webgpu"] as const : [device]) {
          if (ep === "webgpu") {
            // Dawn refuses software adapters and prints its failures on stderr: ask it only where
            // Deno's WebGPU sees a hardware GPU.
            const probe = await probeWebgpuAdapter();
            if (!probe.adapter || probe.software) {
              const why = probe.adapter
                ? `only the software adapter ${probe.description}`
                : probe.description;
              if (device === "webgpu") throw webgpuUnavailable(`no hardware WebGPU adapter: ${why}`);
              missed.push(`WebGPU: no hardware adapter (${why})`);
              continue;
            }
          }
          try {
            const s = await ort.InferenceSession.create(bytes, { ...base, executionProviders: [ep] });
            return new OnnxClassifier(ort, s, ep, metadata, io, file);
          } catch (e) {
            // The native message carries terminal colour codes and a source location; strip them.
            const why = String((e as Error).message ?? e).split("\n")[0]
              // deno-lint-ignore no-control-regex
              .replace(/\x1b\[[0-9;]*m/g, "").replace(/^.* was false\. /, "").slice(0, 200);
            if (device === "cuda") {
              throw new CudaUnavailableError(
                `CUDA execution provider unavailable (${why}). ${CUDA_INSTALL_HINT}`,
              );
            }
            if (device === "webgpu") throw webgpuUnavailable(why);
            missed.push(`${ep === "cuda" ? "CUDA" : "WebGPU"} unavailable (${why})`);
          }
        }
        const s = await ort.InferenceSession.create(bytes, { ...base, executionProviders: ["cpu"] });
        return new OnnxClassifier(ort, s, "cpu", metadata, io, file, missed.join("; "));
      } finally {
        ort.env.logLevel = level;
      }
    }
    let s;
    try {
      s = await ort.InferenceSession.create(bytes, { ...base, executionProviders: ["cpu"] });
    } catch (e) {
      throw new Error(
        `${file}: onnxruntime cannot load the model (${String((e as Error).message).split("\n")[0]})`,
      );
    }
    return new OnnxClassifier(ort, s, "cpu", metadata, io, file);
  }

  /**
   * Checks the model against images of `shape` ([C, H, W]) and `numClasses` classes.
   *
   * @example
   * ```ts
   * import { OnnxClassifier } from "./onnx_classifier.ts";
   * const clf = await OnnxClassifier.open(new URL("../tests/fixtures/onnx/resnet8_opset13.onnx", import.meta.url).pathname);
   * try { clf.checkFits([1, 28, 28], 10); } catch (e) { console.log((e as Error).message.includes("[N, 3, 32, 32]")); } // true
   * ```
   */
  checkFits(shape: readonly number[], numClasses: number): void {
    const d = this.io.inputDims;
    const show = (dims: (number | null)[]) =>
      `[${dims.map((v, i) => v ?? (i === 0 ? "N" : "?")).join(", ")}]`;
    if (d && (d.length !== 4 || [1, 2, 3].some((i) => d[i] !== null && d[i] !== shape[i - 1]))) {
      throw new Error(
        `${this.file}: the model's input "${this.io.input}" takes ${show(d)}, but the data has images of ` +
          `[N, ${shape.join(", ")}]`,
      );
    }
    const o = this.io.outputDims;
    if (o && o.length !== 2) {
      throw new Error(
        `${this.file}: the output ${this.io.output} is ${show(o)}, not one score per class [N, classes]`,
      );
    }
    if (o && o[1] !== null && o[1] !== numClasses) {
      throw new Error(`${this.file}: the model scores ${o[1]} classes, but the dataset has ${numClasses}`);
    }
    this.#numClasses = numClasses; // undeclared output shapes are checked on the first batch
  }

  /**
   * Logits [n, K] for `n` NCHW images of `shape`. A model with a fixed batch size gets the
   * images in chunks of that size (the last one zero-padded). The output must be [n, K], with
   * K the class count given to {@link checkFits} when it was called.
   */
  async run(x: Float32Array, n: number, shape: readonly number[]): Promise<Float32Array> {
    const fixed = this.io.inputDims?.[0] ?? null;
    if (fixed === null || fixed === n) return await this.#runBatch(x, n, shape);
    const per = shape.reduce((a, b) => a * b, 1);
    const parts: Float32Array[] = [];
    for (let i = 0; i < n; i += fixed) {
      const m = Math.min(fixed, n - i);
      let chunk = x.subarray(i * per, (i + m) * per);
      if (m < fixed) {
        const padded = new Float32Array(fixed * per);
        padded.set(chunk);
        chunk = padded;
      }
      const y = await this.#runBatch(chunk, fixed, shape);
      parts.push(y.subarray(0, (y.length / fixed) * m));
    }
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  async #runBatch(x: Float32Array, n: number, shape: readonly number[]): Promise<Float32Array> {
    const t = new this.ort.Tensor("float32", x, [n, ...shape]);
    let out;
    try {
      out = await this.session.run({ [this.io.input]: t });
    } catch (e) {
      throw new Error(
        `${this.file}: onnxruntime cannot run the model on a batch of [${[n, ...shape].join(", ")}] (${
          String((e as Error).message).split("\n")[0]
        })`,
      );
    }
    const y = out[this.io.output];
    const k = this.#numClasses;
    if (y.dims.length !== 2 || y.dims[0] !== n || (k !== undefined && y.dims[1] !== k)) {
      if (y.dims.length === 2 && y.dims[0] === n) {
        throw new Error(`${this.file}: the model scores ${y.dims[1]} classes, but the dataset has ${k}`);
      }
      throw new Error(
        `${this.file}: the output ${this.io.output} has shape [${y.dims.join(", ")}] for ${n} images, ` +
          `not one score per class [${n}, ${k ?? "classes"}]`,
      );
    }
    const logits = y.data as Float32Array;
    const bad = countNonFinite(this.io.output, logits);
    if (bad) {
      throw new Error(
        `${this.file}: the output ${this.io.output} holds non-finite values (${describeNonFinite([bad])} ` +
          `for ${n} images); no metrics are computed from NaN/Inf logits (check the model's weights)`,
      );
    }
    return logits;
  }

  /** Releases the session. */
  async close(): Promise<void> {
    await this.session.release();
  }
}

function ioShapes(model: ReturnType<typeof decodeOnnxModel>, file: string): IoShapes {
  const inits = new Set(model.initializers.map((t) => t.name));
  const inputs = model.inputs.filter((v) => !inits.has(v.name));
  if (inputs.length !== 1) {
    throw new Error(`${file}: a classifier takes one image input; this model has ${inputs.length}`);
  }
  if (model.outputs.length < 1) throw new Error(`${file}: the model has no output`);
  const dims = (v: { dims: (number | string | null)[] | null }) =>
    v.dims === null ? null : v.dims.map((d) => (typeof d === "number" && d > 0 ? d : null));
  return {
    input: inputs[0].name,
    output: model.outputs[0].name,
    inputDims: dims(inputs[0]),
    outputDims: dims(model.outputs[0]),
  };
}
