/**
 * Unified accuracy benchmark (issues 6, 14): error per number of network evaluations for SciRE
 * v1/v2 (multistep and singlestep_fixed, order 2 and 3, NSR and time-uniform steps; with the
 * consistent RDE and the corrector), DPM-Solver++ 2M/3M, DDIM, UniPC and preset 'auto',
 * against a high-accuracy solution of the same ODE from the same noise.
 *
 *   npm run bench:accuracy                       both parts, full settings, writes benchmarks/results/
 *   npx vite-node benchmarks/accuracy.ts -- --part gmm
 *   npx vite-node benchmarks/accuracy.ts -- --part fmnist --batch 4
 *   npx vite-node benchmarks/accuracy.ts -- --tiny --out /tmp/x      smoke setting (seconds)
 *
 * (a) gmm: analytic Gaussian mixture, float64 reference executor (benchmarks/support/gmm-accuracy.ts).
 * (b) fmnist: the bundled Fashion-MNIST UNet through the native executor on the CPU
 *     (benchmarks/support/fmnist-accuracy.ts).
 * Options: --part gmm|fmnist|all  --out DIR  --tiny  --batch N  --seed S  --model PATH
 *          fmnist only: --device cpu|cuda  --grid reduced|full  --fine-nfe N  --tag SUFFIX (output file names)
 *                       --cache DIR (reuse x_0 of identical plans and noise from earlier runs: benchmarks/support/solve-cache.ts)
 */
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { runFmnistAccuracy } from './support/fmnist-accuracy';
import { runGmmAccuracy } from './support/gmm-accuracy';
import { fixed, parseArgs, sci, table } from './support/markdown';
import { errorChart, errorSections, errorTable, scireVsBaselines } from './support/report';
import { NFE_GRID, fmnistGrid, fullGrid, gridByNames } from './support/solver-grid';

const CHART_ROWS = [
  'DDIM (logsnr)',
  'DPM-Solver++ 2M (logsnr)',
  'DPM-Solver++ 3M (logsnr)',
  'SciRE v1 2M (nsr)',
  'SciRE v1 3M (nsr)',
  'SciRE v2 3M (nsr)',
  'SciRE v2 2S-fixed (nsr)',
  'SciRE v1 3M (time-uniform)',
  'SciRE v1 3M consistent (nsr)',
  'SciRE v1 2M + corrector (time-quadratic)',
  'UniPC bh1 3M (logsnr)',
  'UniPC bh2 2M (logsnr)',
  'auto (preset)',
];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const part = args.get('part') ?? 'all';
  if (!['gmm', 'fmnist', 'all'].includes(part)) throw new RangeError(`--part must be gmm, fmnist or all (got '${part}')`);
  const tiny = args.has('tiny');
  const outDir = args.get('out') ?? join(__dirname, 'results');
  const seed = Number(args.get('seed') ?? 0);
  mkdirSync(outDir, { recursive: true });

  if (part === 'gmm' || part === 'all') {
    const nfes = tiny ? [5, 10] : NFE_GRID;
    const grid = tiny ? gridByNames(['DDIM (logsnr)', 'DPM-Solver++ 3M (logsnr)', 'SciRE v1 3M (nsr)']) : fullGrid();
    const batch = Number(args.get('batch') ?? (tiny ? 16 : 1000));
    const rk4Steps = tiny ? 200 : 1000;
    const t0 = Date.now();
    const res = runGmmAccuracy({ grid, nfes, batch, seed, rk4Steps });
    const seconds = (Date.now() - t0) / 1000;
    const llRows = res.rows.map((r) => [r.name, ...r.cells.map((c) => fixed(c.logLik, 3))]);
    const md = [
      '# Accuracy on the Gaussian mixture (exact score)',
      '',
      `Command: \`npx vite-node benchmarks/accuracy.ts -- --part gmm${tiny ? ' --tiny' : ''}${!tiny && batch !== 1000 ? ` --batch ${batch}` : ''}${seed !== 0 ? ` --seed ${seed}` : ''}\` (${seconds.toFixed(0)} s).`,
      '',
      `Model: the golden reference's seed-0 GMM (D = 16, K = 4; test/fixtures/models/gmm_D16_discrete.json), exact noise`,
      `prediction, DDPM discrete schedule (linear betas 1e-4..0.02, N = 1000), tStart = 1, tEnd = 1e-3, float64`,
      `(compilePlan + executePlanReference). x_T = randn([${res.batch}, 16], seed ${res.seed}).`,
      `Fine solution: RK4 in lambda, ${res.rk4Steps} steps (doubling check: max |x(${res.rk4Steps / 2}) - x(${res.rk4Steps})| = ${sci(res.doublingMaxAbs)}).`,
      'NFE = steps, except singlestep_fixed (K = floor(steps/order) steps of `order` evaluations): its actual',
      'NFE is in parentheses where it differs. SciRE rows use the official (faithful) coefficients unless',
      'marked "consistent". **Bold**: best in the column.',
      '',
      '## RMS error of x_0 vs the fine solution',
      '',
      ...errorSections(res.rows, nfes),
      '',
      '## Median over the samples of the per-sample RMS error',
      '',
      'The RMS above is dominated by the few x_T whose trajectories pass near a boundary between mixture',
      'components (there a small error early on changes the component reached). The median is the typical',
      'sample\'s error.',
      '',
      errorTable(res.rows.map((r) => ({ ...r, cells: r.cells.map((c) => ({ nfe: c.nfe, error: c.medianError })) })), nfes),
      '',
      scireVsBaselines(res.rows.map((r) => ({ ...r, cells: r.cells.map((c) => ({ nfe: c.nfe, error: c.medianError })) })), nfes),
      '',
      '## Mean log-likelihood of the samples under the true mixture p0 (higher is better)',
      '',
      `Reference values: the fine ODE solution scores ${fixed(res.fineLogLik.mean, 3)} ± ${fixed(res.fineLogLik.stdErr, 3)} (what an exact`,
      `solver reaches; the ODE stops at tEnd = 1e-3), exact samples of p0 score ${fixed(res.exactLogLik.mean, 3)} ± ${fixed(res.exactLogLik.stdErr, 3)}`,
      '(± one standard error of the mean over the batch). The solver rows share the fine solution\'s x_T, so',
      'their differences from it are much more precise than the standard error suggests.',
      '',
      'Caution: the log-likelihood rewards samples that sit too close to the component means, so a solver',
      'that over-contracts the samples (a coarse first-order step does) can score *above* the fine solution.',
      'Read a row by its distance to the fine solution\'s value, not by its size.',
      '',
      table(['solver', ...nfes.map((n) => `NFE ${n}`)], [
        ['fine ODE solution (RK4)', ...nfes.map(() => fixed(res.fineLogLik.mean, 3))],
        ['exact samples of p0', ...nfes.map(() => fixed(res.exactLogLik.mean, 3))],
        ...llRows,
      ]),
      '',
    ].join('\n');
    writeFileSync(join(outDir, 'accuracy-gmm.md'), md);
    const chartRows = res.rows.filter((r) => CHART_ROWS.includes(r.name));
    const medianRows = (chartRows.length ? chartRows : res.rows).map((r) => ({ ...r, cells: r.cells.map((c) => ({ nfe: c.nfe, error: c.medianError })) }));
    writeFileSync(join(outDir, 'accuracy-gmm.svg'), errorChart(medianRows, 'Gaussian mixture: median per-sample error vs fine ODE solution', 'median per-sample RMS error of x_0'));
    writeFileSync(join(outDir, 'accuracy-gmm-rms.svg'), errorChart(chartRows.length ? chartRows : res.rows, 'Gaussian mixture: RMS error vs fine ODE solution', 'RMS error of x_0 (all samples)'));
    writeFileSync(join(outDir, 'accuracy-gmm.json'), JSON.stringify(res, null, 1) + '\n');
    console.log(md);
  }

  if (part === 'fmnist' || part === 'all') {
    const nfes = tiny ? [5, 8] : NFE_GRID;
    const grid = tiny ? gridByNames(['DDIM (logsnr)', 'SciRE v1 3M (nsr)']) : args.get('grid') === 'full' ? fullGrid() : fmnistGrid();
    const device = args.get('device') ?? 'cpu';
    const tag = args.get('tag') ?? '';
    const res = await runFmnistAccuracy({
      grid,
      nfes,
      batch: Number(args.get('batch') ?? (tiny ? 2 : 8)),
      seed,
      fineNfe: tiny ? 40 : Number(args.get('fine-nfe') ?? 250),
      modelPath: args.get('model'),
      tiny,
      device,
      cacheDir: args.get('cache'),
    });
    const cmdFlags = tiny
      ? ' --tiny'
      : ` --batch ${res.batch} --fine-nfe ${res.fineNfe}${seed !== 0 ? ` --seed ${seed}` : ''}${args.has('grid') ? ` --grid ${args.get('grid')}` : ''}${device !== 'cpu' ? ` --device ${device}` : ''}${tag ? ` --tag ${tag}` : ''}`;
    const cacheNote = res.cacheHits ? `; ${res.cacheHits} of the solves taken from the --cache of an earlier run with the same plans and noise` : '';
    const md = [
      `# Accuracy on the bundled Fashion-MNIST UNet (native executor, ${device})`,
      '',
      `Command: \`npx vite-node benchmarks/accuracy.ts -- --part fmnist${cmdFlags}\` (${res.seconds.toFixed(0)} s${cacheNote}; forward of batch ${res.batch}: ${res.forwardMs.toFixed(1)} ms).`,
      '',
      `Model: ${res.modelPath} (eps-prediction, DDPM discrete linear betas, N = 1000), float32 on ${device} through`,
      `model.execute (the native plan executor). x_T = randn([${res.shape.join(', ')}], seed ${res.seed}).`,
      `Fine solution: ${res.fineName} at ${res.fineNfe} NFE; convergence check by doubling: RMS(x(${res.fineNfe}) - x(${res.fineNfe / 2})) = ${sci(res.fineDoubling)},`,
      `and against ${res.crossName} at ${res.fineNfe} NFE: RMS difference ${sci(res.fineCross)}. Errors below these`,
      'levels are not resolved. Error: RMS over all pixels (data range [-1, 1]). NFE in parentheses: actual NFE',
      'of singlestep_fixed where it differs from the target. **Bold**: best in the column.',
      '',
      ...errorSections(res.rows, nfes),
      '',
    ].join('\n');
    writeFileSync(join(outDir, `accuracy-fmnist${tag}.md`), md);
    const chartRows = res.rows.filter((r) => CHART_ROWS.includes(r.name));
    writeFileSync(join(outDir, `accuracy-fmnist${tag}.svg`), errorChart(chartRows.length ? chartRows : res.rows, 'Fashion-MNIST UNet: RMS error vs fine ODE solution', 'RMS error of x_0 (pixels in [-1, 1])'));
    writeFileSync(join(outDir, `accuracy-fmnist${tag}.json`), JSON.stringify(res, null, 1) + '\n');
    console.log(md);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
