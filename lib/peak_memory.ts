/**
 * Peak resident memory of a process (Linux `VmHWM` from /proc), for the benchmarks and the memory
 * tests: one reader instead of one per script.
 *
 * @example
 * ```ts
 * import { peakRssMb } from "./peak_memory.ts";
 * const mb = peakRssMb();
 * console.log(mb === null || mb > 0); // true
 * ```
 * @module
 */

/**
 * Peak resident set size of process `pid` (this one by default) in MiB, or null where it cannot
 * be read (not Linux, or the process has exited).
 *
 * @example
 * ```ts
 * import { peakRssMb } from "./peak_memory.ts";
 * console.log(peakRssMb(2 ** 30)); // null
 * ```
 */
export function peakRssMb(pid: number | "self" = "self"): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
