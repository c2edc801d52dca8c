/**
 * Class-conditional sampling: the card's "conditioning", class names/indices -> one-hot cond
 * rows (lib/class-cond.ts), classifier-free guidance through the Sampler, and
 * `scire sample --class / --classes / --guidance` (dist/cli.js in a child process).
 *
 * Model: test/fixtures/models/class_cond_tiny.pt (make_class_cond_model.py), a data
 * predictor x0 = cond @ M that ignores x and t. With --denoise-to-zero the last evaluation's
 * x0 is the result, so a sample of class k at guidance g must equal
 * M[null] + g (M[k] - M[null]) up to float32 rounding (relative error < 1e-5 is asserted).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { classGuidance, conditioningOf, oneHotRows, resolveClass } from '../lib/class-cond';
import { SAMPLE_USAGE, UsageError, parseCommandLine, type SampleArgs } from '../lib/cli-args';
import { loadModel } from '../lib/model';
import { parseModelCard, readModelCard, type ClassConditioning } from '../lib/model-card';
import { Sampler } from '../lib/sampler';
import { DIST_CLI, ROOT, ensureDistBuilt } from './support/dist';

const MODELS = path.join(ROOT, 'test', 'fixtures', 'models');
const TINY = path.join(MODELS, 'class_cond_tiny.pt');
const GMM_MODEL = path.join(MODELS, 'gmm_img1x4x4_discrete.pt');
const tinyCard = readModelCard(TINY);
const MEANS = (JSON.parse(fs.readFileSync(path.join(MODELS, 'class_cond_tiny.json'), 'utf8')) as { means: number[][] }).means;
const NULL = 3;

/** M[null] + g (M[k] - M[null]): the guided x0 of class k (k = NULL: the null class). */
function guided(k: number, g: number): number[] {
  return MEANS[k].map((m, i) => MEANS[NULL][i] + g * (m - MEANS[NULL][i]));
}

/** max |a - b| / max |b| over the vectors. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

const CARD_BASE = {
  modelType: 'noise',
  shape: [1, 2, 2],
  schedule: { kind: 'discrete', betaSchedule: 'linear' },
};

describe('model card conditioning', () => {
  it('reads the one-hot conditioning with its class names and null index', () => {
    expect(tinyCard.conditioning).toEqual({ kind: 'one-hot', size: 4, classes: ['low', 'ramp', 'high/bright'], nullIndex: 3 });
    expect(parseModelCard(CARD_BASE, 'x.json').conditioning).toBeUndefined();
  });

  it('rejects a bad conditioning entry naming the field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ kind: 'embedding', size: 3, classes: ['a', 'b'], nullIndex: 2 }, /'one-hot'.* for conditioning\.kind but received 'embedding'/],
      [{ kind: 'one-hot', size: 3, classes: [], nullIndex: 2 }, /non-empty array of class names .* for conditioning\.classes/],
      [{ kind: 'one-hot', size: 3, classes: ['a', 7], nullIndex: 2 }, /for conditioning\.classes/],
      [{ kind: 'one-hot', size: 4, classes: ['a', 'b'], nullIndex: 2 }, /an integer >= 3 and <= 3 for conditioning\.size but received 4/],
      [{ kind: 'one-hot', size: 3, classes: ['a', 'b'], nullIndex: 1 }, /an integer >= 2 and <= 2 for conditioning\.nullIndex but received 1/],
      [{ kind: 'one-hot', size: 3, classes: ['a', 'b'] }, /for conditioning\.nullIndex but received undefined/],
      ['one-hot', /for conditioning but received 'one-hot'/],
    ];
    for (const [conditioning, message] of bad) {
      expect(() => parseModelCard({ ...CARD_BASE, conditioning }, 'c.json'), JSON.stringify(conditioning)).toThrow(message);
      expect(() => parseModelCard({ ...CARD_BASE, conditioning }, 'c.json')).toThrow(/^Invalid model card c\.json: /);
    }
  });
});

describe('class names and indices -> cond rows', () => {
  const c = tinyCard.conditioning as ClassConditioning;

  it('resolves indices, names, name parts, without case or punctuation', () => {
    expect([0, 1, 2].map((k) => resolveClass(c, k))).toEqual([0, 1, 2]);
    expect(['0', ' 2 ', 'low', 'RAMP', 'high', 'Bright', 'high/bright', 'High-Bright', 'high_bright'].map((v) => resolveClass(c, v)))
      .toEqual([0, 2, 0, 1, 2, 2, 2, 2, 2]);
    // The Fashion-MNIST names the bundled card uses.
    const fm: ClassConditioning = {
      kind: 'one-hot',
      size: 11,
      nullIndex: 10,
      classes: ['t-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'],
    };
    expect(['sneaker', 'Ankle boot', 'ankle-boot', 'T-shirt', 'tshirt', 'top', 't-shirt/top', 'shirt'].map((v) => resolveClass(fm, v)))
      .toEqual([7, 9, 9, 0, 0, 0, 0, 6]);
  });

  it('refuses unknown names and out-of-range indices, naming the field and the allowed values', () => {
    const allowed = /^Expected a class index 0\.\.2 or a class name \('low', 'ramp', 'high\/bright'\) for class but received/;
    expect(() => resolveClass(c, 3)).toThrow(RangeError);
    expect(() => resolveClass(c, 3)).toThrow(allowed);
    expect(() => resolveClass(c, '-1')).toThrow(RangeError);
    expect(() => resolveClass(c, 'medium')).toThrow(TypeError);
    expect(() => resolveClass(c, 'medium')).toThrow(allowed);
    expect(() => resolveClass(c, '')).toThrow(allowed);
    expect(() => resolveClass(c, 1.5)).toThrow(TypeError);
    expect(() => resolveClass(c, 'low', 'classes[4]')).not.toThrow();
    expect(() => resolveClass(c, 'x', 'classes[4]')).toThrow(/for classes\[4\] but received 'x' \(string\)$/);
  });

  it('builds one-hot cond rows per sample and null-class uncond rows', () => {
    const g = classGuidance(tinyCard, ['ramp', 0, 'bright', null], 2.5);
    expect(g.condShape).toEqual([4, 4]);
    expect(Array.from(g.cond)).toEqual([0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    expect(Array.from(g.uncond!)).toEqual([0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(g.guidanceScale).toBe(2.5);
    // g = 1 is the conditional model alone: no uncond pass.
    const one = classGuidance(c, [1], 1);
    expect(one.uncond).toBeUndefined();
    expect(one.guidanceScale).toBeUndefined();
    expect(Array.from(oneHotRows(c, [3, 0]))).toEqual([0, 0, 0, 1, 1, 0, 0, 0]);
  });

  it('refuses bad guidance input with errors naming the field', () => {
    expect(() => classGuidance(tinyCard, [], 3)).toThrow(/non-empty array of class names or indices .* for classes but received/);
    expect(() => classGuidance(tinyCard, ['low', 'nope'], 3)).toThrow(/a class index 0\.\.2 or a class name .* for classes\[1\] but received 'nope'/);
    expect(() => classGuidance(tinyCard, [0], Number.NaN)).toThrow(/Expected a finite number for guidanceScale but received NaN/);
    expect(() => classGuidance(readModelCard(GMM_MODEL), [0], 3)).toThrow(TypeError);
    expect(() => conditioningOf(readModelCard(GMM_MODEL))).toThrow(/^Expected a class-conditional model \(a card with a "conditioning" entry naming the classes\) for model, but the card .*gmm_img1x4x4_discrete\.json has none$/);
    expect(() => oneHotRows(c, [4])).toThrow(/an integer from 0 to 3 for indices\[0\] but received 4/);
  });
});

describe('classifier-free guidance through the Sampler (class_cond_tiny.pt)', () => {
  it('ends at M[null] + g (M[k] - M[null]) for every sample, for g in 0, 1, 3 and -0.5', async () => {
    const model = await loadModel(TINY);
    const sampler = new Sampler({ model, schedule: tinyCard.schedule, modelType: 'x_start', steps: 5, denoiseToZero: true });
    const labels = [0, 1, 2, null, 2];
    for (const g of [0, 1, 3, -0.5]) {
      const out = await sampler.sample({ shape: [labels.length, 1, 2, 2], seed: 7, ...classGuidance(tinyCard, labels, g) });
      labels.forEach((k, b) => {
        const want = guided(k ?? NULL, g);
        expect(relErr(out.data.subarray(4 * b, 4 * b + 4), want), `g ${g} sample ${b}`).toBeLessThan(1e-5);
      });
      // Guidance doubles the batch of each forward except at g = 1 (cond only); the NFE is the same.
      expect(out.nfe).toBe(6);
    }
  }, 60_000);
});

describe('scire sample --class / --classes / --guidance', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scire-class-'));
  const scire = (args: string[]) => spawnSync(process.execPath, [DIST_CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const readNpy = (file: string): { shape: string; data: Float32Array } => {
    const buf = fs.readFileSync(file);
    const headerLen = buf.readUInt16LE(8);
    const header = buf.toString('latin1', 10, 10 + headerLen);
    const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + headerLen, buf.byteOffset + buf.length));
    return { shape: /'shape': \(([^)]*)\)/.exec(header)![1], data };
  };

  beforeAll(() => {
    ensureDistBuilt();
  }, 120_000);

  it('parses the flags; -n defaults to 8 per class with --classes', () => {
    const one = parseCommandLine(['sample', '--class', 'sneaker', '--guidance', '2.5']) as SampleArgs;
    expect(one).toMatchObject({ class: 'sneaker', classes: false, guidance: 2.5, samples: 64 });
    const rows = parseCommandLine(['sample', '--classes']) as SampleArgs;
    expect(rows).toMatchObject({ classes: true, samples: 8 });
    expect(rows.guidance).toBeUndefined(); // the default (3) is applied with the card
    expect((parseCommandLine(['sample', '--class', '7', '--guidance', '-1']) as SampleArgs).guidance).toBe(-1);
    for (const flag of ['--class <name|index>', '--classes', '--guidance <g>']) expect(SAMPLE_USAGE).toContain(flag);
  });

  it('rejects contradictory or malformed class flags with a UsageError', () => {
    const bad: Array<[string[], RegExp]> = [
      [['sample', '--class', '7', '--classes'], /--class and --classes exclude each other/],
      [['sample', '--guidance', '3'], /--guidance 3 needs --class <name\|index> or --classes/],
      [['sample', '--class', '7', '--guidance', 'lots'], /--guidance must be a finite number \(e\.g\. 3\), got 'lots'/],
      [['sample', '--class', '7', '--guidance', 'Infinity'], /--guidance must be a finite number/],
      [['sample', '--class', ''], /--class must be a class name or index/],
    ];
    for (const [argv, message] of bad) {
      expect(() => parseCommandLine(argv), argv.join(' ')).toThrow(UsageError);
      expect(() => parseCommandLine(argv), argv.join(' ')).toThrow(message);
    }
  });

  it('samples one class at a guidance scale: every sample is the guided x0', () => {
    const out = path.join(tmp, 'bright.npy');
    const run = scire(['sample', '--model', TINY, '--class', 'Bright', '--guidance', '2', '-n', '3', '--steps', '4', '--denoise-to-zero', '-q', '--out', out]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^3 samples \[1, 2, 2\] -> .*bright\.npy: NFE 5,.*\nclass 2 \(high\/bright\), guidance 2\n$/);
    const { shape, data } = readNpy(out);
    expect(shape).toBe('3, 1, 2, 2');
    for (let b = 0; b < 3; b++) expect(relErr(data.subarray(4 * b, 4 * b + 4), guided(2, 2))).toBeLessThan(1e-5);
  }, 120_000);

  it('--classes: one row per class in class order (-n per row), default guidance 3; a PNG grid has -n columns', () => {
    const out = path.join(tmp, 'rows.npy');
    const run = scire(['sample', '--model', TINY, '--classes', '-n', '2', '--steps', '4', '--denoise-to-zero', '-q', '--out', out]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^6 samples .*\none row per class \(low, ramp, high\/bright\), guidance 3\n$/);
    const { shape, data } = readNpy(out);
    expect(shape).toBe('6, 1, 2, 2');
    for (let b = 0; b < 6; b++) expect(relErr(data.subarray(4 * b, 4 * b + 4), guided(Math.floor(b / 2), 3)), `sample ${b}`).toBeLessThan(1e-5);

    const png = path.join(tmp, 'rows.png');
    expect(scire(['sample', '--model', TINY, '--classes', '-n', '5', '--steps', '3', '-q', '--out', png]).status).toBe(0);
    const buf = fs.readFileSync(png);
    // IHDR: 5 tiles of 2 px per row, 3 rows, 2 px padding.
    expect([buf.readUInt32BE(16), buf.readUInt32BE(20)]).toEqual([5 * 4 + 2, 3 * 4 + 2]);
  }, 120_000);

  it('without --class a class-conditional model samples its null class (unconditional)', () => {
    const out = path.join(tmp, 'null.npy');
    const run = scire(['sample', '--model', TINY, '-n', '2', '--steps', '3', '--denoise-to-zero', '-q', '--out', out]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/\nno class \(null class: unconditional\)\n$/);
    const { data } = readNpy(out);
    for (let b = 0; b < 2; b++) expect(relErr(data.subarray(4 * b, 4 * b + 4), MEANS[NULL])).toBeLessThan(1e-5);
  }, 120_000);

  it('exits with status 2 naming the problem: unknown class, class out of range, --class on an unconditional model', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--model', TINY, '--class', 'sneaker'], /--class must be a class index 0\.\.2 or a class name of the model's card \(low \| ramp \| high\/bright\), got 'sneaker'/],
      [['--model', TINY, '--class', '3'], /--class must be a class index 0\.\.2 or a class name .*got '3'/],
      [['--model', GMM_MODEL, '--shape', '1,4,4', '--class', '1'], /--class 1: the model .*gmm_img1x4x4_discrete\.pt is not class-conditional \(its card .*has no "conditioning"/],
      [['--model', GMM_MODEL, '--shape', '1,4,4', '--classes'], /--classes: the model .* is not class-conditional/],
      [['--model', TINY, '--classes', '-n', '999999999'], /-n 999999999 per class \(2999999997 samples\) of shape \[1, 2, 2\] are 11999999988 values/],
    ];
    for (const [argv, message] of cases) {
      const run = scire(['sample', ...argv, '-q', '--out', path.join(tmp, 'x.npy')]);
      expect(run.status, argv.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toContain('Usage: scire sample');
    }
  }, 120_000);
});
