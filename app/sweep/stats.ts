/**
 * Seed statistics: mean, sample standard deviation, Student's t quantiles and the paired
 * difference of two methods over the same seeds with its two-sided confidence interval.
 *
 * @example
 * ```ts
 * import { pairedDifference } from "./stats.ts";
 * const d = pairedDifference([71, 72, 73], [70, 70.5, 71]);
 * console.log(d.mean.toFixed(3), d.low.toFixed(2), d.high.toFixed(2)); // 1.500 0.26 2.74
 * ```
 * @module
 */

/**
 * Mean (NaN for none).
 *
 * @example
 * ```ts
 * import { mean } from "./stats.ts";
 * console.log(mean([70, 71, 72])); // 71
 * ```
 */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN;
}

/**
 * Sample standard deviation (n - 1 in the denominator; NaN below two values).
 *
 * @example
 * ```ts
 * import { sampleStd } from "./stats.ts";
 * console.log(sampleStd([1, 2, 3, 4])); // 1.2909944487358056
 * ```
 */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** ln Gamma (Lanczos, g = 7; about 15 digits). */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (Numerical Recipes' betacf). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1, d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x),
  );
  return x < (a + 1) / (a + b + 2)
    ? (front * betaContinuedFraction(a, b, x)) / a
    : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/**
 * Student's t cumulative distribution with `df` degrees of freedom.
 *
 * @example
 * ```ts
 * import { studentTCdf } from "./stats.ts";
 * console.log(studentTCdf(0, 5), studentTCdf(12.706204736, 1).toFixed(6)); // 0.5 0.975000
 * ```
 */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * The `p` quantile of Student's t with `df` degrees of freedom (bisection on the CDF).
 *
 * @example
 * ```ts
 * import { studentTQuantile } from "./stats.ts";
 * console.log(studentTQuantile(0.975, 2).toFixed(6), studentTQuantile(0.975, 9).toFixed(6)); // 4.302653 2.262157
 * ```
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) return NaN;
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0, hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = 0.5 * (lo + hi);
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** A paired difference over seeds with its confidence interval. */
export interface PairedDifference {
  /** Number of pairs. */
  n: number;
  /** Mean difference. */
  mean: number;
  /** Standard deviation of the differences (NaN below two pairs). */
  std: number;
  /** Interval bounds (NaN below two pairs). */
  low: number;
  /** Upper bound. */
  high: number;
  /** Confidence level of the interval. */
  level: number;
  /** Per-pair differences. */
  differences: number[];
}

/**
 * `a - b` paired element by element (same seeds), with a two-sided t interval at `level`
 * (mean +- t_{(1+level)/2, n-1} * sd / sqrt(n)).
 *
 * @example
 * ```ts
 * import { pairedDifference } from "./stats.ts";
 * console.log(pairedDifference([2, 4], [1, 1]).high.toFixed(4)); // 14.7062
 * ```
 */
export function pairedDifference(a: readonly number[], b: readonly number[], level = 0.95): PairedDifference {
  if (a.length !== b.length) throw new Error(`paired samples differ in length (${a.length} vs ${b.length})`);
  const d = a.map((x, i) => x - b[i]);
  const n = d.length, m = mean(d), s = sampleStd(d);
  const half = n >= 2 ? studentTQuantile((1 + level) / 2, n - 1) * s / Math.sqrt(n) : NaN;
  return { n, mean: m, std: s, low: m - half, high: m + half, level, differences: d };
}
