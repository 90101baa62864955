/**
 * Wide ResNets in the RepDistiller CIFAR layout (wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2):
 * pre-activation blocks, a final BatchNorm + ReLU, global average pooling and a classifier.
 * Parameter names match the PyTorch state dict (`block2.layer.0.convShortcut.weight`, ...).
 *
 * @example
 * ```ts
 * import { wideResNet } from "./wrn.ts";
 * const g = wideResNet("wrn_16_2", 16, 2, { numClasses: 100, inChannels: 3 });
 * console.log(g.params.some((p) => p.name === "block2.layer.0.convShortcut.weight")); // true
 * ```
 * @module
 */

import { type Graph, GraphBuilder } from "../graph.ts";
import type { ModelOptions } from "./resnet.ts";

/**
 * Builds WRN-`depth`-`widen` ((depth - 4) / 6 blocks per stage, widths 16, 16k, 32k, 64k).
 * Dropout is not part of these models (RepDistiller's default dropRate is 0).
 *
 * @example
 * ```ts
 * import { wideResNet } from "./wrn.ts";
 * console.log(wideResNet("wrn_40_1", 40, 1, { numClasses: 10, inChannels: 3 }).nodes.length > 0); // true
 * ```
 */
export function wideResNet(arch: string, depth: number, widen: number, opts: ModelOptions): Graph {
  if ((depth - 4) % 6 !== 0 || depth < 10) {
    throw new Error(`WRN depth must be 6n+4 and at least 10, got ${depth}`);
  }
  const n = (depth - 4) / 6;
  const widths = [16, 16 * widen, 32 * widen, 64 * widen];
  const b = new GraphBuilder(arch, opts.inChannels, opts.numClasses);
  let h = b.conv("conv1", b.input, opts.inChannels, widths[0], 3, 1, 1);
  for (let stage = 1; stage <= 3; stage++) {
    for (let i = 0; i < n; i++) {
      const cin = i === 0 ? widths[stage - 1] : widths[stage];
      const cout = widths[stage];
      const stride = stage > 1 && i === 0 ? 2 : 1;
      const p = `block${stage}.layer.${i}`;
      // PyTorch: when in != out the shortcut reads the activated input, else the raw input.
      const act = b.relu(`${p}.relu1`, b.batchNorm(`${p}.bn1`, h, cin));
      let out = b.conv(`${p}.conv1`, act, cin, cout, 3, stride, 1);
      out = b.relu(`${p}.relu2`, b.batchNorm(`${p}.bn2`, out, cout));
      out = b.conv(`${p}.conv2`, out, cout, cout, 3, 1, 1);
      const shortcut = cin === cout ? h : b.conv(`${p}.convShortcut`, act, cin, cout, 1, stride, 0);
      h = b.add(`${p}.add`, shortcut, out);
    }
  }
  h = b.relu("relu", b.batchNorm("bn1", h, widths[3]));
  h = b.globalAvgPool("avgpool", h);
  return b.finish(b.linear("fc", h, widths[3], opts.numClasses, "zeros"));
}
