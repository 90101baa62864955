/**
 * A small seeded random number generator (xoshiro128**) whose whole state is four 32-bit
 * words, so checkpoints can save it and a resumed run draws exactly the same numbers.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const a = new Rng(42), b = new Rng(42);
 * console.log(a.uniform() === b.uniform()); // true
 * ```
 * @module
 */

/** Seeded xoshiro128** generator with serialisable state. */
export class Rng {
  #s = new Uint32Array(4);

  /**
   * Seeds the generator through splitmix32, so nearby seeds give unrelated streams.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(new Rng(1).int(10) < 10); // true
   * ```
   */
  constructor(seed = 0) {
    let z = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b) >>> 0;
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (t ^ (t >>> 16)) >>> 0;
    }
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }

  /**
   * Next 32-bit unsigned integer.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(new Rng(3).nextUint32() >= 0); // true
   * ```
   */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /**
   * Uniform float in [0, 1) with 32 random bits.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * const u = new Rng(5).uniform();
   * console.log(u >= 0 && u < 1); // true
   * ```
   */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * Uniform integer in [0, n).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(new Rng(5).int(3) < 3); // true
   * ```
   */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /**
   * Standard normal sample (Box-Muller; one draw of two uniforms per sample, no cached spare,
   * so the state stays four words).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(Number.isFinite(new Rng(5).normal())); // true
   * ```
   */
  normal(): number {
    const u1 = 1 - this.uniform(); // (0, 1], keeps log finite
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Shuffles an array in place (Fisher-Yates) and returns it.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(new Rng(1).shuffle([1, 2, 3]).length); // 3
   * ```
   */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /**
   * The generator state, for checkpoints.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * const r = new Rng(9);
   * const s = r.getState();
   * const x = r.uniform();
   * r.setState(s);
   * console.log(r.uniform() === x); // true
   * ```
   */
  getState(): number[] {
    return Array.from(this.#s);
  }

  /**
   * Restores a state from {@link Rng.getState}.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * const r = new Rng(0);
   * r.setState(new Rng(7).getState());
   * console.log(r.uniform() === new Rng(7).uniform()); // true
   * ```
   */
  setState(state: readonly number[]): void {
    if (state.length !== 4) throw new Error(`RNG state needs 4 words, got ${state.length}`);
    for (let i = 0; i < 4; i++) this.#s[i] = state[i] >>> 0;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
