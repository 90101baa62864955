/**
 * Teachers by name: `--teacher resnet56 --data cifar100` downloads the paper's published
 * checkpoint from its public repository into `weights/`, checking a pinned SHA-256, and loads
 * it strictly as that architecture. A path to a `.pth` or `.onnx` file works too.
 *
 * @example
 * ```ts
 * import { paperTeacher } from "./teachers.ts";
 * console.log(paperTeacher("cifar100", "resnet56")?.file); // cifar100_resnet56.pth
 * ```
 * @module
 */

import { checkFits } from "../lib/data/fits.ts";
import type { ImageDataset } from "../lib/data/dataset.ts";
import * as path from "node:path";
import { ensureFile } from "../lib/data/download.ts";
import { MODEL_NAMES } from "../lib/models/zoo.ts";
import { type LoadedModel, loadModelFile } from "./model_file.ts";

/** The paper's public repository (branch master) holding the teacher checkpoints. */
export const PAPER_REPO_RAW =
  "https://raw.githubusercontent.com/myunghakLee/Distillation-for-High-Quality-Knowledge-Extraction/master/";

/** A published teacher checkpoint. */
export interface PaperTeacher {
  /** Download URL. */
  url: string;
  /** File name under the weights folder. */
  file: string;
  /** Pinned SHA-256, or null where none is published yet (then loaded strictly instead). */
  sha256: string | null;
}

const PINNED: Record<string, Record<string, string | null>> = {
  cifar100: {
    resnet20: "1fccacf6b658acf80652c7c9841735c3ee7bb2a591bafc30d5c05f7860b96969",
    resnet32: "44bb39dbfff95ba8b1c87f9936c17c5d7db1fe862fcfc727747ff1ccc2983d17",
    resnet56: "2f0bccdb3acc680326dd1a9536eccd3c3a79d71f5965cdf7997ca192ada853ca",
    resnet110: null,
  },
  cifar10: {
    resnet20: "7721ef0132a50456b14c5b1d70a329e22b4d7537038fd363431de9e31a8ef3e7",
    resnet32: "941ceb42d0a24db1c375262c182b1fb11add5175a2dac7912681a278ddaec1cb",
    resnet56: "72c50eda9f6c0080b6fd4a65da5d75715146266691a5ddf10e7f5c7c8f0f0403",
    resnet110: null,
  },
};

/**
 * The published checkpoint of `arch` for `dataset`, or undefined when the paper has none.
 *
 * @example
 * ```ts
 * import { paperTeacher } from "./teachers.ts";
 * console.log(paperTeacher("cifar10", "resnet20")?.url.endsWith("teacher_models/CIFAR10/resnet20/best.pth")); // true
 * console.log(paperTeacher("fashion-mnist", "resnet20")); // undefined
 * ```
 */
export function paperTeacher(
  dataset: string,
  arch: string,
  baseUrl = PAPER_REPO_RAW,
): PaperTeacher | undefined {
  const table = PINNED[dataset];
  if (!table || !(arch in table)) return undefined;
  const remote = dataset === "cifar100"
    ? `teacher_models/CIFAR100/${arch}/model.pth`
    : `teacher_models/CIFAR10/${arch}/best.pth`;
  return { url: baseUrl + remote, file: `${dataset}_${arch}.pth`, sha256: table[arch] };
}

/** Options of {@link resolveTeacher}. */
export interface ResolveTeacherOptions {
  /** Dataset name (selects the published checkpoint). */
  dataset: string;
  /** Where downloaded checkpoints go. */
  weightsDir: string;
  /** Whether downloading is allowed. */
  download: boolean;
  /** Architecture for a .pth file (inferred when empty). */
  arch?: string;
  /** Download progress (bytes, total). */
  onProgress?: (bytes: number, total: number | null) => void;
  /** Informational lines (e.g. the digest of an unpinned download). */
  onInfo?: (line: string) => void;
  /** Mirror of the paper's repository layout (default: the repository itself). */
  baseUrl?: string;
}

/**
 * Loads the teacher named by `spec`: a file path, or a zoo name with a published checkpoint.
 *
 * @example
 * ```ts ignore
 * const t = await resolveTeacher("resnet56", { dataset: "cifar100", weightsDir: "weights", download: true });
 * console.log(t.description);
 * ```
 */
export async function resolveTeacher(spec: string, o: ResolveTeacherOptions): Promise<LoadedModel> {
  const looksLikePath = /[\\/]|\.(pth|pt|tar|onnx)$/i.test(spec);
  if (looksLikePath) return await loadModelFile(spec, { arch: o.arch || undefined });
  if (!(MODEL_NAMES as readonly string[]).includes(spec) && !/^(resnet|wrn_)/.test(spec)) {
    throw new Error(
      `--teacher "${spec}" is neither a file nor a zoo architecture (${MODEL_NAMES.join(", ")})`,
    );
  }
  const published = paperTeacher(o.dataset, spec, o.baseUrl);
  const local = path.join(o.weightsDir, published?.file ?? `${o.dataset}_${spec}.pth`);
  if (!published) {
    try {
      return await loadModelFile(local, { arch: spec });
    } catch {
      throw new Error(
        `no published ${spec} teacher for ${o.dataset} (the paper publishes CIFAR-10/100 resnet20/32/56/110); ` +
          `train one with \`deno task train --data ${o.dataset} --student ${spec}\` and pass --teacher <file>`,
      );
    }
  }
  const hint =
    `To use a local copy, download it elsewhere and save it as ${local}, or pass --teacher <file.pth>.`;
  if (!o.download) {
    try {
      await Deno.stat(local);
    } catch {
      throw new Error(`${local} is missing and downloads are off (--no-download): ${hint}`);
    }
  }
  await ensureFile(
    published.url,
    local,
    published.sha256 ? { sha256: published.sha256 } : { unpinned: "sha256" },
    {
      hint,
      onProgress: o.onProgress,
      // No published digest: accept the file only if it loads strictly as the named architecture.
      verify: published.sha256 ? undefined : async (tmp, digest) => {
        await loadModelFile(tmp, { arch: spec });
        o.onInfo?.(`${published.url}: no pinned sha256; loaded strictly as ${spec}; sha256 ${digest}`);
      },
    },
  );
  return await loadModelFile(local, { arch: spec });
}

/**
 * {@link resolveTeacher} for `dataset`, refusing a teacher whose classes or channels do not fit
 * it (one line naming the teacher) before any work: what distill, `test --oracle` and analyze do.
 *
 * @example
 * ```ts ignore
 * const t = await teacherForDataset("resnet56", dataset, { weightsDir: "weights", download: true });
 * ```
 */
export async function teacherForDataset(
  spec: string,
  dataset: ImageDataset,
  o: Omit<ResolveTeacherOptions, "dataset">,
): Promise<LoadedModel> {
  const t = await resolveTeacher(spec, { ...o, dataset: dataset.name });
  checkFits(t.graph, dataset, `teacher ${spec}`);
  return t;
}
