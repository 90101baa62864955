/**
 * Public face of the PyTorch checkpoint readers, for `mod.ts` to re-export: read a `.pth`
 * without Python, find its state dict, infer or check the zoo architecture.
 *
 * @example
 * ```ts
 * import { buildModel, initStateDict } from "../mod.ts";
 * import { fitZooModel } from "./pytorch_checkpoint.ts";
 * const sd = initStateDict(buildModel("resnet8", { numClasses: 10 }), 0);
 * console.log(fitZooModel(sd, "teacher.pth").description);
 * // resnet8: 3 stages x 1 BasicBlocks, widths 16/16/32/64, 3 input channels, 10 classes
 * ```
 * @module
 */

export { type Checkpoint, CheckpointError, describeStateDict, loadPth, readCheckpoint } from "./pth.ts";
export {
  checkStateDictAgainst,
  type FitOptions,
  fitZooModel,
  inferArchitecture,
  type InferredArchitecture,
} from "./infer_arch.ts";
export { ForbiddenGlobalError } from "./pickle.ts";
