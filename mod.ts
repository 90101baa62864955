/**
 * oracle-kd: knowledge distillation from an explainable oracle teacher (Lee et al., BMVC 2023)
 * for Deno. Importing this module has no side effects; engines load their native or
 * WebAssembly code only when created.
 *
 * @example
 * ```ts
 * import { buildModel, countParameters } from "./mod.ts";
 * console.log(countParameters(buildModel("resnet20", { numClasses: 100 }))); // 278324
 * ```
 * @module
 */

export * from "./lib/tensor.ts";
export * from "./lib/rng.ts";
export * from "./lib/graph.ts";
export { buildModel, MODEL_NAMES, type ModelName } from "./lib/models/zoo.ts";
export type { ModelOptions } from "./lib/models/resnet.ts";
export { initStateDict } from "./lib/models/init.ts";
export { type ForwardMacs, forwardMacs, type Workload, workloadMacs } from "./lib/models/macs.ts";
export type * from "./lib/engines/engine.ts";
export { createEngine, ENGINE_NAMES, type EngineChoice, type EngineName } from "./lib/engines/registry.ts";
export { BackendUnavailableError, TFJS_BACKENDS, type TfjsBackendName } from "./lib/engines/tfjs/backend.ts";
export {
  type Checkpoint as PthCheckpoint,
  CheckpointError,
  checkStateDictAgainst,
  describeStateDict,
  type FitOptions,
  fitZooModel,
  ForbiddenGlobalError,
  inferArchitecture,
  type InferredArchitecture,
  loadPth,
  readCheckpoint,
} from "./convert/pytorch_checkpoint.ts";
export { importOnnx, importOnnxModel, SUPPORTED_ONNX_OPS } from "./convert/onnx_import.ts";
export { exportOnnx, exportOnnxModel, type OnnxExportOptions } from "./convert/onnx_export.ts";
export { describeOnnx, formatOnnxDescription } from "./convert/onnx_describe.ts";
export { OnnxExportError, OnnxFormatError } from "./convert/onnx_errors.ts";
export { type ModelMetadata, parseModelMetadata } from "./convert/onnx_metadata.ts";
export * from "./lib/oracle/mod.ts";
export { Explainer, type Explanation, TfjsExplainer } from "./lib/explain/explainer.ts";
export {
  embed2d,
  type EmbeddingOptions,
  predictiveEntropy,
  silhouetteSamples,
  silhouetteScore,
  softmaxRows,
} from "./lib/explain/embedding.ts";
export * from "./lib/plots/figures.ts";
export * from "./app/sweep/mod.ts";
// Types the public API's signatures mention.
export type { OnnxImport } from "./convert/onnx_import.ts";
export type { OnnxDescription } from "./convert/onnx_describe.ts";
export type { OnnxAttribute, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from "./convert/onnx_proto.ts";
export type { BarSeries, LineSeries, ReliabilityBin } from "./lib/plots/charts.ts";
export type { RelevanceSettings } from "./lib/oracle/options.ts";
export type { Reduction } from "./lib/engines/tfjs/lrp/lrp.ts";
export type { LrpAffine, LrpConv, LrpLayer, LrpLinear, LrpPlain } from "./lib/engines/tfjs/lrp/canonizers.ts";
export type { Tf, TfTensor } from "./lib/deps.ts";
export type { BatchNormStats, ForwardResult, TfjsNetwork } from "./lib/engines/tfjs/network.ts";
export type { ParamRole } from "./lib/engines/tfjs/layout.ts";
// The library route: everything the CLI does, as calls (the commands are thin layers over these).
export {
  ANALYZE_FIELDS,
  type AnalyzeConfig,
  type CommandName,
  COMMANDS,
  type CommandSpec,
  ConfigError,
  type ConfigOf,
  CONVERT_FIELDS,
  type ConvertConfig,
  DEMO_FIELDS,
  type DemoConfig,
  DISTILL_DEFAULTS,
  DISTILL_FIELDS,
  type DistillConfig,
  type FieldSpec,
  GROUPS,
  learningRate,
  LR_SCHEDULES,
  REDUCTIONS,
  resolveConfig,
  resolveFields,
  RESPONSES,
  type Settings,
  TEST_FIELDS,
  type TestConfig,
  TRAIN_FIELDS,
  type TrainConfig,
} from "./lib/config.ts";
export { parseSettings, readSettingsFile } from "./lib/config_file.ts";
export { parseFlags, renderHelp, renderOverview } from "./lib/cli_args.ts";
export { DATASET_NAMES, loadDataset, type LoadDatasetOptions } from "./lib/data/load.ts";
export { makeSyntheticDataset, type SyntheticOptions } from "./lib/data/synthetic.ts";
export { type PngFolderOptions, readPngFolder } from "./lib/data/png_folder.ts";
export { DataError, type DataProgress, type ImageDataset, type ImageSplit } from "./lib/data/dataset.ts";
export { BatchLoader, type LoaderOptions } from "./lib/data/loader.ts";
export { type ArrayDatasetOptions, type ArraySplit, datasetFromArrays } from "./app/data_sources.ts";
export { type DatasetMetadata, datasetMetadata } from "./lib/data/metadata.ts";
export { type LoadedModel, loadModelFile } from "./app/model_file.ts";
export {
  paperTeacher,
  resolveTeacher,
  type ResolveTeacherOptions,
  teacherForDataset,
} from "./app/teachers.ts";
export {
  distill,
  evaluateNetwork,
  type EvaluateNetworkOptions,
  loadTeacher,
  type LoadTeacherOptions,
  type RunOptions,
  type RunResult,
  type StepProgress,
  train,
} from "./app/library.ts";
export { type ClassificationMetrics, MetricsAccumulator } from "./lib/metrics.ts";
export type { EpochRecord, RunSummary } from "./lib/trainer.ts";
export { evaluateModel, type EvaluateOptions, type EvaluationReport, formatReport } from "./app/evaluate.ts";
export { type Device, DEVICES, OnnxClassifier } from "./app/onnx_classifier.ts";
export { convertModel, type ConvertOptions } from "./app/convert.ts";
export { type AnalysisReport, type AnalyzeOptions, runAnalyze } from "./app/analyze.ts";
export { belowChanceWarning, chooseNormalisation, type Normalisation } from "./app/normalisation.ts";
export type { ProgressFields, ProgressStream } from "./lib/progress.ts";
