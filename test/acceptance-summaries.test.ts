/**
 * The two scripts that turn issue 14's benchmark runs into verdicts, on small hand-made inputs
 * whose answers are known:
 *   - benchmarks/fmnist-acceptance.ts: auto / best reference per seed and pooled, for the median
 *     and the RMS of the per-sample errors (a flipped sample moves the RMS, not the median);
 *   - benchmarks/fid-summary.ts: auto / best baseline FD per noise set, and the paired and
 *     per-row noise verdicts;
 *   - benchmarks/support/stats.ts: the quantiles and the rank correlation they (and
 *     auto-candidates-fd.ts) use.
 */
import { execFileSync } from 'child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { describe, expect, test } from 'vitest';
import { median, quantile, rankCorrelation } from '../benchmarks/support/stats';

const ROOT = join(__dirname, '..');
const VITE_NODE = join(ROOT, 'node_modules', '.bin', 'vite-node');

function run(script: string, args: string[]): string {
  return execFileSync(VITE_NODE, [join(ROOT, 'benchmarks', script), '--', ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('benchmarks/fmnist-acceptance.ts', () => {
  test('per seed and pooled ratios of the median and the RMS, against the best acceptance reference only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scire-acceptance-'));
    // auto: three close samples and one flipped; DPM-Solver++ 2M: four at 2; DDIM (not a reference) better than both.
    const perSeed = [
      { auto: [1, 1, 1, 10], dpm: [2, 2, 2, 2], ddim: [0.1, 0.1, 0.1, 0.1] },
      { auto: [1, 1, 1, 10], dpm: [2, 2, 2, 2], ddim: [0.1, 0.1, 0.1, 0.1] },
    ];
    const rms = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
    perSeed.forEach((s, seed) => {
      const cell = (v: number[], preset?: string) => ({ nfe: 5, error: rms(v), perSample: v, ...(preset ? { preset } : {}) });
      const result = {
        rows: [
          { name: 'DDIM (logsnr)', family: 'DDIM', cells: [cell(s.ddim)] },
          { name: 'DPM-Solver++ 2M (logsnr)', family: 'DPM-Solver++', cells: [cell(s.dpm)] },
          { name: 'auto (preset)', family: 'auto', cells: [cell(s.auto, 'X')] },
        ],
        modelPath: 'models/fmnist_unet.pt',
        batch: 4,
        shape: [4, 1, 28, 28],
        seed,
        fineName: 'fine',
        fineNfe: 500,
        fineDoubling: 1e-3,
        crossName: 'cross',
        fineCross: 1e-4,
        forwardMs: 1,
        seconds: 1,
        device: 'cpu',
        cacheHits: 0,
      };
      writeFileSync(join(dir, `accuracy-fmnist-t-seed${seed}.json`), JSON.stringify(result));
    });
    run('fmnist-acceptance.ts', ['--dir', dir, '--tag', '-t', '--seeds', '0,1']);
    const out = JSON.parse(readFileSync(join(dir, 'accuracy-fmnist-t-acceptance.json'), 'utf8')) as {
      rows: Array<Record<string, { perSeed: Array<{ ratio: number; best: string }>; pooled: number; seedSpread: number; verdict: string }>>;
    };
    const row = out.rows[0];
    // median: 1 / 2; RMS: sqrt(103 / 4) / 2 = 2.537...; DDIM is not an acceptance reference
    for (const p of row.median.perSeed) {
      expect(p.ratio).toBeCloseTo(0.5, 12);
      expect(p.best).toBe('DPM-Solver++ 2M (logsnr)');
    }
    expect(row.median.pooled).toBeCloseTo(0.5, 12);
    expect(row.median.verdict).toBe('better');
    expect(row.rms.perSeed[0].ratio).toBeCloseTo(Math.sqrt(103 / 4) / 2, 12);
    expect(row.rms.pooled).toBeCloseTo(Math.sqrt(103 / 4) / 2, 12);
    expect(row.rms.seedSpread).toBe(0);
    // the bootstrap can draw the flipped sample 0-4 times; its upper half-width is far below 1.5
    expect(row.rms.verdict).toBe('worse');
  }, 60_000);
});

describe('benchmarks/fid-summary.ts', () => {
  test('ratios per noise set, and the paired and per-row verdicts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scire-fid-summary-'));
    const set = (seedBase: number, fds: Record<string, number>) => ({
      samples: 500,
      chunk: 250,
      seedBase,
      nfes: [8],
      files: Object.entries(fds).map(([name, fd]) => ({ name, nfe: 8, actualNfe: 8, fd, file: `${name}.npy` })),
      trainReference: { n: 500, fd: 3 },
    });
    // Every row moves by about 3 between the sets; auto is 1.5 and 1.4 above the best baseline.
    writeFileSync(join(dir, 'fid-a.json'), JSON.stringify(set(0, { 'auto (preset)': 16.5, 'DPM-Solver++ 3M (logsnr)': 15.0, 'UniPC bh2 2M (logsnr)': 17.0 })));
    writeFileSync(join(dir, 'fid-b.json'), JSON.stringify(set(1000, { 'auto (preset)': 19.5, 'DPM-Solver++ 3M (logsnr)': 18.1, 'UniPC bh2 2M (logsnr)': 20.2 })));
    run('fid-summary.ts', ['--dir', dir, '--runs', '-a,-b', '--out', '-s']);
    const md = readFileSync(join(dir, 'fid-s.md'), 'utf8');
    const cell = (label: string) => {
      const line = md.split('\n').find((l) => l.startsWith(`| ${label}`));
      expect(line, label).toBeDefined();
      return line!.split('|')[2].trim();
    };
    expect(cell('auto / best baseline (seeds 0–1)')).toBe('1.10');
    expect(cell('auto / best baseline (seeds 1000–1001)')).toBe((19.5 / 18.1).toFixed(2));
    expect(cell('noise: set-to-set spread of the ratio')).toBe((1.1 - 19.5 / 18.1).toFixed(2));
    expect(cell('noise: median set-to-set change of one row')).toBe('3.10');
    expect(cell('auto − best baseline')).toBe('1.45');
    // paired: 1.089 > 1 + 0.023 -> worse; per row: 1.45 < 3.1 -> within noise
    expect(cell('verdict, paired')).toBe('worse');
    expect(cell('verdict, per row')).toBe('within noise');
  }, 60_000);
});

describe('benchmarks/support/stats.ts', () => {
  test('quantile interpolates linearly, median of an even count is the mean of the middle two', () => {
    expect(quantile([0, 10, 20, 30, 40], 0.99)).toBeCloseTo(39.6, 12);
    expect(quantile(Float64Array.from([1, 2]), 0.5)).toBe(1.5);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  test("rankCorrelation is Spearman's rho: 1 for any increasing relation, -1 reversed, 1 - 6 sum d^2 / (n (n^2 - 1)) otherwise", () => {
    expect(rankCorrelation([1, 2, 3], [1, 8, 27])).toBeCloseTo(1, 12);
    expect(rankCorrelation([1, 2, 3, 4], [40, 30, 20, 10])).toBeCloseTo(-1, 12);
    // two neighbouring swaps: sum d^2 = 4, n = 5 -> 1 - 24 / 120 = 0.8
    expect(rankCorrelation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])).toBeCloseTo(0.8, 12);
    expect(() => rankCorrelation([1, 2], [1])).toThrow(RangeError);
  });
});
