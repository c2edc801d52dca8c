/**
 * scire-solver: public exports. (Other modules append their exports below.)
 */
export { NoiseSchedule } from './schedule';
export type { ScheduleKind, DiscreteOptions, VpLinearOptions, CosineOptions, EdmOptions } from './schedule';
export { compilePlan } from './compile';
export type {
  CompileOptions,
  ResolvedOptions,
  SolverName,
  Algorithm,
  Method,
  RdeMode,
  SkipType,
  ModelType,
  Thresholding,
  UniPcVariant,
  ScireCorrector,
} from './options';
export type { Preset, SolverReport, AutoChoice, PresetConfig } from './presets/auto';
export { resolveOptions, OPTION_KEYS } from './options';
export { timeSteps, SKIP_TYPES } from './timesteps';
export { executePlanReference, dynamicThreshold } from './reference';
export type { ReferenceClassifier, ReferenceModel, ReferenceInputs, ReferenceResult, ReferenceInpaint } from './reference';
export { checkPlan } from './plan-check';
export type { Plan, PlanOp, EvalOp, LincombOp, ThresholdOp, InpaintOp, InpaintCorrection } from './plan';
export { MAX_LINCOMB_TERMS } from './plan';
export { outputConversion, PlanBuilder } from './plan-builder';
export type { Prediction } from './plan-builder';
export { randn, randnAsync } from './randn';
export { MAX_STEPS, DEFAULT_MAX_ELEMENTS, MAX_ELEMENTS_LIMIT, RequestTooLargeError, estimateRequestBytes } from './limits';
export { NonFiniteError } from './result-check';
export type { NonFiniteMode } from './result-check';
export { toImageGrid, encodePng, encodeNpy, toByte, GRID_PADDING } from './image-io';
export type { ImageGrid, ImageGridOptions } from './image-io';
export { decodePng } from './png-read';
export { Sampler } from './sampler';
export type { SamplerOptions, SamplerModel, SampleOptions, SampleResult, SampleStepEvent, SampleTimings } from './sampler';
export { readModelCard, parseModelCard, modelCardPath } from './model-card';
export type { ModelCard } from './model-card';
export { loadModel, MODEL_DTYPES } from './model';
export type { LoadModelOptions } from './model';
export { nativeBinding } from './native';
export type { NativeModel, NativeModelInfo, NativeBuildInfo, DeviceName, ModelDType, NativeInpaintInputs } from './native-types';
export { bundledModels } from './bundled-models';
export type { BundledModel, BundledModels } from './bundled-models';
export { nativeAddonInfo } from './native';
export type { NativeAddonInfo } from './native';
export type { AbortSignalLike } from './native-types';
export { Model } from './serving/model';
export type { ModelStats } from './serving/model';
export { QueueFullError } from './serving/queue';
export type { QueueStats, QueueTotals, RunningBatchStats } from './serving/queue';
export type { BatchingOptions } from './serving/options';
export { DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_WAIT_MS } from './serving/options';
export { classGuidance, resolveClass, oneHotRows, conditioningOf } from './class-cond';
export type { ClassGuidance } from './class-cond';
export type { ClassConditioning } from './model-card';
