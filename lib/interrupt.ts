/**
 * What Ctrl-C does to a training command. While it sets up (loading data, downloading,
 * building graphs) nothing needs saving, so the first Ctrl-C quits at once. Once it trains, the
 * first Ctrl-C asks it to stop after the current step (or at once inside an evaluation pass)
 * with a checkpoint. A second one does not cut that short: a step runs synchronously in native
 * code, so both presses are seen only once the step is done, and the save that follows takes a
 * fraction of a second; it only says so. A third quits as soon as no file write is in flight
 * (files are written atomically, so the previous checkpoint is whole in any case).
 *
 * @example
 * ```ts
 * import { createCtrlC } from "./interrupt.ts";
 * const lines: string[] = [];
 * const ctrlC = createCtrlC({ write: (l) => lines.push(l), exit: (code) => lines.push(`exit ${code}`), listen: false });
 * ctrlC.phase("training");
 * ctrlC.press();
 * console.log(ctrlC.signal.aborted, lines.length); // true 1
 * ```
 * @module
 */

import { atomicWritesSettled } from "./atomic_file.ts";

/** The two phases of a training command, as far as Ctrl-C goes. */
export type RunPhase = "setup" | "training";

/** A Ctrl-C handler for a training command. */
export interface CtrlC {
  /** Aborted by the first Ctrl-C while training. */
  readonly signal: AbortSignal;
  /** Tells the handler which phase the command is in (it starts in "setup"). */
  phase(p: RunPhase): void;
  /** What a Ctrl-C does (called by the SIGINT listener; callable directly in tests). */
  press(): void;
  /** Removes the SIGINT listener. */
  dispose(): void;
}

/** Options of {@link createCtrlC}. */
export interface CtrlCOptions {
  /** Writes one message line (default: stderr). */
  write?: (line: string) => void;
  /** Ends the process (default Deno.exit). */
  exit?: (code: number) => void;
  /** Installs a SIGINT listener (default true). */
  listen?: boolean;
}

/**
 * Creates the handler and (by default) listens for SIGINT.
 *
 * @example
 * ```ts
 * import { createCtrlC } from "./interrupt.ts";
 * const codes: number[] = [];
 * const c = createCtrlC({ write: () => {}, exit: (code) => codes.push(code), listen: false });
 * c.press(); // during setup: quits at once
 * console.log(codes); // [ 130 ]
 * ```
 */
export function createCtrlC(opts: CtrlCOptions = {}): CtrlC {
  const write = opts.write ?? ((l: string) => console.error(l));
  const exit = opts.exit ?? ((code: number) => Deno.exit(code));
  const ac = new AbortController();
  let current: RunPhase = "setup";
  let presses = 0;
  const press = () => {
    presses++;
    if (current === "setup") {
      write("\ninterrupted (nothing was trained yet)");
      exit(130);
    } else if (presses === 1) {
      write("\nstopping after this step and saving a checkpoint...");
      ac.abort();
    } else if (presses === 2) {
      write(
        "already stopping: the checkpoint is saved right after this step (Ctrl-C again quits without it)",
      );
    } else {
      void atomicWritesSettled().then(() => exit(130));
    }
  };
  const listen = opts.listen ?? true;
  if (listen) Deno.addSignalListener("SIGINT", press);
  return {
    signal: ac.signal,
    phase: (p) => {
      current = p;
    },
    press,
    dispose: () => {
      if (listen) Deno.removeSignalListener("SIGINT", press);
    },
  };
}
