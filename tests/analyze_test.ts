/**
 * `deno task analyze` on a small teacher trained here on the synthetic dataset: the report
 * folder (self-contained HTML, PNG figures, JSON of the numbers), every figure decodes and is not
 * blank, the embeddings are coloured by class, and the JSON's plain and oracle metrics agree with
 * an independent evaluation (onnxruntime on the exported teacher for x; the engine's oracle for
 * x*; lib/metrics.ts and the silhouette on those logits). The CLI runs LRP-epsilon relevance with
 * its parameter wired through, and rejects bad counts with one line naming the flag.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { runDistill } from "../app/distill.ts";
import { type AnalysisReport, runAnalyze } from "../app/analyze.ts";
import { loadModelFile } from "../app/model_file.ts";
import { resolveConfig } from "../lib/config.ts";
import { loadDataset } from "../lib/data/load.ts";
import { BatchLoader } from "../lib/data/loader.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { OnnxClassifier } from "../app/onnx_classifier.ts";
import { silhouetteScore } from "../lib/explain/embedding.ts";
import { type ClassificationMetrics, MetricsAccumulator } from "../lib/metrics.ts";
import { categoricalColor } from "../lib/plots/colors.ts";
import { assertOneLineError, runCli } from "./cli_utils.ts";
import { hasColour, type Picture, picture, pixelStats } from "./png_utils.ts";
import { decodeBase64 } from "./test_utils.ts";

const LIMIT = 96;
const quiet = { stream: { write: () => {} } };

/** Trains a resnet8 teacher on the synthetic data (CE, a few seconds) and returns its ONNX file. */
async function trainTeacher(dir: string): Promise<string> {
  const file = path.join(dir, "teacher.onnx");
  await runDistill(
    resolveConfig({
      data: "synthetic",
      student: "resnet8",
      response: "plain",
      ceWeight: 1,
      alpha: 0,
      epochs: 2,
      schedule: "2",
      subset: 128,
      batchSize: 32,
      out: path.join(dir, "teacher_run"),
      studentOut: file,
    }),
    quiet,
    "train",
  );
  return file;
}

const dir = await Deno.makeTempDir({ prefix: "okd_analyze_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const teacherFile = await trainTeacher(dir);

/** Decodes, has a sensible size, and is not blank (luminance variance, many colours). */
function assertNotBlank(png: Uint8Array, what: string): Picture {
  const p = picture(png);
  assert.ok(p.width >= 200 && p.height >= 150, `${what}: ${p.width}x${p.height}`);
  const { variance, colours } = pixelStats(p);
  assert.ok(variance > 100, `${what}: nearly blank (luminance variance ${variance.toFixed(1)})`);
  assert.ok(colours.size >= 16, `${what}: only ${colours.size} colours`);
  return p;
}

/** The first `limit` test images' logits on x (onnxruntime on the ONNX file) and on x* (the engine). */
async function independentLogits(limit: number, oracle: { gamma: number; reduction: "sum" | "mean" }) {
  const ds = await loadDataset("synthetic", { testOnly: true });
  const k = ds.numClasses;
  const clf = await OnnxClassifier.open(teacherFile);
  const t = await loadModelFile(teacherFile);
  const engine = await createEngine({ engine: "onnxruntime" });
  const frozen = await engine.loadFrozen(t.graph, t.weights);
  // Batches of 64 like analyze: with the mean reduction, x* depends on the batch.
  const loader = new BatchLoader(ds, "test", { batchSize: 64, limit, worker: false });
  const plain = new Float32Array(limit * k), star = new Float32Array(limit * k);
  const labels = new Int32Array(limit);
  let seen = 0;
  try {
    for await (const b of loader.epochBatches()) {
      plain.set(await clf.run(b.x, b.n, b.shape), seen * k);
      const o = await frozen.oracle(b, { gamma: oracle.gamma, recNum: 1, reduction: oracle.reduction });
      star.set(o.logits, seen * k);
      labels.set(b.y, seen);
      seen += b.n;
    }
  } finally {
    await loader.close();
    await clf.close();
    frozen.dispose();
  }
  assert.equal(seen, limit);
  const metrics = (logits: Float32Array) => {
    const acc = new MetricsAccumulator(k);
    acc.add(logits, labels);
    return acc.result();
  };
  return { k, labels, plain, star, plainM: metrics(plain), starM: metrics(star) };
}

function assertAgrees(
  label: string,
  got: AnalysisReport["plain"],
  want: ClassificationMetrics,
  silhouette: number,
  n: number,
) {
  // Two engines (tfjs-wasm in analyze, onnxruntime here) agree to float rounding: a near-tie may
  // flip one prediction, a confidence on a bin edge may move one image to the next ECE bin.
  const image = 100 / n;
  assert.ok(
    Math.abs(got.top1 - want.top1) <= image,
    `${label} top-1 ${got.top1} vs independent ${want.top1}`,
  );
  assert.ok(Math.abs(got.top5 - want.top5) <= image, `${label} top-5 ${got.top5} vs ${want.top5}`);
  assert.ok(Math.abs(got.ece - want.ece) <= 2 * image, `${label} ECE ${got.ece} vs independent ${want.ece}`);
  assert.ok(Math.abs(got.nll - want.nll) < 1e-4, `${label} NLL ${got.nll} vs ${want.nll}`);
  assert.ok(
    Math.abs(got.entropy - want.entropy) < 1e-4,
    `${label} entropy ${got.entropy} vs ${want.entropy}`,
  );
  assert.ok(
    Math.abs(got.silhouette - silhouette) < 1e-4,
    `${label} silhouette ${got.silhouette} vs ${silhouette}`,
  );
}

Deno.test({
  name:
    "analyze writes a self-contained HTML report, non-blank PNG figures and a JSON that agrees with an independent evaluation",
  fn: async () => {
    const out = path.join(dir, "report");
    let text = "";
    // A large step with the batch-independent sum reduction: x* clearly changes the responses.
    const report = await runAnalyze(
      {
        teacher: teacherFile,
        data: "synthetic",
        limit: LIMIT,
        samples: 4,
        gamma: 10,
        reduction: "sum",
        out,
      },
      { stream: { write: (s: string) => (text += s) } },
    );

    // Progress and result lines went to the (non-terminal) stream.
    assert.match(text, /^teacher {2}resnet8 from ONNX/m);
    assert.match(
      text,
      new RegExp(`^analyze ${LIMIT} images: 2/2 \\(100%\\) \\| images ${LIMIT} \\| took \\d+s$`, "m"),
    );
    assert.match(text, /^embeddings \(UMAP\): 2\/2 \(100%\) \| took \d+s$/m);
    assert.ok(text.includes(`report   ${path.join(out, "index.html")}\n`), text);

    // report.json holds exactly the returned numbers.
    const json = JSON.parse(await Deno.readTextFile(path.join(out, "report.json"))) as AnalysisReport;
    assert.deepEqual(json, JSON.parse(JSON.stringify(report)));
    assert.equal(json.dataset, "synthetic");
    assert.equal(json.images, LIMIT);
    assert.deepEqual(json.settings, { gamma: 10, recNum: 1, reduction: "sum", relevance: "grad-input" });
    for (const [label, s] of [["plain", json.plain], ["oracle", json.oracle]] as const) {
      for (const k of ["top1", "top5", "ece", "mce"] as const) {
        assert.ok(s[k] >= 0 && s[k] <= 100, `${label}.${k} = ${s[k]} is not a percentage`);
      }
      assert.ok(s.top5 >= s.top1 && s.mce >= s.ece - 1e-9);
      assert.ok(s.nll > 0 && Number.isFinite(s.nll) && s.entropy >= 0 && s.entropy <= Math.log(10) + 1e-9);
      for (const v of [s.silhouette, s.silhouette2d]) {
        assert.ok(v >= -1 && v <= 1, `${label} silhouette ${v}`);
      }
    }
    assert.ok(json.plain.top1 > 30, `the trained teacher should beat chance: ${json.plain.top1}%`);
    // The oracle knew the label: its responses are more often right and better clustered by class.
    assert.ok(
      json.oracle.top1 > json.plain.top1,
      `oracle top-1 ${json.oracle.top1} vs plain ${json.plain.top1}`,
    );
    assert.ok(json.oracle.nll < json.plain.nll, `oracle NLL ${json.oracle.nll} vs plain ${json.plain.nll}`);
    assert.ok(
      json.oracle.silhouette > json.plain.silhouette,
      "the oracle's responses are not better clustered",
    );

    // Agreement with an independent evaluation of the same images.
    const ind = await independentLogits(LIMIT, { gamma: 10, reduction: "sum" });
    assertAgrees(
      "teacher on x",
      json.plain,
      ind.plainM,
      silhouetteScore(ind.plain, ind.k, ind.labels),
      LIMIT,
    );
    assertAgrees("oracle on x*", json.oracle, ind.starM, silhouetteScore(ind.star, ind.k, ind.labels), LIMIT);

    // Every figure the JSON names is a file; the HTML embeds exactly those PNGs and nothing external.
    const html = await Deno.readTextFile(path.join(out, "index.html"));
    assert.match(html, /^<!doctype html>/i);
    const embedded = [...html.matchAll(/<img [^>]*src="data:image\/png;base64,([^"]+)"/g)].map((m) =>
      decodeBase64(m[1])
    );
    const names = Object.values(json.figures);
    assert.deepEqual(
      Object.keys(json.figures).sort(),
      ["embedding_x", "embedding_xstar", "entropy", "heatmaps", "reliability_x", "reliability_xstar"],
    );
    assert.equal(embedded.length, names.length, "one <img> per figure");
    assert.equal([...html.matchAll(/<img /g)].length, names.length);
    assert.ok(!/(src|href)="(?!data:)/.test(html), "the report references something outside itself");
    const files = new Map<string, Uint8Array>();
    for (const name of names) {
      assert.match(name, /^\w+\.png$/);
      files.set(name, await Deno.readFile(path.join(out, name)));
    }
    for (const [i, png] of embedded.entries()) {
      const match = [...files].find(([, bytes]) =>
        bytes.length === png.length && bytes.every((v, j) => v === png[j])
      );
      assert.ok(match, `embedded figure ${i} is none of the PNG files`);
    }
    const pictures = new Map([...files].map(([name, bytes]) => [name, assertNotBlank(bytes, name)]));

    // Both embeddings are coloured by class: every class among the analysed labels has its colour.
    const present = [...new Set(ind.labels)];
    assert.ok(present.length >= 8, `only ${present.length} classes in the first ${LIMIT} images`);
    for (const name of [json.figures.embedding_x, json.figures.embedding_xstar]) {
      for (const c of present) {
        assert.ok(hasColour(pictures.get(name)!, categoricalColor(c, 10)), `${name}: class ${c}`);
      }
    }
    // The numbers in the HTML table are the JSON's.
    for (const s of [json.plain, json.oracle]) {
      assert.ok(
        html.includes(`<td>${s.top1.toFixed(2)}%</td>`) && html.includes(`<td>${s.ece.toFixed(2)}%</td>`),
      );
      assert.ok(html.includes(`<td>${s.silhouette.toFixed(3)}</td>`));
    }
  },
});

Deno.test({
  name:
    "analyze (CLI) with --relevance lrp-epsilon: the rule and its --lrp-epsilon reach x*; bad counts are one line",
  fn: async () => {
    const common = [
      "analyze",
      "--teacher",
      "teacher.onnx",
      "--data",
      "synthetic",
      "--limit",
      "64",
      "--samples",
      "2",
    ];
    const runs: AnalysisReport[] = [];
    for (
      const [out, extra] of [["grad", []], ["lrp", ["--relevance", "lrp-epsilon"]], ["lrp_eps", [
        "--relevance",
        "lrp-epsilon",
        "--lrp-epsilon",
        "100",
      ]]] as const
    ) {
      const r = await runCli([...common, "--gamma", "5", "--out", out, ...extra], dir);
      assert.equal(r.code, 0, r.stderr);
      // Not a terminal: progress went to stdout as plain lines, then the two result rows.
      assert.ok(!r.stdout.includes("\x1b["), "terminal control sequences on a pipe");
      assert.match(r.stdout, /^analyze 64 images: 1\/1 \(100%\) \| images 64 \| took/m);
      assert.match(
        r.stdout,
        /^teacher on x : top-1 \d+\.\d\d% {2}ECE \d+\.\d\d% {2}entropy .* silhouette -?\d\.\d{3}$/m,
      );
      assert.match(r.stdout, /^oracle on x\*: top-1 \d+\.\d\d% {2}ECE /m);
      const report = JSON.parse(
        await Deno.readTextFile(path.join(dir, out, "report.json")),
      ) as AnalysisReport;
      assert.ok(r.stdout.includes(`teacher on x : top-1 ${report.plain.top1.toFixed(2)}%`));
      assert.ok(r.stdout.includes(`oracle on x*: top-1 ${report.oracle.top1.toFixed(2)}%`));
      const html = await Deno.readTextFile(path.join(dir, out, "index.html"));
      assert.equal([...html.matchAll(/src="data:image\/png;base64,/g)].length, 6);
      assertNotBlank(await Deno.readFile(path.join(dir, out, report.figures.heatmaps)), `${out} heatmaps`);
      runs.push(report);
    }
    const [grad, lrp, lrpEps] = runs;
    assert.equal(grad.settings.relevance, "grad-input");
    assert.equal(lrp.settings.relevance, "lrp-epsilon");
    assert.deepEqual(lrp.plain, grad.plain, "the teacher on x does not depend on the relevance rule");
    assert.notEqual(lrp.oracle.nll, grad.oracle.nll, "lrp-epsilon gave the same x* as grad-input");
    assert.notEqual(lrpEps.oracle.nll, lrp.oracle.nll, "--lrp-epsilon did not reach the rule");
    assert.ok(lrp.oracle.nll < lrp.plain.nll, `LRP oracle NLL ${lrp.oracle.nll} vs plain ${lrp.plain.nll}`);

    for (
      const [flag, value, why] of [
        ["--limit", "0", /^error: --limit must be >= 1, got 0$/],
        ["--samples", "0", /^error: --samples must be >= 1, got 0$/],
        ["--gamma", "-1", /^error: --gamma must be >= 0, got -1$/],
        ["--lrp-epsilon", "x", /^error: --lrp-epsilon must be a number, got "x"$/],
      ] as const
    ) {
      const r = await runCli([...common.slice(0, 5), flag, value, "--out", "bad"], dir);
      assertOneLineError(r, why, { onlyLine: true });
    }
    await assert.rejects(Deno.stat(path.join(dir, "bad")), Deno.errors.NotFound);
  },
});
