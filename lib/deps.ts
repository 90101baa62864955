/**
 * Every third-party dependency of the library, as a full versioned `npm:` specifier.
 *
 * A module imported from a URL does not see the importer's import map, so library code never
 * uses bare names: it imports from here. Light pure-JS packages are re-exported statically;
 * heavy ones (native code, WebAssembly) come through loaders, so importing the library costs
 * nothing until an engine is actually used.
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "./deps.ts";
 * const tf = await loadTfjsCore();
 * console.log(tf.version_core);
 * ```
 * @module
 */

export { Command, InvalidArgumentError, Option } from "npm:commander@14.0.2";
/** YAML settings files (`--config run.yaml`). */
export { parseDocument as parseYamlDocument } from "npm:yaml@2.9.1";
/** YAML sweep specs. */
export { parse as parseYaml } from "npm:yaml@2.9.1";

/** The tfjs-core namespace type, for signatures. */
export type Tf = typeof import("npm:@tensorflow/tfjs-core@4.22.0");
/** A tfjs tensor. */
export type TfTensor = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor;
/** The onnxruntime-node namespace type, for signatures. */
export type Ort = typeof import("npm:onnxruntime-node@1.30.0");

/**
 * Loads tfjs-core with its gradient functions registered (no backend yet).
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "./deps.ts";
 * const tf = await loadTfjsCore();
 * console.log(typeof tf.tensor);
 * ```
 */
export async function loadTfjsCore(): Promise<Tf> {
  const tf = await import("npm:@tensorflow/tfjs-core@4.22.0");
  // tfjs-core's bundle ships no gradient functions; the union package's bundle registers them
  // on the same tfjs-core instance (its ESM sources are not loadable without a bundler).
  await import("npm:@tensorflow/tfjs@4.22.0");
  return tf;
}

/**
 * Loads the pure-JS tfjs `cpu` backend (registers itself with tfjs-core).
 *
 * @example
 * ```ts
 * import { loadTfjsCpuBackend } from "./deps.ts";
 * await loadTfjsCpuBackend();
 * ```
 */
export async function loadTfjsCpuBackend(): Promise<void> {
  await import("npm:@tensorflow/tfjs-backend-cpu@4.22.0");
}

/** The tfjs wasm backend module. */
export type TfjsWasmModule = typeof import("npm:@tensorflow/tfjs-backend-wasm@4.22.0");

/**
 * Loads the tfjs `wasm` backend module (registers the backend factory with tfjs-core).
 *
 * @example
 * ```ts
 * import { loadTfjsWasmBackend } from "./deps.ts";
 * const wasm = await loadTfjsWasmBackend();
 * console.log(typeof wasm.setWasmPaths);
 * ```
 */
export function loadTfjsWasmBackend(): Promise<TfjsWasmModule> {
  return import("npm:@tensorflow/tfjs-backend-wasm@4.22.0");
}

/** The tfjs WebGPU backend module (pure JS and WGSL; runs on Deno's built-in `navigator.gpu`). */
export type TfjsWebgpuModule = typeof import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");

/**
 * Loads the tfjs `webgpu` backend module (it registers a backend factory with tfjs-core, which
 * lib/engines/tfjs/webgpu_backend.ts replaces by one that picks the adapter itself).
 *
 * @example
 * ```ts
 * import { loadTfjsWebgpuBackend } from "./deps.ts";
 * const webgpu = await loadTfjsWebgpuBackend();
 * console.log(typeof webgpu.WebGPUBackend); // function
 * ```
 */
export function loadTfjsWebgpuBackend(): Promise<TfjsWebgpuModule> {
  return import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");
}

/**
 * Loads tfjs-node-gpu, else tfjs-node (native TensorFlow, CUDA where built for it).
 * Throws when neither is installed; the caller turns that into an install hint.
 *
 * @example
 * ```ts
 * import { loadTfjsNative } from "./deps.ts";
 * try { await loadTfjsNative(); } catch (e) { console.log("not installed:", String(e).slice(0, 40)); }
 * ```
 */
export async function loadTfjsNative(): Promise<"tfjs-node-gpu" | "tfjs-node"> {
  // Specifiers in variables: Deno then fetches these large optional packages only when asked.
  const gpu = "npm:@tensorflow/tfjs-node-gpu@4.22.0";
  const cpu = "npm:@tensorflow/tfjs-node@4.22.0";
  try {
    await import(gpu);
    return "tfjs-node-gpu";
  } catch (gpuError) {
    try {
      await import(cpu);
      return "tfjs-node";
    } catch {
      throw gpuError;
    }
  }
}

/**
 * Loads onnxruntime-node (native; CPU binaries are bundled, CUDA is an optional download).
 *
 * @example
 * ```ts
 * import { loadOnnxruntime } from "./deps.ts";
 * const ort = await loadOnnxruntime();
 * console.log(ort.env.versions.common);
 * ```
 */
export function loadOnnxruntime(): Promise<Ort> {
  return import("npm:onnxruntime-node@1.30.0");
}

/**
 * fflate (pure JS, ~8 kB): raw DEFLATE for the rare zip checkpoint whose entries are compressed
 * (torch.save stores them uncompressed), and a zip writer for tests that craft archives.
 *
 * @example
 * ```ts
 * import { inflateSync, zipSync } from "./deps.ts";
 * const zip = zipSync({ "a.txt": new Uint8Array([104, 105]) }, { level: 0 });
 * console.log(zip[0] === 0x50, typeof inflateSync); // true function
 * ```
 */
export { inflateSync, zipSync } from "npm:fflate@0.8.2";

import onnxProtoPackage from "npm:onnx-proto@8.0.1";

/**
 * The ONNX protobuf messages (onnx-proto: protobufjs static code generated from onnx.proto,
 * pure JS, so it is loaded statically). int64 fields decode to `Long` objects.
 *
 * @example
 * ```ts
 * import { onnxProto } from "./deps.ts";
 * const bytes = onnxProto.ModelProto.encode({ irVersion: 8, producerName: "demo" }).finish();
 * console.log(onnxProto.ModelProto.decode(bytes).producerName); // demo
 * ```
 */
export const onnxProto: typeof onnxProtoPackage.onnx = onnxProtoPackage.onnx;

/**
 * PNG decoding and encoding (fast-png: pure JavaScript, light), for image-folder datasets.
 *
 * @example
 * ```ts
 * import { decodePng, encodePng } from "./deps.ts";
 * const png = encodePng({ width: 1, height: 1, channels: 3, depth: 8, data: new Uint8Array([1, 2, 3]) });
 * console.log(decodePng(png).data); // Uint8Array [1, 2, 3]
 * ```
 */
export { decode as decodePng, encode as encodePng } from "npm:fast-png@8.0.0";
/** A decoded PNG image (fast-png). */
export type DecodedPng = import("npm:fast-png@8.0.0").DecodedPng;
/** The umap-js module (pure JS UMAP; seeded through its `random` option). */
export type UmapModule = typeof import("npm:umap-js@1.4.0");

/**
 * Loads umap-js (2-D embeddings of teacher responses).
 *
 * @example
 * ```ts
 * import { loadUmap } from "./deps.ts";
 * const { UMAP } = await loadUmap();
 * console.log(typeof UMAP); // function
 * ```
 */
export function loadUmap(): Promise<UmapModule> {
  return import("npm:umap-js@1.4.0");
}

/** The resvg WebAssembly module (SVG to PNG without a browser). */
export type ResvgWasm = typeof import("npm:@resvg/resvg-wasm@2.6.2");

/**
 * Loads resvg-wasm and instantiates its WebAssembly from the npm package (once per process).
 *
 * @example
 * ```ts
 * import { loadResvg } from "./deps.ts";
 * const { Resvg } = await loadResvg();
 * console.log(typeof Resvg); // function
 * ```
 */
export function loadResvg(): Promise<ResvgWasm> {
  resvgReady ??= (async () => {
    const mod = await import("npm:@resvg/resvg-wasm@2.6.2");
    const wasm = await Deno.readFile(
      new URL(import.meta.resolve("npm:@resvg/resvg-wasm@2.6.2/index_bg.wasm")),
    );
    await mod.initWasm(wasm);
    return mod;
  })();
  return resvgReady;
}
let resvgReady: Promise<ResvgWasm> | undefined;

/**
 * Reads DejaVu Sans (TrueType, from the `dejavu-fonts-ttf` npm package): resvg-wasm sees no
 * system fonts, so every figure's text is set in this one font on every machine.
 *
 * @example
 * ```ts
 * import { loadFigureFont } from "./deps.ts";
 * console.log((await loadFigureFont()).length > 100000); // true
 * ```
 */
export async function loadFigureFont(): Promise<Uint8Array> {
  // Importing the package's package.json puts the package in the module graph, so
  // import.meta.resolve can map its font file to a local path.
  await import("npm:dejavu-fonts-ttf@2.37.3/package.json", { with: { type: "json" } });
  return await Deno.readFile(new URL(import.meta.resolve("npm:dejavu-fonts-ttf@2.37.3/ttf/DejaVuSans.ttf")));
}

/** A backend-level tensor handle (what kernels receive and return). */
export type TfTensorInfo = import("npm:@tensorflow/tfjs-core@4.22.0").TensorInfo;
/** A kernel registration record. */
export type TfKernelConfig = import("npm:@tensorflow/tfjs-core@4.22.0").KernelConfig;
/** The tfjs wasm backend instance (heap, data ids, `makeOutput`). */
export type TfjsWasmBackend = import("npm:@tensorflow/tfjs-backend-wasm@4.22.0").BackendWasm;

/** What it takes to start the tfjs wasm backend's multithreaded SIMD build in-process. */
export interface TfjsWasmThreadedAssets {
  /** Source of the Emscripten module factory, `function(Module) {...}`. */
  factorySource: string;
  /** The pthread worker script exactly as tfjs embeds it. */
  workerScript: string;
  /** Absolute path of `tfjs-backend-wasm-threaded-simd.wasm`. */
  wasmPath: string;
}

/**
 * Loads the pieces of the tfjs wasm backend's multithreaded SIMD build (tfjs itself only starts
 * it in browsers). Throws where the package files are not on the local file system.
 *
 * @example
 * ```ts
 * import { loadTfjsWasmThreadedAssets } from "./deps.ts";
 * const a = await loadTfjsWasmThreadedAssets();
 * console.log(a.wasmPath.endsWith(".wasm"), a.factorySource.startsWith("function")); // true true
 * ```
 */
export async function loadTfjsWasmThreadedAssets(): Promise<TfjsWasmThreadedAssets> {
  const base = "@tensorflow/tfjs-backend-wasm@4.22.0/wasm-out/tfjs-backend-wasm-threaded-simd";
  const glue = await import(
    "npm:@tensorflow/tfjs-backend-wasm@4.22.0/wasm-out/tfjs-backend-wasm-threaded-simd.js"
  );
  const worker = await import(
    "npm:@tensorflow/tfjs-backend-wasm@4.22.0/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js"
  );
  // The binary is read from disk by the Emscripten glue: resolve the installed package's file.
  const { createRequire } = await import("node:module");
  const wasmPath = createRequire(import.meta.url).resolve(base.replace("@4.22.0", "") + ".wasm");
  return {
    factorySource: String(glue.default),
    workerScript: String(worker.wasmWorkerContents ?? worker.default?.wasmWorkerContents),
    wasmPath,
  };
}
