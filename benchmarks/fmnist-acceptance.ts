/**
 * Issue 14's UNet acceptance from two (or more) seeds of benchmarks/accuracy.ts --part fmnist:
 * per NFE, auto's error over the best reference configuration's (official SciRE, DPM-Solver++
 * 2M/3M, UniPC: report.ts isAcceptanceReference), per seed and pooled, and the noise of that ratio,
 * for two statistics of the per-sample errors: the median (the mixture acceptance's metric, and the
 * verdict's) and the RMS over all pixels (the accuracy tables' error).
 *
 *   npx vite-node benchmarks/fmnist-acceptance.ts -- --tag -issue14 --seeds 0,1
 *     reads  benchmarks/results/accuracy-fmnist-issue14-seed<S>.json
 *     writes benchmarks/results/accuracy-fmnist-issue14-acceptance.md
 *
 * Noise, two ways: (a) the seed-to-seed spread of the ratio (max - min over the seeds);
 * (b) a bootstrap over the pooled samples (every seed's batch): the samples are resampled with
 * replacement (2000 times, fixed generator) and the pooled ratio recomputed with the best
 * reference re-chosen each time; its 16th-84th percentile range is the ±1 sigma interval.
 * Verdict per NFE: pooled ratio <= 1 ('better'), or <= 1 + noise (the larger of the seed spread and
 * the bootstrap's upper half-width: 'within noise'), else 'worse'.
 */
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { fixed, parseArgs, sci, table } from './support/markdown';
import type { FmnistAccuracyResult, FmnistRow } from './support/fmnist-accuracy';
import { isAcceptanceReference } from './support/report';
import { median, quantile } from './support/stats';
// mulberry32, the project's small seeded generator (test/support/prng.cjs).
const { prng } = createRequire(__filename)('../test/support/prng.cjs') as { prng: (seed: number) => () => number };

/** Pooled RMS of a set of per-sample RMS errors (equal pixel counts): sqrt(mean of squares). */
function pooledRms(perSample: number[], idx?: number[]): number {
  const ix = idx ?? perSample.map((_, i) => i);
  let s = 0;
  for (const i of ix) s += perSample[i] ** 2;
  return Math.sqrt(s / ix.length);
}

/** Median of a set of per-sample errors (or of the subset idx, with repeats). */
function medianOf(perSample: number[], idx?: number[]): number {
  return median(idx ? idx.map((i) => perSample[i]) : perSample);
}

/** The two statistics of the per-sample errors the acceptance reports (median first: the verdict's). */
const METRICS = [
  { key: 'median', label: 'median', of: medianOf },
  { key: 'rms', label: 'RMS', of: pooledRms },
];

function main(): void {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const dir = args.get('dir') ?? join(__dirname, 'results');
  const tag = args.get('tag') ?? '-issue14';
  const seeds = (args.get('seeds') ?? '0,1').split(',').map(Number);
  if (seeds.length < 2 || seeds.some((s) => !Number.isInteger(s))) throw new RangeError(`--seeds must list at least two integer seeds (got '${args.get('seeds')}')`);
  const runs = seeds.map((s) => JSON.parse(readFileSync(join(dir, `accuracy-fmnist${tag}-seed${s}.json`), 'utf8')) as FmnistAccuracyResult);
  const nfes = runs[0].rows[0].cells.map((c) => c.nfe);
  const names = runs[0].rows.map((r) => r.name);
  for (const r of runs) {
    if (JSON.stringify(r.rows.map((x) => x.name)) !== JSON.stringify(names)) throw new Error('the runs have different solver grids');
    if (r.rows.some((x) => x.cells.some((c) => !Array.isArray(c.perSample)))) throw new Error('a run has no per-sample errors (re-run benchmarks/accuracy.ts)');
  }
  const refRows = (rows: FmnistRow[]) => rows.filter((r) => isAcceptanceReference(r));
  const autoRow = (rows: FmnistRow[]) => {
    const a = rows.find((r) => r.family === 'auto');
    if (!a) throw new Error("the runs have no 'auto (preset)' row");
    return a;
  };

  const perSeed: string[][] = [];
  const pooledRows: string[][] = [];
  const summary: Array<Record<string, unknown>> = [];
  nfes.forEach((nfe, i) => {
    const autoName = autoRow(runs[0].rows).name;
    const cellsOf = (rows: FmnistRow[], name: string) => (rows.find((x) => x.name === name) as FmnistRow).cells[i].perSample;
    const seedCells: string[] = [];
    const pooledCells: string[] = [];
    const record: Record<string, unknown> = { nfe, preset: autoRow(runs[0].rows).cells[i].preset };
    for (const metric of METRICS) {
      const ratios = runs.map((r) => {
        const best = refRows(r.rows).reduce((a, b) => (metric.of(cellsOf(r.rows, b.name)) < metric.of(cellsOf(r.rows, a.name)) ? b : a));
        const bestError = metric.of(cellsOf(r.rows, best.name));
        const autoError = metric.of(cellsOf(r.rows, autoName));
        return { autoError, bestError, best: best.name, ratio: autoError / bestError };
      });
      seedCells.push(...ratios.map((r) => `${sci(r.autoError)} / ${sci(r.bestError)} (${r.best}) = ${fixed(r.ratio, 2)}`));
      // pooled over the seeds: one sample set
      const pool = (name: string) => runs.flatMap((r) => cellsOf(r.rows, name));
      const autoPs = pool(autoName);
      const refPs = refRows(runs[0].rows).map((r) => ({ name: r.name, ps: pool(r.name) }));
      const ratioOn = (idx?: number[]) => metric.of(autoPs, idx) / Math.min(...refPs.map((r) => metric.of(r.ps, idx)));
      const bestRef = refPs.reduce((a, b) => (metric.of(b.ps) < metric.of(a.ps) ? b : a));
      const pooled = ratioOn();
      const next = prng(1234 + nfe); // the bootstrap's resampling: seeded, reproducible
      const boots: number[] = [];
      for (let k = 0; k < 2000; k++) {
        const idx = autoPs.map(() => Math.floor(next() * autoPs.length));
        boots.push(ratioOn(idx));
      }
      boots.sort((x, y) => x - y);
      const lo = quantile(boots, 0.16);
      const hi = quantile(boots, 0.84);
      const seedSpread = Math.max(...ratios.map((r) => r.ratio)) - Math.min(...ratios.map((r) => r.ratio));
      const noise = Math.max(seedSpread, hi - pooled);
      const verdict = pooled <= 1 ? 'better' : pooled <= 1 + noise ? 'within noise' : 'worse';
      pooledCells.push(fixed(pooled, 2), bestRef.name, fixed(seedSpread, 2), `${fixed(lo, 2)}–${fixed(hi, 2)}`, verdict);
      record[metric.key] = { perSeed: ratios, pooled, bestPooled: bestRef.name, seedSpread, bootstrap68: [lo, hi], verdict };
    }
    perSeed.push([String(nfe), autoRow(runs[0].rows).cells[i].preset ?? '', ...seedCells]);
    pooledRows.push([String(nfe), ...pooledCells]);
    summary.push(record);
  });

  const r0 = runs[0];
  const md = [
    `# Issue 14 acceptance on the Fashion-MNIST UNet: auto vs the best reference (seeds ${seeds.join(', ')})`,
    '',
    `Command: \`npx vite-node benchmarks/fmnist-acceptance.ts -- --tag ${tag} --seeds ${seeds.join(',')}\`, from`,
    '',
    ...runs.map((r, k) => `- [accuracy-fmnist${tag}-seed${seeds[k]}.md](accuracy-fmnist${tag}-seed${seeds[k]}.md) (batch ${r.batch}, x_T seed ${r.seed}, fine solution ${r.fineName} at ${r.fineNfe} NFE: doubling check ${sci(r.fineDoubling)}, cross check ${sci(r.fineCross)})`),
    '',
    `Per-sample error: RMS over one sample's pixels of x_0 vs the fine solution (${r0.modelPath}, native executor, float32, ${r0.device}).`,
    'Two statistics of a configuration\'s per-sample errors:',
    '',
    '- **median** (the acceptance metric, the same as the mixture acceptance\'s: benchmarks/accuracy.ts, median per-sample',
    '  error). A few samples of a batch sit near a boundary between two outcomes (two garments): a solver\'s error moves',
    '  them to the other one, with a per-sample error of 0.2–0.5 against a typical 0.01–0.05, and which few do so differs',
    '  from solver to solver. The median measures how closely a solver follows the ODE on the typical sample;',
    '- **RMS over all pixels** (the error of the accuracy tables), which those few samples dominate at 16 per seed.',
    '',
    'Reference configurations: every official SciRE configuration, DPM-Solver++ 2M/3M and UniPC row of the runs; the best',
    'of them is taken per NFE and statistic (and per seed, or on the pooled samples). ratio = auto / best reference (below 1:',
    'auto is better).',
    '',
    '## Per seed',
    '',
    table(
      ['NFE', 'auto runs', ...METRICS.flatMap((m) => seeds.map((s) => `${m.label}, seed ${s}: auto / best reference = ratio`))],
      perSeed,
    ),
    '',
    '## Pooled over the seeds, and the noise',
    '',
    `Pooled: the ${runs.reduce((a, r) => a + r.batch, 0)} samples of all seeds as one set. Seed spread: max - min of the per-seed`,
    'ratios. Bootstrap: 16th–84th percentile of the pooled ratio over 2000 resamples of the samples (best reference re-chosen',
    "each time). Verdict: better (pooled ratio <= 1), within noise (<= 1 + the larger of the seed spread and the bootstrap's",
    'upper half-width), worse.',
    '',
    table(
      ['NFE', ...METRICS.flatMap((m) => [`${m.label}: pooled ratio`, 'best reference', 'seed spread', 'bootstrap ±1σ', 'verdict'])],
      pooledRows,
    ),
    '',
  ].join('\n');
  const out = join(dir, `accuracy-fmnist${tag}-acceptance.md`);
  writeFileSync(out, md);
  writeFileSync(out.replace(/\.md$/, '.json'), JSON.stringify({ seeds, rows: summary }, null, 1) + '\n');
  console.log(md);
}

main();
