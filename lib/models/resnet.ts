/**
 * CIFAR ResNets in the RepDistiller layout (resnet8 ... resnet110, resnet8x4, resnet32x4):
 * a 3x3 stem, three stages of BasicBlocks, global average pooling and a linear classifier.
 * Parameter names match the PyTorch state dict (`layer2.0.downsample.1.running_var`, ...).
 *
 * @example
 * ```ts
 * import { cifarResNet } from "./resnet.ts";
 * const g = cifarResNet("resnet20", 20, [16, 16, 32, 64], { numClasses: 100, inChannels: 3 });
 * console.log(g.nodes.at(-1)!.name); // fc
 * ```
 * @module
 */

import { type Graph, GraphBuilder } from "../graph.ts";

/** Options shared by all zoo builders. */
export interface ModelOptions {
  /** Logits width. */
  numClasses: number;
  /** Image channels. */
  inChannels: number;
}

/**
 * Builds a CIFAR ResNet of `depth` (6n+2) with stem width `widths[0]` and stage widths
 * `widths[1..3]`.
 *
 * @example
 * ```ts
 * import { cifarResNet } from "./resnet.ts";
 * const g = cifarResNet("resnet8x4", 8, [32, 64, 128, 256], { numClasses: 10, inChannels: 3 });
 * console.log(g.params[0].shape); // [32, 3, 3, 3]
 * ```
 */
export function cifarResNet(
  arch: string,
  depth: number,
  widths: readonly [number, number, number, number],
  opts: ModelOptions,
): Graph {
  if ((depth - 2) % 6 !== 0 || depth < 8) {
    throw new Error(`ResNet depth must be 6n+2 and at least 8, got ${depth}`);
  }
  const blocksPerStage = (depth - 2) / 6;
  const b = new GraphBuilder(arch, opts.inChannels, opts.numClasses);
  let h = b.conv("conv1", b.input, opts.inChannels, widths[0], 3, 1, 1);
  h = b.batchNorm("bn1", h, widths[0]);
  h = b.relu("relu", h);
  let inplanes = widths[0];
  for (let stage = 1; stage <= 3; stage++) {
    const planes = widths[stage];
    for (let i = 0; i < blocksPerStage; i++) {
      const stride = stage > 1 && i === 0 ? 2 : 1;
      const p = `layer${stage}.${i}`;
      const x = h;
      let out = b.conv(`${p}.conv1`, x, inplanes, planes, 3, stride, 1);
      out = b.batchNorm(`${p}.bn1`, out, planes);
      out = b.relu(`${p}.relu1`, out);
      out = b.conv(`${p}.conv2`, out, planes, planes, 3, 1, 1);
      out = b.batchNorm(`${p}.bn2`, out, planes);
      let residual = x;
      if (stride !== 1 || inplanes !== planes) {
        residual = b.conv(`${p}.downsample.0`, x, inplanes, planes, 1, stride, 0);
        residual = b.batchNorm(`${p}.downsample.1`, residual, planes);
      }
      out = b.add(`${p}.add`, out, residual);
      h = b.relu(`${p}.relu2`, out);
      inplanes = planes;
    }
  }
  h = b.globalAvgPool("avgpool", h);
  return b.finish(b.linear("fc", h, inplanes, opts.numClasses));
}
