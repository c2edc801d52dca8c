/**
 * The two halves of every Frechet-distance measurement on Fashion-MNIST (benchmarks/fid.ts, the
 * FD stage of benchmarks/auto-preset.ts): write a configuration's samples as .npy (reused when a
 * file of the right size is already there), and score a list of such files with benchmarks/fid.py
 * (the method is documented there and in docs/benchmarks.md §3).
 *
 * Samples of one model live in `<work>/<sha256(model)[:16]>-chunk<N>/`, so a retrained model or
 * another chunking (other seeds) never reuses the samples of the old one; chunk c of a noise set
 * starts from seed `seedBase + c`, and every configuration of a set uses the same noise.
 */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'fs';
import { join } from 'path';
import { decodeNpy, encodeNpy } from '../../lib/image-io';
import type { Sampler } from '../../lib/sampler';

export interface SampleSet {
  /** Folder of this model's samples for this chunk size. */
  dir: string;
  modelSha256: string;
  samples: number;
  chunk: number;
  seedBase: number;
  /** One sample's shape, e.g. [1, 28, 28]. */
  shape: number[];
}

export function sampleSet(o: { work: string; modelPath: string; samples: number; chunk: number; seedBase: number; shape: number[] }): SampleSet {
  if (!(o.samples >= 2 && o.chunk >= 1 && o.samples % o.chunk === 0)) throw new RangeError(`--samples (${o.samples}) must be a multiple of --chunk (${o.chunk})`);
  if (!Number.isInteger(o.seedBase) || o.seedBase < 0) throw new RangeError(`--seed-base must be a non-negative integer (got '${o.seedBase}')`);
  const modelSha256 = createHash('sha256').update(readFileSync(o.modelPath)).digest('hex');
  const dir = join(o.work, `${modelSha256.slice(0, 16)}-chunk${o.chunk}`);
  mkdirSync(dir, { recursive: true });
  return { dir, modelSha256, samples: o.samples, chunk: o.chunk, seedBase: o.seedBase, shape: o.shape };
}

/** The file of one configuration at one NFE target in a sample set (named after the configuration). */
export function sampleFile(set: SampleSet, name: string, nfe: number): string {
  const slug = `${name.replace(/[^A-Za-z0-9+]+/g, '_').replace(/_+$/, '')}_nfe${nfe}.npy`;
  return join(set.dir, `${set.seedBase ? `seeds${set.seedBase}_` : ''}${slug}`);
}

export interface WrittenSamples {
  file: string;
  /** The NFE the sampler spent per sample. */
  actualNfe: number;
  /** False when an earlier run's file was reused. */
  generated: boolean;
  ms: number;
  /** Batched evaluations run (0 when reused). */
  forwards: number;
}

/** Writes `set.samples` samples of `sampler` to `file` (or reuses the file of an earlier run). */
export async function writeSamples(sampler: Sampler, set: SampleSet, file: string): Promise<WrittenSamples> {
  const perSample = set.shape.reduce((a, b) => a * b, 1);
  const bytes = 128 + set.samples * perSample * 4;
  if (existsSync(file) && statSync(file).size === bytes && existsSync(`${file}.nfe`)) {
    return { file, actualNfe: Number(readFileSync(`${file}.nfe`, 'utf8')), generated: false, ms: 0, forwards: 0 };
  }
  const data = new Float32Array(set.samples * perSample);
  const t0 = Date.now();
  let actualNfe = 0;
  let forwards = 0;
  for (let c = 0; c < set.samples / set.chunk; c++) {
    const out = await sampler.sample({ shape: [set.chunk, ...set.shape], seed: set.seedBase + c });
    data.set(out.data, c * out.data.length);
    actualNfe = out.nfe;
    forwards += out.nfe;
  }
  writeFileSync(file, encodeNpy(data, [set.samples, ...set.shape]));
  writeFileSync(`${file}.nfe`, String(actualNfe));
  return { file, actualNfe, generated: true, ms: Date.now() - t0, forwards };
}

export interface FdScores {
  /** FD per sample file, by its base name. */
  scores: Record<string, { n: number; fd: number }>;
  train_reference?: { n: number; fd: number };
  reference_images: number;
  seconds: number;
}

/**
 * Scores sample files with benchmarks/fid.py against the test images (or --ref-stats, or the
 * samples of refNpy);
 * `trainRef` > 0 also scores that many training images (the floor). Results go to `jsonFile`.
 */
export function scoreFd(o: {
  root: string;
  files: string[];
  jsonFile: string;
  python?: string;
  trainRef?: number;
  refStats?: string;
  /** Samples to use as the reference instead of the test images (fid.py --ref-npy). */
  refNpy?: string;
  testLimit?: number;
  threads?: string;
}): FdScores {
  const refArgs = o.refNpy ? ['--ref-npy', o.refNpy] : o.refStats ? ['--ref-stats', o.refStats] : o.trainRef ? ['--train-ref', String(o.trainRef)] : [];
  const args = [
    join(o.root, 'benchmarks', 'fid.py'),
    '--json',
    o.jsonFile,
    '--classifier',
    join(o.root, 'models', 'fmnist_classifier.pt'),
    '--threads',
    o.threads ?? '1',
    ...refArgs,
    ...(o.testLimit ? ['--test-limit', String(o.testLimit)] : []),
    ...o.files,
  ];
  execFileSync(o.python ?? '/usr/bin/python3', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  return JSON.parse(readFileSync(o.jsonFile, 'utf8')) as FdScores;
}

/** The float32 values of a sample file written by writeSamples. */
export function readSamples(file: string): Float32Array {
  try {
    return decodeNpy(readFileSync(file)).data;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}

/** FD of one file in a scoreFd result. */
export function fdOf(scores: FdScores, file: string): number {
  const s = scores.scores[file.split('/').pop()!];
  if (!s) throw new Error(`fid.py returned no score for ${file}`);
  return s.fd;
}
