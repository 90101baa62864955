/**
 * The running SHA-256 record shared by tools/hash_frozen_graphs.ts and
 * tools/hash_train_graphs.ts: one hash per compiled graph (a graph the compiler rejects is
 * recorded by its error message), folded into one combined hash printed last, so a refactor is
 * proven byte-identical by comparing that line before and after.
 *
 * @example
 * ```ts
 * import { GraphHashes } from "./graph_hashes.ts";
 * const h = new GraphHashes(false);
 * h.add("a", () => new Uint8Array([1, 2]));
 * console.log(h.summary().startsWith("graphs 1 combined ")); // true
 * ```
 * @module
 */
import { createHash } from "node:crypto";

/** Per-graph hashes folded into one combined hash. */
export class GraphHashes {
  readonly #all = createHash("sha256");
  #count = 0;

  /** `printEach`: also print one line (label, first 16 hex digits) per graph. */
  constructor(readonly printEach = Deno.args.includes("--all")) {}

  /** Compiles one graph and records its hash (or its compile error's message). */
  add(label: string, compile: () => Uint8Array): void {
    let bytes: Uint8Array;
    try {
      bytes = compile();
    } catch (e) {
      bytes = new TextEncoder().encode(`error: ${(e as Error).message}`);
    }
    const h = createHash("sha256").update(bytes).digest("hex");
    this.#all.update(h);
    this.#count++;
    if (this.printEach) console.log(label, h.slice(0, 16));
  }

  /** The last line: the number of graphs and the combined hash. */
  summary(): string {
    return `graphs ${this.#count} combined ${this.#all.digest("hex")}`;
  }
}
