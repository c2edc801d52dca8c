/**
 * The `scire` command line: flag parsing (in process) and end-to-end runs of the built
 * dist/cli.js in a child process (exit status, the PNG / NPY it writes, usage errors).
 *
 * dist/ is rebuilt with tsc when any lib/*.ts is newer than dist/cli.js (npm run build).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inflateSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_USAGE, UsageError, parseCommandLine, type SampleArgs } from '../lib/cli-args';
import { GRID_PADDING, decodeNpy } from '../lib/image-io';
import { DIST_CLI, ROOT, ensureDistBuilt } from './support/dist';

const CLI = DIST_CLI;
const GMM_MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'gmm_img1x4x4_discrete.pt');
/** The bundled default model (models/README.md): what `scire sample` uses without --model. */
const BUNDLED_MODEL = path.join(ROOT, 'models', 'fmnist_unet.pt');

function scire(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
}

interface Png {
  width: number;
  height: number;
  colorType: number;
  pixels: Buffer;
}

/** Minimal PNG reader for the files the CLI writes: checks the signature and chunk layout, inflates 8-bit filter-0 rows. */
function readPng(file: string): Png {
  const buf = fs.readFileSync(file);
  expect(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(buf.toString('latin1', 12, 16)).toBe('IHDR');
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  expect(buf[24]).toBe(8); // bit depth
  const colorType = buf[25];
  const idat: Buffer[] = [];
  let at = 8;
  let sawEnd = false;
  while (at < buf.length) {
    const len = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    if (type === 'IDAT') idat.push(buf.subarray(at + 8, at + 8 + len));
    if (type === 'IEND') sawEnd = true;
    at += 12 + len;
  }
  expect(sawEnd).toBe(true);
  const channels = colorType === 0 ? 1 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  expect(raw.length).toBe(height * (stride + 1));
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (stride + 1)]).toBe(0); // filter type none
    raw.copy(pixels, y * stride, y * (stride + 1) + 1, (y + 1) * (stride + 1));
  }
  return { width, height, colorType, pixels };
}

describe('scire command line parsing', () => {
  it('defaults to the paper few-step configuration, 64 samples, samples.png', () => {
    const args = parseCommandLine(['sample']) as SampleArgs;
    expect(args).toMatchObject({ command: 'sample', steps: 12, samples: 64, seed: 0, device: 'cpu', dtype: 'float32', out: 'samples.png' });
    expect(args.solver).toBeUndefined(); // compilePlan's defaults: scire v1 multistep order 3 nsr
  });

  it('parses every sample flag', () => {
    const args = parseCommandLine([
      'sample', '--model', 'm.pt', '--card', 'm.json', '--steps', '20', '--solver', 'dpmpp', '--method', 'singlestep_agile',
      '--order', '2', '--skip', 'logsnr', '--model-type', 'v', '--denoise-to-zero', '-n', '9', '--shape', '3,8,8',
      '--seed', '18446744073709551615', '--device', 'cuda:1', '--dtype', 'float16', '--out', 'x.npy', '-q',
    ]) as SampleArgs;
    expect(args).toMatchObject({
      model: 'm.pt', card: 'm.json', steps: 20, solver: 'dpmpp', method: 'singlestep_agile', order: 2, skip: 'logsnr',
      modelType: 'v', denoiseToZero: true, samples: 9, shape: [3, 8, 8], seed: 18446744073709551615n, device: 'cuda:1',
      dtype: 'float16', out: 'x.npy', quiet: true,
    });
    expect((parseCommandLine(['sample', '--algorithm', 'v2']) as SampleArgs).algorithm).toBe('v2');
    // the solver fields of issue 14: UniPC variant and final corrector, the SciRE corrector and RDE, lower-order final
    expect(parseCommandLine(['sample', '--solver', 'unipc', '--variant', 'bh2', '--final-corrector', '--no-lower-order-final'])).toMatchObject({
      solver: 'unipc', variant: 'bh2', finalCorrector: true, lowerOrderFinal: false,
    });
    expect(parseCommandLine(['sample', '--corrector', 'consistent', '--rde', 'consistent'])).toMatchObject({ corrector: 'consistent', rde: 'consistent' });
    const plain = parseCommandLine(['sample']) as SampleArgs;
    expect([plain.variant, plain.finalCorrector, plain.corrector, plain.rde, plain.lowerOrderFinal]).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('rejects bad flags with a UsageError naming the flag and the allowed values', () => {
    const bad: Array<[string[], RegExp]> = [
      [['sample', '--steps', 'abc'], /--steps must be an integer from 1 to 10000, got 'abc'/],
      [['sample', '--steps', '0'], /--steps must be an integer from 1 to 10000, got '0'/],
      [['sample', '--solver', 'euler'], /--solver must be one of scire \| ddim \| dpmpp \| unipc, got 'euler'/],
      [['sample', '--order', '4'], /--order must be 1, 2 or 3, got '4'/],
      [['sample', '--device', 'tpu'], /--device must be cpu, cuda or cuda:N, got 'tpu'/],
      [['sample', '--out', 'x.jpg'], /--out must name a .png or .npy file, got 'x.jpg'/],
      [['sample', '--seed', '-3'], /^--seed must be a non-negative integer below 2\^64, got '-3'$/],
      [['sample', '--shape', '1,0,4'], /--shape must be positive integers/],
      [['sample', '--frobnicate'], /^unknown flag '--frobnicate'$/],
      // an unknown flag names the flag meant: the short form, a synonym, a close spelling
      [['sample', '--n', '4'], /^unknown flag '--n' \(did you mean -n, i\.e\. --samples\?\)$/],
      [['sample', '--nfe', '8'], /^unknown flag '--nfe' \(did you mean --steps\?\)$/],
      [['sample', '--stpes', '8'], /^unknown flag '--stpes' \(did you mean --steps\?\)$/],
      [['sample', '--variant', 'bh3'], /--variant must be one of bh1 \| bh2, got 'bh3'/],
      [['sample', '--corrector', 'yes'], /--corrector must be one of none \| faithful \| consistent, got 'yes'/],
      [['sample', '--rde', 'exact'], /--rde must be one of faithful \| consistent, got 'exact'/],
      [['sample', 'extra'], /takes no positional arguments/],
      [['render'], /unknown command 'render'/],
    ];
    for (const [argv, message] of bad) {
      expect(() => parseCommandLine(argv), argv.join(' ')).toThrow(UsageError);
      expect(() => parseCommandLine(argv), argv.join(' ')).toThrow(message);
    }
  });

  it('documents every flag in --help', () => {
    for (const flag of ['--model', '--card', '--steps', '--solver', '--algorithm', '--method', '--order', '--skip', '--model-type',
      '--denoise-to-zero', '-n, --samples', '--shape', '--seed', '--device', '--dtype', '--out', '--quiet', '--help',
      '--rde', '--corrector', '--variant', '--final-corrector', '--no-lower-order-final']) {
      expect(SAMPLE_USAGE).toContain(flag);
    }
  });
});

describe('scire end to end (dist/cli.js)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scire-cli-'));

  beforeAll(() => {
    ensureDistBuilt();
  }, 120_000);

  it('samples 4 images at 6 steps from the bundled model into a valid, non-constant PNG grid', () => {
    const out = path.join(tmp, 'fmnist.png');
    // No --model: the default is the bundled Fashion-MNIST UNet and its card (shape [1, 28, 28]).
    expect(fs.existsSync(BUNDLED_MODEL)).toBe(true);
    const run = scire(['sample', '-n', '4', '--steps', '6', '--out', out]);
    expect(run.stderr).not.toMatch(/scire:/);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^4 samples \[1, 28, 28\] -> .*fmnist\.png: NFE 6, \d+\.\d\d s, \d+(\.\d)? samples\/s/);
    // Not a terminal: plain progress lines, one per evaluation.
    expect(run.stderr.trim().split('\n')).toHaveLength(6);
    expect(run.stderr).toMatch(/sampling: 6\/6 NFE/);

    const png = readPng(out);
    const side = 2 * (28 + GRID_PADDING) + GRID_PADDING; // 2x2 tiles of 28x28
    expect([png.width, png.height, png.colorType]).toEqual([side, side, 0]);
    for (let tile = 0; tile < 4; tile++) {
      const left = GRID_PADDING + (tile % 2) * (28 + GRID_PADDING);
      const top = GRID_PADDING + Math.floor(tile / 2) * (28 + GRID_PADDING);
      const values: number[] = [];
      for (let y = top; y < top + 28; y++) for (let x = left; x < left + 28; x++) values.push(png.pixels[y * png.width + x]);
      // A garment on a dark background: both dark and bright pixels in every tile.
      expect(Math.max(...values) - Math.min(...values), `tile ${tile}`).toBeGreaterThan(100);
    }
  }, 120_000);

  it('samples a model given by --model and --shape (the GMM image model)', () => {
    const out = path.join(tmp, 'gmm.png');
    const run = scire(['sample', '--model', GMM_MODEL, '--shape', '1,4,4', '-n', '4', '--steps', '6', '-q', '--out', out]);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^4 samples \[1, 4, 4\] -> .*gmm\.png: NFE 6,/);
    const png = readPng(out);
    const side = 2 * (4 + GRID_PADDING) + GRID_PADDING; // 2x2 tiles of 4x4
    expect([png.width, png.height]).toEqual([side, side]);
    const tile: number[] = [];
    for (let y = GRID_PADDING; y < GRID_PADDING + 4; y++) {
      for (let x = GRID_PADDING; x < GRID_PADDING + 4; x++) tile.push(png.pixels[y * png.width + x]);
    }
    expect(Math.max(...tile) - Math.min(...tile)).toBeGreaterThan(20);
  }, 120_000);

  it('writes raw float32 samples to .npy', () => {
    const out = path.join(tmp, 'gmm.npy');
    const run = scire(['sample', '--model', GMM_MODEL, '-n', '3', '--steps', '5', '--solver', 'ddim', '--seed', '9', '-q', '--out', out]);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    const buf = fs.readFileSync(out);
    const headerLen = buf.readUInt16LE(8);
    expect(buf.toString('latin1', 10, 10 + headerLen)).toMatch(/'descr': '<f4', 'fortran_order': False, 'shape': \(3, 16\)/);
    const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + headerLen, buf.byteOffset + buf.length));
    expect(data.length).toBe(48);
    expect(data.every(Number.isFinite)).toBe(true);
    expect(Math.max(...data) - Math.min(...data)).toBeGreaterThan(0.5);
  }, 120_000);

  it('runs the solver named by --variant / --final-corrector / --corrector, as the API does with the same options', async () => {
    const { loadModel, Sampler, readModelCard } = await import('../lib/index');
    const card = readModelCard(GMM_MODEL);
    const model = await loadModel(GMM_MODEL);
    const cases: Array<[string[], Record<string, unknown>, RegExp]> = [
      [['--solver', 'unipc', '--variant', 'bh2', '--final-corrector'], { solver: 'unipc', variant: 'bh2', finalCorrector: true }, /NFE 6, .*\(unipc bh2 multistep order 3 logsnr final corrector; seed 4;/],
      [['--corrector', 'faithful', '--no-lower-order-final'], { corrector: 'faithful', lowerOrderFinal: false }, /NFE 5, .*\(scire v1 multistep order 3 nsr corrector faithful; seed 4;/],
    ];
    try {
      for (const [flags, options, summary] of cases) {
        const out = path.join(tmp, 'solver-flags.npy');
        const run = scire(['sample', '--model', GMM_MODEL, '-n', '3', '--steps', '5', '--seed', '4', '-q', '--out', out, ...flags]);
        expect(run.stderr, flags.join(' ')).toBe('');
        expect(run.stdout).toMatch(summary);
        const cli = decodeNpy(fs.readFileSync(out)).data;
        const api = await new Sampler({ model, schedule: card.schedule, modelType: card.modelType, steps: 5, ...options }).sample({ shape: [3, ...card.shape!], seed: 4 });
        expect(Array.from(cli), flags.join(' ')).toEqual(Array.from(api.data));
      }
    } finally {
      model.dispose();
    }
  }, 120_000);

  it('exits with status 2 and the usage on bad flags', () => {
    for (const argv of [['sample', '--steps', 'abc'], ['sample', '--bogus'], ['render'], ['sample', '--solver', 'ddim', '--algorithm', 'v2', '--model', GMM_MODEL]]) {
      const run = scire(argv);
      expect(run.status, argv.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/^scire: /);
      expect(run.stderr).toContain('Usage: scire');
      expect(run.stdout).toBe('');
    }
    // A PNG of non-image samples is a usage problem too ([16] vectors without --shape).
    const run = scire(['sample', '--model', GMM_MODEL, '-n', '2', '--steps', '3', '-q', '--out', path.join(tmp, 'v.png')]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/write a .npy file instead/);
  }, 120_000);

  it('exits with status 1 when the model is missing', () => {
    const run = scire(['sample', '--model', path.join(tmp, 'nope.pt'), '-q']);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/no such file/);
  }, 120_000);

  it('prints the help with status 0', () => {
    const run = scire(['sample', '--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('--denoise-to-zero');
    expect(scire(['--help']).stdout).toMatch(/Commands:\n {2}sample/);
  }, 120_000);

  it('info prints the version, LibTorch version, CUDA state and GPUs', () => {
    const run = scire(['info']);
    expect(run.status).toBe(0);
    const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(run.stdout).toContain(`scire-solver ${version}`);
    expect(run.stdout).toMatch(/LibTorch\s+\d+\.\d+/);
    expect(run.stdout).toMatch(/CUDA\s+(on|off)/);
    expect(run.stdout).toMatch(/GPUs\s+\d+/);
    const json = JSON.parse(scire(['info', '--json']).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ version });
    expect(typeof json.cuda).toBe('boolean');
  }, 120_000);
});
