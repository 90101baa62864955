/**
 * Whether a network fits a dataset: its classes and input channels (checked before any work, so a
 * teacher trained on other data is refused with a line that says so).
 *
 * @module
 */

import type { Graph } from "../graph.ts";
import type { ImageDataset } from "./dataset.ts";

/**
 * Refuses a network whose classes or channels do not fit the dataset, before any training.
 *
 * @example
 * ```ts
 * import { checkFits } from "./fits.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { makeSyntheticDataset } from "./synthetic.ts";
 * const ds = makeSyntheticDataset({ trainCount: 4, testCount: 4 });
 * try { checkFits(buildModel("resnet8", { numClasses: 100 }), ds, "teacher t.pth"); }
 * catch (e) { console.log((e as Error).message.startsWith("teacher t.pth has 100 classes")); } // true
 * ```
 */
export function checkFits(g: Graph, ds: ImageDataset, what: string): void {
  if (g.numClasses !== ds.numClasses) {
    throw new Error(
      `${what} has ${g.numClasses} classes but ${ds.name} has ${ds.numClasses}; use a teacher trained on ${ds.name}`,
    );
  }
  if (g.inChannels !== ds.shape[0]) {
    throw new Error(`${what} reads ${g.inChannels} input channels but ${ds.name} images have ${ds.shape[0]}`);
  }
}
