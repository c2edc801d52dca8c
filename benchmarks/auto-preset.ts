/**
 * Derives the table of `preset: 'auto'` (lib/presets/auto-table.json): for every schedule kind
 * the mixture reference has a model for (discrete, linear, cosine) and every NFE of the grid,
 * every candidate of lib/presets/auto-candidates.ts is run on the analytic Gaussian mixture
 * (exact noise prediction, float64 reference executor) and the one with the smallest median
 * per-sample RMS error against a fine RK4 solution is recorded, together with the best
 * candidate that makes only data predictions (used when thresholding is on).
 *
 *   npx vite-node benchmarks/auto-preset.ts                    writes lib/presets/auto-table.json
 *   npx vite-node benchmarks/auto-preset.ts -- --out /tmp/t.json --batch 100
 *
 * The tuning noise is x_T = randn([batch, 16], seed 1); benchmarks/accuracy.ts evaluates on
 * seed 0, so the table is not fitted to the samples it is judged on.
 */
import { writeFileSync } from 'fs';
import { join } from 'path';
import { autoCandidates } from '../lib/presets/auto-candidates';
import { AUTO_TABLE_NFES, type AutoTable } from '../lib/presets/auto';
import { autoProblem, measureRow } from './support/auto-measure';
import { parseArgs } from './support/markdown';

function main(): void {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const setting = {
    batch: Number(args.get('batch') ?? 200),
    seed: Number(args.get('seed') ?? 1),
    rk4Steps: Number(args.get('rk4-steps') ?? 1000),
  };
  const out = args.get('out') ?? join(__dirname, '..', 'lib', 'presets', 'auto-table.json');
  const t0 = Date.now();
  const table: AutoTable = {
    format: 'scire-auto-table-v1',
    command: 'npx vite-node benchmarks/auto-preset.ts',
    metric: 'median over the samples of the per-sample RMS error of x_0 vs RK4 (float64, exact GMM noise prediction)',
    model: 'test/fixtures/models/gmm_D16_<schedule>.json (golden seed-0 GMM, D = 16, K = 4)',
    noise: `randn([${setting.batch}, 16], seed ${setting.seed})`,
    batch: setting.batch,
    seed: setting.seed,
    rk4Steps: setting.rk4Steps,
    candidates: autoCandidates().length,
    schedules: {},
  };
  for (const kind of ['discrete', 'linear', 'cosine'] as const) {
    const problem = autoProblem(kind, setting);
    table.schedules[kind] = AUTO_TABLE_NFES.map((nfe) => {
      const entry = measureRow(problem, nfe);
      console.log(`${kind} NFE ${nfe}: ${entry.best.name} ${entry.best.error.toExponential(2)} | data: ${entry.bestData.name} ${entry.bestData.error.toExponential(2)}`);
      return entry;
    });
  }
  table.seconds = Math.round((Date.now() - t0) / 1000);
  writeFileSync(out, JSON.stringify(table, null, 1) + '\n');
  console.log(`wrote ${out} (${table.seconds} s)`);
}

main();
