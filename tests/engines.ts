/**
 * Engines the parity tests run on: every engine must pass the same tests.
 * @module
 */
import type { EngineChoice } from "../lib/engines/registry.ts";

/** A labelled engine choice. */
export interface LabelledChoice extends EngineChoice {
  /** Test name suffix. */
  label: string;
}

/** Engines under parity test (`cpu` is the slow pure-JS reference and is exercised elsewhere). */
export const PARITY_ENGINES: LabelledChoice[] = [
  { engine: "tfjs", backend: "wasm", label: "tfjs-wasm" },
  { engine: "tfjs", backend: "cpu", label: "tfjs-cpu" },
  { engine: "onnxruntime", label: "onnxruntime" },
];

/** Engines under the oracle parity test (forward and input gradients only). */
export const ORACLE_ENGINES: LabelledChoice[] = [
  { engine: "onnxruntime", label: "onnxruntime" },
  { engine: "tfjs", backend: "wasm", label: "tfjs-wasm" },
];
