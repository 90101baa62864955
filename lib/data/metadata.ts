/**
 * Normalisation and class names of the built-in datasets without reading their files, for
 * embedding into converted ONNX models (`deno task convert --dataset cifar100`).
 *
 * @example
 * ```ts
 * import { datasetMetadata } from "./metadata.ts";
 * const m = datasetMetadata("cifar10");
 * console.log(m.classNames[3], m.mean); // cat [0.4914, 0.4822, 0.4465]
 * ```
 * @module
 */

import { CIFAR_SPECS } from "./cifar.ts";
import { FASHION_MNIST_CLASSES } from "./fashion_mnist.ts";

/** Datasets whose metadata `convert --dataset` can embed without reading their files. */
export const METADATA_DATASETS = ["cifar10", "cifar100", "fashion-mnist"] as const;
/** A dataset with built-in metadata. */
export type MetadataDataset = typeof METADATA_DATASETS[number];

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

/** The official CIFAR-100 superclass (coarse label) names (coarse_label_names.txt), 20 of them. */
export const CIFAR100_SUPERCLASSES: readonly string[] = [
  "aquatic_mammals",
  "fish",
  "flowers",
  "food_containers",
  "fruit_and_vegetables",
  "household_electrical_devices",
  "household_furniture",
  "insects",
  "large_carnivores",
  "large_man-made_outdoor_things",
  "large_natural_outdoor_scenes",
  "large_omnivores_and_herbivores",
  "medium_mammals",
  "non-insect_invertebrates",
  "people",
  "reptiles",
  "small_mammals",
  "trees",
  "vehicles_1",
  "vehicles_2",
];

/**
 * The superclass of each CIFAR-100 fine class, by fine label (the coarse label that the dataset's
 * records carry next to the fine one; five fine classes per superclass).
 *
 * @example
 * ```ts
 * import { CIFAR100_CLASSES, CIFAR100_SUPERCLASSES, CIFAR100_FINE_TO_COARSE } from "./metadata.ts";
 * const seal = CIFAR100_CLASSES.indexOf("seal");
 * console.log(CIFAR100_SUPERCLASSES[CIFAR100_FINE_TO_COARSE[seal]]); // aquatic_mammals
 * ```
 */
// deno-fmt-ignore
export const CIFAR100_FINE_TO_COARSE: readonly number[] = [
  4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
  6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
  5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
  10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
  16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
];

/** How to colour a class-labelled scatter plot: one colour per group, with a legend for each. */
export interface ColourGroups {
  /** Group index of each point. */
  labels: Int32Array;
  /** Group names (legend entries). */
  names: string[];
  /** What the colours mean, for a subtitle (empty when they are the classes themselves). */
  note: string;
}

/**
 * Colour groups for plotting points labelled with `classNames`: CIFAR-100's 100 classes are
 * grouped into its 20 superclasses (a legend of 100 colours cannot be read); other datasets keep
 * their classes.
 *
 * @example
 * ```ts
 * import { CIFAR100_CLASSES, colourGroups } from "./metadata.ts";
 * const g = colourGroups(Int32Array.of(0, 1, 99), [...CIFAR100_CLASSES]);
 * console.log(Array.from(g.labels), g.names.length, g.note); // [ 4, 1, 13 ] 20 colour: CIFAR-100 superclass
 * ```
 */
export function colourGroups(labels: Int32Array, classNames: string[]): ColourGroups {
  const isCifar100 = classNames.length === 100 && classNames.every((c, i) => c === CIFAR100_CLASSES[i]);
  if (!isCifar100) return { labels, names: classNames, note: "" };
  return {
    labels: labels.map((y) => CIFAR100_FINE_TO_COARSE[y]),
    names: [...CIFAR100_SUPERCLASSES],
    note: "colour: CIFAR-100 superclass",
  };
}

/**
 * Metadata of `name` (cifar10, cifar100, fashion-mnist); throws for others.
 *
 * @example
 * ```ts
 * import { datasetMetadata } from "./metadata.ts";
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
