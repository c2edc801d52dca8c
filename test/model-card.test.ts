/**
 * Model cards (the JSON beside a TorchScript model) and the CLI progress reporter.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelCardPath, parseModelCard, readModelCard } from '../lib/model-card';
import { ProgressReporter } from '../lib/progress';
import { NoiseSchedule } from '../lib/schedule';

const FMNIST_CARD = {
  name: 'fmnist_unet',
  modelType: 'noise',
  shape: [1, 28, 28],
  dataRange: [-1, 1],
  schedule: { kind: 'discrete', betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02, numSteps: 1000 },
};

describe('model cards', () => {
  it('reads the bundled-model format into a schedule equal to NoiseSchedule.discrete', () => {
    const card = parseModelCard(FMNIST_CARD, 'fmnist_unet.json');
    expect(card).toMatchObject({ modelType: 'noise', shape: [1, 28, 28], dataRange: [-1, 1], name: 'fmnist_unet' });
    const want = NoiseSchedule.discrete({ kind: 'linear', betaStart: 1e-4, betaEnd: 0.02, N: 1000 });
    for (const t of [1e-3, 0.25, 0.5, 1]) expect(card.schedule.alpha(t)).toBe(want.alpha(t));
    expect(card.schedule.T).toBe(1);
  });

  it('reads the other schedule kinds', () => {
    expect(parseModelCard({ schedule: { kind: 'linear', beta0: 0.1, beta1: 20 } }, 'c').schedule.kind).toBe('linear');
    expect(parseModelCard({ schedule: { kind: 'cosine' } }, 'c').schedule.T).toBeCloseTo(0.9946, 12);
    const edm = parseModelCard({ modelType: 'x_start', schedule: { kind: 'edm', sigmaMin: 0.002, sigmaMax: 80 } }, 'c');
    expect(edm.schedule.sigma(3)).toBe(3);
    expect(edm.modelType).toBe('x_start');
    const betas = Array.from({ length: 10 }, (_, i) => 0.01 + 0.01 * i);
    expect(parseModelCard({ schedule: { kind: 'discrete', betas } }, 'c').schedule.alpha(1)).toBeCloseTo(
      Math.sqrt(betas.reduce((p, b) => p * (1 - b), 1)),
      12,
    );
  });

  it('reads the reference GMM parameter files (noise predictors on [D] vectors)', () => {
    const file = path.join(__dirname, 'fixtures', 'models', 'gmm_img1x4x4_discrete.json');
    const card = readModelCard(path.join(__dirname, 'fixtures', 'models', 'gmm_img1x4x4_discrete.pt'));
    expect(card.file).toBe(file);
    expect(card).toMatchObject({ modelType: 'noise', shape: [16] });
    expect(card.schedule.alpha(0.5)).toBe(NoiseSchedule.discrete({ kind: 'linear' }).alpha(0.5));
  });

  it('rejects bad cards naming the file and the field', () => {
    expect(() => parseModelCard({ schedule: { kind: 'ddim' } }, 'm.json')).toThrow(
      /^Invalid model card m.json: Expected one of 'discrete', 'linear', 'cosine', 'edm' for schedule.kind but received 'ddim' \(string\)$/,
    );
    expect(() => parseModelCard({ ...FMNIST_CARD, modelType: 'eps' }, 'm.json')).toThrow(/for modelType but received 'eps'/);
    expect(() => parseModelCard({ ...FMNIST_CARD, shape: [1, 0, 28] }, 'm.json')).toThrow(/for shape\[1\] but received 0/);
    expect(() => parseModelCard({ ...FMNIST_CARD, dataRange: [1, -1] }, 'm.json')).toThrow(/low < high for dataRange/);
    expect(() => parseModelCard([], 'm.json')).toThrow(/an object for the model card/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scire-card-'));
    expect(() => readModelCard(path.join(dir, 'x.pt'))).toThrow(/Cannot read the model card .*x\.json \(ENOENT\)/);
    fs.writeFileSync(path.join(dir, 'y.json'), '{ nope');
    expect(() => readModelCard(path.join(dir, 'y.pt'))).toThrow(/y\.json: not valid JSON/);
  });

  it('sits next to the model with a .json extension', () => {
    expect(modelCardPath('/m/fmnist_unet.pt')).toBe('/m/fmnist_unet.json');
    expect(modelCardPath('model')).toBe('model.json');
  });
});

describe('ProgressReporter', () => {
  function stream(isTTY: boolean): { chunks: string[]; write(c: string): void; isTTY: boolean } {
    const chunks: string[] = [];
    return { chunks, isTTY, write: (c: string) => void chunks.push(c) };
  }

  it('redraws one bar in place on a terminal', () => {
    const s = stream(true);
    const p = new ProgressReporter(s);
    p.update({ nfe: 3, total: 12, t: 417.25 });
    p.update({ nfe: 12, total: 12, t: 0 });
    p.finish();
    expect(s.chunks).toHaveLength(3);
    expect(s.chunks[0]).toMatch(/^\rsampling \[#{8}-{22}\]  3\/12 NFE {2}t=417\.3 {2}\d+\.\d s\x1b\[K$/);
    expect(s.chunks[1]).toMatch(/^\rsampling \[#{30}\] 12\/12 NFE/);
    expect(s.chunks[2]).toBe('\n');
  });

  it('writes plain lines otherwise', () => {
    const s = stream(false);
    const p = new ProgressReporter(s);
    p.update({ nfe: 1, total: 2, t: 999 });
    p.update({ nfe: 2, total: 2, t: 0.5 });
    p.finish();
    expect(s.chunks).toEqual([expect.stringMatching(/^sampling: 1\/2 NFE {2}t=999\.0 {2}\d+\.\d s\n$/), expect.stringMatching(/^sampling: 2\/2 NFE  t=0\.5/)]);
  });
});
