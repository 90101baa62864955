/**
 * Normalisation and class names of the built-in datasets without reading their files, for
 * embedding into converted ONNX models (`deno task convert --dataset cifar100`).
 *
 * @example
 * ```ts
 * import { datasetMetadata } from "./dataset_metadata.ts";
 * const m = datasetMetadata("cifar10");
 * console.log(m.classNames[3], m.mean); // cat [0.4914, 0.4822, 0.4465]
 * ```
 * @module
 */

import { METADATA_DATASETS } from "../config.ts";
import { CIFAR_SPECS } from "../data/cifar.ts";
import { FASHION_MNIST_CLASSES } from "../data/fashion_mnist.ts";

/** What a model file needs to be evaluated without flags. */
export interface DatasetMetadata {
  /** Dataset name. */
  name: string;
  /** Per-channel mean. */
  mean: number[];
  /** Per-channel std. */
  std: number[];
  /** Class names by index. */
  classNames: string[];
  /** Image height and width. */
  imageSize: number;
}

/** The official CIFAR-10 class names (batches.meta.txt). */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/** The official CIFAR-100 fine class names (fine_label_names.txt). */
export const CIFAR100_CLASSES: readonly string[] = [
  "apple",
  "aquarium_fish",
  "baby",
  "bear",
  "beaver",
  "bed",
  "bee",
  "beetle",
  "bicycle",
  "bottle",
  "bowl",
  "boy",
  "bridge",
  "bus",
  "butterfly",
  "camel",
  "can",
  "castle",
  "caterpillar",
  "cattle",
  "chair",
  "chimpanzee",
  "clock",
  "cloud",
  "cockroach",
  "couch",
  "crab",
  "crocodile",
  "cup",
  "dinosaur",
  "dolphin",
  "elephant",
  "flatfish",
  "forest",
  "fox",
  "girl",
  "hamster",
  "house",
  "kangaroo",
  "keyboard",
  "lamp",
  "lawn_mower",
  "leopard",
  "lion",
  "lizard",
  "lobster",
  "man",
  "maple_tree",
  "motorcycle",
  "mountain",
  "mouse",
  "mushroom",
  "oak_tree",
  "orange",
  "orchid",
  "otter",
  "palm_tree",
  "pear",
  "pickup_truck",
  "pine_tree",
  "plain",
  "plate",
  "poppy",
  "porcupine",
  "possum",
  "rabbit",
  "raccoon",
  "ray",
  "road",
  "rocket",
  "rose",
  "sea",
  "seal",
  "shark",
  "shrew",
  "skunk",
  "skyscraper",
  "snail",
  "snake",
  "spider",
  "squirrel",
  "streetcar",
  "sunflower",
  "sweet_pepper",
  "table",
  "tank",
  "telephone",
  "television",
  "tiger",
  "tractor",
  "train",
  "trout",
  "tulip",
  "turtle",
  "wardrobe",
  "whale",
  "willow_tree",
  "wolf",
  "woman",
  "worm",
];

/**
 * Metadata of `name` (cifar10, cifar100, fashion-mnist); throws for others.
 *
 * @example
 * ```ts
 * import { datasetMetadata } from "./dataset_metadata.ts";
 * console.log(datasetMetadata("fashion-mnist").imageSize); // 28
 * ```
 */
export function datasetMetadata(name: string): DatasetMetadata {
  switch (name) {
    case "cifar10":
    case "cifar100": {
      const s = CIFAR_SPECS[name];
      const classNames = [...(name === "cifar10" ? CIFAR10_CLASSES : CIFAR100_CLASSES)];
      return { name, mean: [...s.mean], std: [...s.std], classNames, imageSize: 32 };
    }
    case "fashion-mnist":
      // Mean/std of the 60,000 training images (the loader computes the same from the data).
      return { name, mean: [0.2860], std: [0.3530], classNames: [...FASHION_MNIST_CLASSES], imageSize: 28 };
    default:
      throw new Error(`--dataset must be one of ${METADATA_DATASETS.join(", ")}; got "${name}"`);
  }
}
