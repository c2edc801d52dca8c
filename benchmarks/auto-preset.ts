/**
 * Derives the table of `preset: 'auto'` (lib/presets/auto-table.json) in two stages.
 *
 * 1. Mixture (every schedule kind the mixture reference has a model for: discrete, linear,
 *    cosine; every NFE row): every candidate of lib/presets/auto-candidates.ts is run on the
 *    analytic Gaussian mixture (exact noise prediction, float64 reference executor) and ranked by
 *    the median per-sample RMS error against a fine RK4 solution; the best one, and the best
 *    candidate that makes only data predictions (used with thresholding), are recorded.
 * 2. UNet ('discrete' rows with NFE <= --unet-max-nfe): among the candidates that keep the
 *    mixture acceptance (mixture error <= the best official SciRE / DPM-Solver++ 2M/3M / UniPC
 *    configuration), the first --unet-top by mixture error are run on the bundled Fashion-MNIST
 *    UNet (native executor, CPU) and the one closest to a 500-NFE solution there is picked, up to
 *    the UNet's noise: within 10 % of the closest the better mixture error wins
 *    (benchmarks/support/auto-unet.ts). Both errors and the rule are written into the row
 *    (`unet`) and the setting into `unetStage`. Rows above --unet-max-nfe, and the linear and
 *    cosine rows (no real network of those schedules is bundled), keep the mixture's choice.
 *
 *   npx vite-node benchmarks/auto-preset.ts                    writes lib/presets/auto-table.json
 *   npx vite-node benchmarks/auto-preset.ts -- --out /tmp/t.json --batch 100 --mixture-only
 *   options: --batch --seed --rk4-steps (mixture)  --unet-max-nfe --unet-top --unet-batch
 *            --unet-seed --fine-nfe --cache DIR (stage 2; the cache reuses identical UNet solves)
 *
 * The tuning noise is x_T = randn([batch, 16], seed 1) on the mixture and randn([16, 1, 28, 28],
 * seed 2) on the UNet; benchmarks/accuracy.ts evaluates on seed 0 (mixture) and seeds 0, 1 (UNet),
 * so the table is not fitted to the samples it is judged on.
 */
import { writeFileSync } from 'fs';
import { join } from 'path';
import { autoCandidates } from '../lib/presets/auto-candidates';
import { AUTO_TABLE_NFES, type AutoTable } from '../lib/presets/auto';
import { autoProblem, measureRow } from './support/auto-measure';
import { measureRowWithUnet, unetFine, UNET_TIE } from './support/auto-unet';
import { loadFmnistProblem } from './support/fmnist-accuracy';
import { parseArgs } from './support/markdown';

function positiveInt(args: Map<string, string>, name: string, dflt: number): number {
  const v = args.has(name) ? Number(args.get(name)) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${name} must be a positive integer (got '${args.get(name)}')`);
  return v;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const setting = {
    batch: positiveInt(args, 'batch', 200),
    seed: Number(args.get('seed') ?? 1),
    rk4Steps: positiveInt(args, 'rk4-steps', 1000),
  };
  const unetSetting = {
    maxNfe: positiveInt(args, 'unet-max-nfe', 20),
    top: positiveInt(args, 'unet-top', 12),
    batch: positiveInt(args, 'unet-batch', 16),
    seed: Number(args.get('unet-seed') ?? 2),
    fineNfe: positiveInt(args, 'fine-nfe', 500),
  };
  if (unetSetting.fineNfe % 2 !== 0) throw new RangeError(`--fine-nfe must be even (it is checked against half as many; got ${unetSetting.fineNfe})`);
  const withUnet = !args.has('mixture-only');
  const out = args.get('out') ?? join(__dirname, '..', 'lib', 'presets', 'auto-table.json');
  const t0 = Date.now();
  const table: AutoTable = {
    format: 'scire-auto-table-v1',
    command: 'npx vite-node benchmarks/auto-preset.ts' + (withUnet ? '' : ' -- --mixture-only'),
    metric: 'median over the samples of the per-sample RMS error of x_0 vs RK4 (float64, exact GMM noise prediction)',
    model: 'test/fixtures/models/gmm_D16_<schedule>.json (golden seed-0 GMM, D = 16, K = 4)',
    noise: `randn([${setting.batch}, 16], seed ${setting.seed})`,
    batch: setting.batch,
    seed: setting.seed,
    rk4Steps: setting.rk4Steps,
    candidates: autoCandidates().length,
    schedules: {},
  };
  const unet = withUnet ? await loadFmnistProblem({ batch: unetSetting.batch, seed: unetSetting.seed, cacheDir: args.get('cache') }) : null;
  let fine = null;
  let forwardMs = 0;
  const tUnet0 = Date.now();
  let unetMs = 0;
  if (unet) {
    await unet.model.forward(unet.xT, unet.shape, 500);
    const f0 = performance.now();
    for (let i = 0; i < 3; i++) await unet.model.forward(unet.xT, unet.shape, 500);
    forwardMs = (performance.now() - f0) / 3;
    fine = await unetFine(unet, unetSetting.fineNfe);
    unetMs += Date.now() - tUnet0;
    console.log(`UNet fine solution: ${unetSetting.fineNfe} NFE, doubling check ${fine.doubling.toExponential(2)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  for (const kind of ['discrete', 'linear', 'cosine'] as const) {
    const problem = autoProblem(kind, setting);
    const rows = [];
    for (const nfe of AUTO_TABLE_NFES) {
      let entry;
      if (unet && fine && kind === 'discrete' && nfe <= unetSetting.maxNfe) {
        const tRow = Date.now();
        entry = await measureRowWithUnet(problem, unet, fine, nfe, unetSetting.top, (line) => console.log(line));
        unetMs += Date.now() - tRow;
        const u = entry.unet;
        console.log(
          `${kind} NFE ${nfe}: ${entry.best.name} (UNet pick of ${u?.measured.length} of ${u?.admitted} admitted; mixture best ${u?.mixtureBest.name}, bar ${u?.referenceBest.name} ${u?.referenceBest.error.toExponential(2)})`,
        );
      } else {
        entry = measureRow(problem, nfe);
        console.log(`${kind} NFE ${nfe}: ${entry.best.name} ${entry.best.error.toExponential(2)} | data: ${entry.bestData.name} ${entry.bestData.error.toExponential(2)}`);
      }
      rows.push(entry);
    }
    table.schedules[kind] = rows;
  }
  if (unet && fine) {
    table.unetStage = {
      schedules: ['discrete'],
      maxNfe: unetSetting.maxNfe,
      top: unetSetting.top,
      rule:
        'admitted: mixture error <= the best official SciRE / DPM-Solver++ 2M/3M / UniPC configuration on the mixture (benchmarks/accuracy.ts reference set); ' +
        'the first `top` admitted candidates by mixture error (distinct solvers) run on the UNet; best = among those within `tie` of the smallest UNet error, the best on the mixture (none admitted: the mixture best)',
      tie: UNET_TIE,
      model: 'models/fmnist_unet.pt (native executor, float32, cpu)',
      noise: `randn([${unet.shape.join(', ')}], seed ${unetSetting.seed})`,
      batch: unetSetting.batch,
      seed: unetSetting.seed,
      metric: 'median over the samples of the per-sample RMS error of x_0 vs the fine solution',
      fine: 'DPM-Solver++ 3M (logSNR steps)',
      fineNfe: unetSetting.fineNfe,
      fineDoubling: fine.doubling,
      forwardMs: Math.round(forwardMs * 10) / 10,
      seconds: Math.round(unetMs / 1000),
      cachedSolves: unet.cache?.hits ?? 0,
    };
    unet.model.dispose();
  }
  table.seconds = Math.round((Date.now() - t0) / 1000);
  writeFileSync(out, JSON.stringify(table, null, 1) + '\n');
  console.log(`wrote ${out} (${table.seconds} s${unet?.cache?.hits ? `; ${unet.cache.hits} UNet solves from the cache` : ''})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
