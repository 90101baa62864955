/**
 * Reports how long reading `.pth` checkpoints takes (zip + unpickle + tensor copies) and how
 * long architecture inference with the full shape check takes. A script that reports, not a test.
 *
 *     deno run -A tools/bench_pth.ts [file.pth ...]
 *
 * Without arguments it reads the shared teachers beside the repository.
 * @module
 */

import {
  describeStateDict,
  inferArchitecture,
  loadPth,
  readCheckpoint,
} from "../convert/pytorch_checkpoint.ts";
import { median } from "../lib/metrics.ts";

const REPEATS = 5;
let files = Deno.args;
if (files.length === 0) {
  const shared = new URL("../../shared/teachers/", import.meta.url);
  files = ["cifar100", "cifar10"].flatMap((ds) =>
    ["resnet20", "resnet32", "resnet56"].map((a) => new URL(`${ds}/${a}.pth`, shared).pathname)
  );
}

for (const file of files) {
  const bytes = await Deno.readFile(file);
  const first = await loadPth(file);
  const read: number[] = [];
  const infer: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    let t = performance.now();
    const c = readCheckpoint(bytes, file);
    read.push(performance.now() - t);
    t = performance.now();
    inferArchitecture(c.stateDict, file);
    infer.push(performance.now() - t);
  }
  const mb = bytes.length / 1e6;
  console.log(
    `${file.split("/").slice(-2).join("/")}: ${mb.toFixed(2)} MB, ${first.format}, ` +
      `${describeStateDict(first.stateDict)}; read ${median(read).toFixed(1)} ms ` +
      `(${(mb / (median(read) / 1000)).toFixed(0)} MB/s), infer+check ${median(infer).toFixed(2)} ms ` +
      `(median of ${REPEATS})`,
  );
}
