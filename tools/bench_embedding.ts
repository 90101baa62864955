/**
 * Times the 2-D embedding and the silhouettes on teacher-response-sized data:
 * `deno run -A tools/bench_embedding.ts [n] [dim] [classes]` (defaults 2000 100 10): softmax
 * outputs of noisy logits with one bump per class, like a 100-class teacher's responses.
 * @module
 */
import { embed2d, silhouetteScore, softmaxRows } from "../lib/explain/embedding.ts";
import { Rng } from "../lib/rng.ts";

const [n, dim, classes] = (Deno.args.length ? Deno.args : ["2000", "100", "10"]).map(Number);
const rng = new Rng(0);
const logits = new Float32Array(n * dim);
const labels = new Int32Array(n);
for (let i = 0; i < n; i++) {
  labels[i] = i % classes;
  for (let d = 0; d < dim; d++) logits[i * dim + d] = rng.normal() + (d === labels[i] ? 4 : 0);
}
const probs = softmaxRows(logits, dim);
let t0 = performance.now();
const e = await embed2d(probs, dim, { seed: 0 });
const tEmbed = performance.now() - t0;
t0 = performance.now();
const sHigh = silhouetteScore(probs, dim, labels);
const tSilHigh = performance.now() - t0;
t0 = performance.now();
const s2d = silhouetteScore(e, 2, labels);
const tSil2d = performance.now() - t0;
console.log(`${n} x ${dim}, ${classes} classes`);
console.log(`embed2d (UMAP)        ${(tEmbed / 1000).toFixed(1)} s`);
console.log(`silhouette ${dim}-D      ${(tSilHigh / 1000).toFixed(2)} s  score ${sHigh.toFixed(3)}`);
console.log(`silhouette 2-D        ${(tSil2d / 1000).toFixed(2)} s  score ${s2d.toFixed(3)}`);
