#!/usr/bin/env node
/**
 * `scire`: sample a diffusion model from the command line.
 *
 *   scire sample [--model m.pt] [--steps 12] [-n 64] [--seed 0] [--out samples.png] ...
 *   scire inpaint --image in.png --mask mask.png [--out inpainted.png] [-n 8] [--seed 0] [--steps 12]
 *   scire info
 *
 * Exit status: 0 on success, 1 when sampling fails, 2 for a bad command line (with usage).
 * Progress goes to stderr (a bar on a terminal, plain lines otherwise), the summary to stdout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { classGuidance, resolveClass, type ClassGuidance } from './class-cond';
import { compilePlan } from './compile';
import {
  DEFAULT_GUIDANCE,
  INFO_USAGE,
  INPAINT_USAGE,
  SAMPLE_USAGE,
  USAGE,
  UsageError,
  parseCommandLine,
  reportCliError,
  type InfoArgs,
  type SampleArgs,
} from './cli-args';
import { runInpaint } from './cli-inpaint';
import { encodeNpy, encodePng, toImageGrid, toUnitRange } from './image-io';
import { DEFAULT_MAX_ELEMENTS } from './limits';
import { loadModel } from './model';
import { readModelCard, type ModelCard } from './model-card';
import { readClassNames, resolveClassLabel } from './class-names';
import { nativeAddonInfo, nativeBinding } from './native';
import { ProgressReporter } from './progress';
import type { CompileOptions } from './options';
import { Sampler, type SampleResult, type SampleStepEvent } from './sampler';

/** The package root (dist/cli.js and lib/cli.ts both sit one level below it). */
const PACKAGE_ROOT = path.resolve(__dirname, '..');
export const DEFAULT_MODEL = path.join(PACKAGE_ROOT, 'models', 'fmnist_unet.pt');
/** The model of `--class` / `--classes` without --model: the bundled class-conditional one. */
export const DEFAULT_COND_MODEL = path.join(PACKAGE_ROOT, 'models', 'fmnist_cond_unet.pt');

function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** A PNG grid needs image-shaped samples [1 | 3, height, width]; anything else goes to .npy. */
function checkOutputFits(file: string, sampleShape: number[]): void {
  if (/\.npy$/i.test(file)) return;
  const [c] = sampleShape;
  if (sampleShape.length !== 3 || (c !== 1 && c !== 3)) {
    throw new UsageError(
      `--out ${file}: a PNG grid needs image-shaped samples [channels 1 or 3, height, width], ` +
        `but the samples have shape [${sampleShape.join(', ')}]; write a .npy file instead (or give --shape)`,
    );
  }
}

/** Writes the batch: a PNG grid for [n, 1|3, h, w] samples (cols per row, default square), raw float32 for .npy. */
function writeSamples(file: string, result: SampleResult, card: ModelCard, cols?: number): void {
  const bytes = /\.npy$/i.test(file)
    ? encodeNpy(result.data, result.shape)
    : encodePng(toImageGrid(toUnitRange(result.data, card.dataRange), result.shape, { cols }));
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, bytes);
}

/** The preview strip's file next to the output: samples.png -> samples.preview.png. */
export function previewPath(out: string): string {
  return out.replace(/\.(png|npy)$/i, '') + '.preview.png';
}

/** Columns of the preview strip: the first PREVIEW_SAMPLES samples of the batch. */
const PREVIEW_SAMPLES = 8;

/**
 * Collects the data predictions x0 of every K-th evaluation (and of the last) for the preview
 * strip: one row per previewed evaluation, the first PREVIEW_SAMPLES samples as columns.
 */
class PreviewStrip {
  private readonly rows: Float32Array[] = [];
  readonly nfes: number[] = [];
  private readonly cols: number;
  private readonly per: number;

  constructor(
    private readonly every: number,
    private readonly sampleShape: readonly number[],
    samples: number,
  ) {
    this.cols = Math.min(samples, PREVIEW_SAMPLES);
    this.per = sampleShape.reduce((a, b) => a * b, 1);
  }

  add(ev: { nfe: number; total: number; x?: Float32Array }): void {
    if (!ev.x || (ev.nfe % this.every !== 0 && ev.nfe !== ev.total)) return;
    this.rows.push(ev.x.slice(0, this.cols * this.per));
    this.nfes.push(ev.nfe);
  }

  write(file: string, dataRange: readonly [number, number] | undefined): void {
    const data = new Float32Array(this.rows.length * this.cols * this.per);
    this.rows.forEach((r, i) => data.set(r, i * this.cols * this.per));
    const grid = toImageGrid(toUnitRange(data, dataRange), [this.rows.length * this.cols, ...this.sampleShape], { cols: this.cols });
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, encodePng(grid));
  }
}

/** What a run samples: the class of each sample (class-conditional models) and the guidance. */
interface ClassRequest {
  /** cond / uncond / guidanceScale for Sampler.sample (built after the request-size check). */
  guidance: () => ClassGuidance;
  /** Total samples (-n, or -n per class with --classes). */
  total: number;
  /** PNG columns (-n per row with --classes). */
  cols?: number;
  /** For the summary line. */
  text: string;
}

/**
 * --class / --classes against the card: the cond rows of every sample. A class-conditional
 * model sampled without either gets the null class (its unconditional model); --class on a
 * model without "conditioning" in its card is a usage error naming the card.
 */
function classRequest(args: SampleArgs, card: ModelCard, modelPath: string): ClassRequest | undefined {
  const conditioning = card.conditioning;
  const flag = args.classes ? '--classes' : args.class !== undefined ? `--class ${args.class}` : undefined;
  if (flag === undefined) {
    if (!conditioning) return undefined;
    return {
      guidance: () => classGuidance(conditioning, new Array<null>(args.samples).fill(null), 1),
      total: args.samples,
      text: 'no class (null class: unconditional)',
    };
  }
  if (!conditioning) {
    throw new UsageError(
      `${flag}: the model ${modelPath} is not class-conditional (its card ${card.file} has no "conditioning" ` +
        'with class names); use a class-conditional model such as the bundled models/fmnist_cond_unet.pt',
    );
  }
  const g = args.guidance ?? DEFAULT_GUIDANCE;
  const { classes } = conditioning;
  if (args.classes) {
    return {
      guidance: () => classGuidance(conditioning, classes.flatMap((_, k) => new Array<number>(args.samples).fill(k)), g),
      total: classes.length * args.samples,
      cols: args.samples,
      text: `one row per class (${classes.join(', ')}), guidance ${g}`,
    };
  }
  let k: number;
  try {
    k = resolveClass(conditioning, args.class!, '--class');
  } catch {
    throw new UsageError(
      `--class must be a class index 0..${classes.length - 1} or a class name of the model's card ` +
        `(${classes.join(' | ')}), got '${args.class}'`,
    );
  }
  return {
    guidance: () => classGuidance(conditioning, new Array<number>(args.samples).fill(k), g),
    total: args.samples,
    text: `class ${k} (${classes[k]}), guidance ${g}`,
  };
}

async function runSample(args: SampleArgs): Promise<void> {
  // --class names the classifier's label with --classifier (classifier guidance of an
  // unconditional model), else the class of a class-conditional model (classifier-free guidance).
  const wantsClass = args.classifier === undefined && (args.classes || args.class !== undefined);
  const modelPath = args.model ?? (wantsClass ? DEFAULT_COND_MODEL : DEFAULT_MODEL);
  if (!fs.existsSync(modelPath)) {
    throw new Error(
      args.model !== undefined
        ? `--model ${modelPath}: no such file`
        : wantsClass
          ? `The bundled class-conditional model ${modelPath} is not in this package: pass --model with a ` +
            'class-conditional model (a card with "conditioning"; models/README.md tells how to train one)'
          : `The bundled model ${modelPath} is missing (run "npm run demo" from a full checkout, or pass --model)`,
    );
  }
  const card = readModelCard(modelPath, args.card);
  const request = classRequest(args.classifier === undefined ? args : { ...args, class: undefined }, card, modelPath);
  const total = request?.total ?? args.samples;
  const sampleShape = args.shape ?? card.shape;
  if (!sampleShape) {
    throw new UsageError(`the model card ${card.file} gives no sample shape: pass --shape (e.g. --shape 1,28,28)`);
  }
  checkOutputFits(args.out, sampleShape);
  if (args.previewEvery !== undefined) checkOutputFits(previewPath(args.out), sampleShape);
  const elements = total * sampleShape.reduce((a, b) => a * b, 1);
  if (elements > DEFAULT_MAX_ELEMENTS) {
    throw new UsageError(
      `${args.classes ? `-n ${args.samples} per class (${total} samples)` : `-n ${args.samples} samples`} of shape [${sampleShape.join(', ')}] are ${elements} values, ` +
        `more than the ${DEFAULT_MAX_ELEMENTS} one run may hold: sample fewer at a time`,
    );
  }

  const solverFlags = [args.solver, args.algorithm, args.method, args.order, args.skip, args.rde, args.corrector, args.variant, args.finalCorrector, args.lowerOrderFinal].some(
    (v) => v !== undefined,
  );
  const solverOptions: CompileOptions = {
    schedule: card.schedule,
    modelType: args.modelType ?? card.modelType,
    steps: args.steps,
    // preset auto is the default unless a solver flag is given
    preset: args.preset ?? (solverFlags ? undefined : 'auto'),
    solver: args.solver,
    algorithm: args.algorithm,
    method: args.method,
    order: args.order,
    skip: args.skip,
    rde: args.rde,
    corrector: args.corrector,
    variant: args.variant,
    finalCorrector: args.finalCorrector,
    lowerOrderFinal: args.lowerOrderFinal,
    denoiseToZero: args.denoiseToZero || undefined,
  };
  try {
    // Check the flags together before loading the network (e.g. --algorithm with --solver ddim).
    compilePlan(solverOptions);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
  let classLabel: number | undefined;
  if (args.classifier !== undefined) {
    if (!fs.existsSync(args.classifier)) throw new UsageError(`--classifier ${args.classifier}: no such file`);
    try {
      classLabel = resolveClassLabel(args.classLabel as string, readClassNames(args.classifier));
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
  }
  const guidance = request?.guidance();
  const model = await loadModel(modelPath, { device: args.device, dtype: args.dtype });
  // The classifier runs in float32 whatever --dtype (its gradient steers every step).
  const classifier = args.classifier === undefined ? undefined : await loadModel(args.classifier, { device: args.device });
  const sampler = new Sampler({
    model,
    ...solverOptions,
    ...(classifier ? { classifier, classifierScale: args.classifierScale ?? 1 } : {}),
  });

  const progress = args.quiet ? undefined : new ProgressReporter(process.stderr);
  const preview = args.previewEvery === undefined ? undefined : new PreviewStrip(args.previewEvery, sampleShape, total);
  const onStep =
    progress || preview
      ? (ev: SampleStepEvent) => {
          progress?.update(ev);
          preview?.add(ev);
        }
      : undefined;
  let result: SampleResult;
  try {
    result = await sampler.sample({
      shape: [total, ...sampleShape],
      seed: args.seed,
      onStep,
      ...guidance,
      ...(preview ? { intermediates: 'x0' as const } : {}),
      ...(classLabel !== undefined ? { classLabels: classLabel } : {}),
    });
  } catch (err) {
    // Too many samples for the device's free memory: a bad -n, reported like one.
    if ((err as { code?: unknown }).code === 'ERR_SCIRE_TOO_LARGE') throw new UsageError((err as Error).message);
    throw err;
  } finally {
    progress?.finish();
  }
  writeSamples(args.out, result, card, request?.cols);
  if (preview) preview.write(previewPath(args.out), card.dataRange);

  const seconds = result.timings.totalMs / 1000;
  const meta = sampler.planFor().meta;
  const solver = [
    meta.solver,
    meta.algorithm,
    meta.variant,
    meta.method,
    meta.order !== undefined ? `order ${meta.order}` : undefined,
    meta.skip,
    meta.corrector !== undefined && meta.corrector !== 'none' ? `corrector ${meta.corrector}` : undefined,
    meta.finalCorrector === true ? 'final corrector' : undefined,
  ]
    .filter((v) => v !== undefined && v !== null)
    .join(' ') + (result.solver.preset ? ` [preset auto: ${result.solver.presetRow?.name}]` : '');
  process.stdout.write(
    `${total} samples [${sampleShape.join(', ')}] -> ${args.out}: NFE ${result.nfe}, ` +
      `${seconds.toFixed(2)} s, ${(total / seconds).toFixed(1)} samples/s ` +
      `(${solver}; seed ${String(args.seed)}; ${args.device} ${args.dtype}` +
      (classLabel !== undefined ? `; classifier guidance: class ${classLabel}, scale ${args.classifierScale ?? 1}` : '') +
      ')\n',
  );
  if (request) process.stdout.write(`${request.text}\n`);
  if (preview) {
    process.stdout.write(`preview of x0 at NFE ${preview.nfes.join(', ')} -> ${previewPath(args.out)}\n`);
  }
}

/** Why CUDA is off, or '' when both the addon and its LibTorch can run CUDA. */
function cudaOffReason(build: { cuda: boolean; torchCuda: boolean }): string {
  if (build.cuda && build.torchCuda) return '';
  if (!build.torchCuda && !build.cuda) return 'LibTorch without CUDA, addon without CUDA kernels';
  return build.torchCuda ? 'the addon was built without CUDA kernels' : 'its LibTorch has no CUDA';
}

function runInfo(args: InfoArgs): void {
  const build = nativeBinding().buildInfo();
  const addon = nativeAddonInfo();
  const offReason = cudaOffReason(build);
  const info = {
    version: packageVersion(),
    addonVersion: build.version,
    variant: addon.variant,
    binary: addon.file,
    origin: addon.origin,
    libtorch: build.torchVersion,
    libtorchDir: addon.libtorchDir,
    // CUDA only when both the addon (kernels) and its LibTorch (models on 'cuda') have it.
    cuda: offReason === '',
    gpus: build.cudaDeviceCount,
    buildSystem: build.buildSystem,
    ompWaitPolicy: addon.ompWaitPolicy.value,
    node: process.version,
  };
  if (args.json) {
    process.stdout.write(JSON.stringify(info) + '\n');
    return;
  }
  process.stdout.write(
    [
      `scire-solver ${info.version} (addon ${info.addonVersion}, built with ${info.buildSystem})`,
      `Variant      ${info.variant}`,
      `Binary       ${info.binary} (${info.origin})`,
      `LibTorch     ${info.libtorch}${info.libtorchDir ? ` (${info.libtorchDir})` : ''}`,
      `CUDA         ${info.cuda ? 'on' : `off (${offReason})`}`,
      `GPUs         ${info.gpus}`,
      `OpenMP       OMP_WAIT_POLICY=${info.ompWaitPolicy}${addon.ompWaitPolicy.setBy === 'scire-solver' ? ' (set by scire-solver; set it to override)' : ''}`,
      `Node.js      ${info.node}`,
    ].join('\n') + '\n',
  );
}

/** Runs the CLI on argv (without node and the script) and resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  // The queue commands live in their own module (bullmq is loaded only by them).
  if (argv[0] === 'worker' || argv[0] === 'submit') return (await import('./cli-worker')).main(argv);
  const usage = argv[0] === 'sample' ? SAMPLE_USAGE : argv[0] === 'inpaint' ? INPAINT_USAGE : argv[0] === 'info' ? INFO_USAGE : USAGE;
  try {
    const args = parseCommandLine(argv);
    if (args.command === 'help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    if (args.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    if (args.command === 'sample') await runSample(args);
    else if (args.command === 'inpaint') await runInpaint(args, DEFAULT_MODEL);
    else runInfo(args);
    return 0;
  } catch (err) {
    return reportCliError(err, usage);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`scire: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
