/**
 * `scire inpaint --image in.png --mask mask.png`: fills in the unknown part of one image with
 * the model, n times (Sampler.sample({ x0, mask }), lib/inpaint.ts).
 *
 * Mask convention: white = keep (known), black = generate, gray = blend (m = gray / 255).
 * The image and the mask must have the model's height and width; colour is converted to the
 * model's channels. Output: a PNG row [the input with the generated part blanked, sample 1..n]
 * or a .npy of the samples.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, type InpaintArgs } from './cli-args';
import { encodeNpy, encodePng, toImageGrid, toUnitRange, type ImageGrid } from './image-io';
import { loadModel } from './model';
import { readModelCard } from './model-card';
import { decodePng } from './png-read';
import { ProgressReporter } from './progress';
import { Sampler, type SampleResult } from './sampler';

/** Reads a PNG given on the command line; a missing file or a bad PNG is a usage error. */
function readPng(flag: string, file: string, channels: 1 | 3): ImageGrid {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`--${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  try {
    return decodePng(bytes, channels, `--${flag} ${file}`);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** HWC bytes -> CHW floats: x0 in the data range [lo, hi], or the mask in [0, 1]. */
export function planesFromImage(img: ImageGrid, lo: number, hi: number): Float32Array {
  const { width: w, height: h, channels: c, pixels } = img;
  const out = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < h * w; i++) out[ch * h * w + i] = lo + ((hi - lo) * pixels[i * c + ch]) / 255;
  }
  return out;
}

/** x0 and mask of `args` for a model whose samples have shape [c, h, w]. */
export function readInpaintInputs(args: Pick<InpaintArgs, 'image' | 'mask'>, shape: number[], dataRange: [number, number]) {
  const [c, h, w] = shape;
  if (shape.length !== 3 || (c !== 1 && c !== 3)) {
    throw new UsageError(`scire inpaint needs an image model (sample shape [1 or 3, height, width]); this one has [${shape.join(', ')}]`);
  }
  const image = readPng('image', args.image as string, c);
  const mask = readPng('mask', args.mask as string, 1);
  if (image.width !== w || image.height !== h) {
    throw new UsageError(`--image ${args.image} is ${image.width}x${image.height} but the model's samples are ${w}x${h} (width x height)`);
  }
  if (mask.width !== image.width || mask.height !== image.height) {
    throw new UsageError(
      `--mask ${args.mask} is ${mask.width}x${mask.height} but --image ${args.image} is ${image.width}x${image.height}: they must be the same size`,
    );
  }
  const m1 = planesFromImage(mask, 0, 1);
  // One mask for every channel.
  const m = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++) m.set(m1, ch * h * w);
  return { x0: planesFromImage(image, dataRange[0], dataRange[1]), mask: m };
}

/** The PNG row: the input with its unknown part blanked to the middle gray, then the samples. */
function writeResult(file: string, result: SampleResult, x0: Float32Array, mask: Float32Array, dataRange: [number, number]): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  if (/\.npy$/i.test(file)) {
    fs.writeFileSync(file, encodeNpy(result.data, result.shape));
    return;
  }
  const per = x0.length;
  const tiles = new Float32Array(per + result.data.length);
  const unitX0 = toUnitRange(x0, dataRange);
  for (let i = 0; i < per; i++) tiles[i] = mask[i] * unitX0[i];
  tiles.set(toUnitRange(result.data, dataRange), per);
  const n = result.shape[0] + 1;
  fs.writeFileSync(file, encodePng(toImageGrid(tiles, [n, ...result.shape.slice(1)], { cols: n })));
}

export async function runInpaint(args: InpaintArgs, defaultModel: string): Promise<void> {
  const modelPath = args.model ?? defaultModel;
  if (!fs.existsSync(modelPath)) throw new Error(`--model ${modelPath}: no such file`);
  const card = readModelCard(modelPath, args.card);
  const shape = card.shape;
  if (!shape) throw new UsageError(`the model card ${card.file} gives no sample shape`);
  const dataRange = card.dataRange ?? [-1, 1];
  const { x0, mask } = readInpaintInputs(args, shape, dataRange);

  const model = await loadModel(modelPath, { device: args.device, dtype: args.dtype });
  try {
    const sampler = new Sampler({ model, schedule: card.schedule, modelType: card.modelType, steps: args.steps });
    const progress = args.quiet ? undefined : new ProgressReporter(process.stderr);
    let result: SampleResult;
    try {
      result = await sampler.sample({
        shape: [args.samples, ...shape],
        seed: args.seed,
        x0,
        mask,
        onStep: progress ? (ev) => progress.update(ev) : undefined,
      });
    } finally {
      progress?.finish();
    }
    writeResult(args.out, result, x0, mask, dataRange);
    let known = 0;
    for (let i = 0; i < mask.length; i++) known += mask[i] === 1 ? 1 : 0;
    process.stdout.write(
      `${args.samples} inpaintings of ${args.image} (${known} of ${mask.length} values known) -> ${args.out}: ` +
        `NFE ${result.nfe}, ${(result.timings.totalMs / 1000).toFixed(2)} s (seed ${String(args.seed)}; ${args.device} ${args.dtype})\n`,
    );
  } finally {
    model.dispose();
  }
}
