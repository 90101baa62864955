/**
 * A thread count set through an environment variable (ORACLE_KD_THREADS for onnxruntime,
 * ORACLE_KD_WASM_THREADS for tfjs-wasm): read once here so both engines accept and refuse the
 * same values.
 *
 * @example
 * ```ts
 * import { threadsFromEnv } from "./threads_env.ts";
 * console.log(threadsFromEnv("ORACLE_KD_UNSET_EXAMPLE")); // undefined
 * ```
 * @module
 */

/**
 * The positive integer in environment variable `name`; undefined when it is unset, blank or
 * not readable (no env permission). Throws, naming the variable, on anything else.
 *
 * @example
 * ```ts
 * import { threadsFromEnv } from "./threads_env.ts";
 * Deno.env.set("ORACLE_KD_EXAMPLE_THREADS", "3");
 * console.log(threadsFromEnv("ORACLE_KD_EXAMPLE_THREADS")); // 3
 * ```
 */
export function threadsFromEnv(name: string): number | undefined {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get(name);
  } catch {
    return undefined; // No env permission: the engine's hardware default.
  }
  if (fromEnv === undefined || fromEnv.trim() === "") return undefined;
  const n = Number(fromEnv);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${fromEnv}"`);
  return n;
}
