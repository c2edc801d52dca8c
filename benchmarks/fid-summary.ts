/**
 * Issue 14's FD comparison from two (or more) runs of benchmarks/fid.ts on disjoint noise sets
 * (--seed-base): per NFE, auto's FD over the best baseline's FD in each set, and the set-to-set
 * spread of that ratio as the noise. Optional reference runs (a converged solver at high NFE, the
 * same noise sets) give the FD of the ODE solution itself, the value an exact solver would score.
 *
 *   npx vite-node benchmarks/fid-summary.ts -- --runs -cpu-issue14-seeds0,-cpu-issue14-seeds1000 \
 *       --refs -cpu-issue14-seeds0-ref50,-cpu-issue14-seeds1000-ref50 --out -cpu-issue14
 *     reads benchmarks/results/fid<RUN>.json (and fid<REF>.json), writes benchmarks/results/fid<OUT>.md
 */
import { readFileSync, writeFileSync } from 'fs';
import { basename, join } from 'path';
import { fixed, parseArgs, table } from './support/markdown';
import { median } from './support/stats';

interface FidRun {
  samples: number;
  chunk: number;
  seedBase?: number;
  nfes: number[];
  files: Array<{ name: string; nfe: number; actualNfe: number; fd: number; file: string }>;
  trainReference: { n: number; fd: number };
}

function main(): void {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const dir = args.get('dir') ?? join(__dirname, 'results');
  const runTags = (args.get('runs') ?? '').split(',').filter(Boolean);
  const refTags = (args.get('refs') ?? '').split(',').filter(Boolean);
  const outTag = args.get('out') ?? '-summary';
  if (runTags.length < 2) throw new RangeError(`--runs must name at least two fid.ts tags (got '${args.get('runs') ?? ''}')`);
  if (refTags.length && refTags.length !== runTags.length) throw new RangeError('--refs must name one reference run per run, in the same order');
  const read = (tag: string) => JSON.parse(readFileSync(join(dir, `fid${tag}.json`), 'utf8')) as FidRun;
  const runs = runTags.map(read);
  const refs = refTags.map(read);
  const nfes = runs[0].nfes;
  const names = [...new Set(runs[0].files.map((f) => f.name))];
  if (!names.includes('auto (preset)')) throw new Error("the runs have no 'auto (preset)' row");
  const baselines = names.filter((n) => n !== 'auto (preset)');
  const fd = (r: FidRun, name: string, nfe: number) => {
    const f = r.files.find((x) => x.name === name && x.nfe === nfe);
    if (!f) throw new Error(`no ${name} at NFE ${nfe} in a run`);
    return f.fd;
  };
  const setLabel = (r: FidRun) => `seeds ${r.seedBase ?? 0}–${(r.seedBase ?? 0) + r.samples / r.chunk - 1}`;

  const fdRows = names.flatMap((name) => runs.map((r) => [name, setLabel(r), ...nfes.map((n) => fixed(fd(r, name, n), 2))]));
  const refRows = refs.map((r, k) => {
    const f = r.files[0];
    return [`${f.name} at ${f.actualNfe} NFE (the ODE solution, for reference)`, setLabel(runs[k]), ...nfes.map(() => fixed(f.fd, 2))];
  });
  const ratio = (r: FidRun, n: number) => fd(r, 'auto (preset)', n) / Math.min(...baselines.map((b) => fd(r, b, n)));
  const ratioRows = runs.map((r) => [`auto / best baseline (${setLabel(r)})`, ...nfes.map((n) => fixed(ratio(r, n), 2))]);
  const spread = nfes.map((n) => Math.max(...runs.map((r) => ratio(r, n))) - Math.min(...runs.map((r) => ratio(r, n))));
  const mean = nfes.map((n) => runs.reduce((a, r) => a + ratio(r, n), 0) / runs.length);
  const rowChanges = (n: number) => names.map((name) => Math.max(...runs.map((r) => fd(r, name, n))) - Math.min(...runs.map((r) => fd(r, name, n))));
  const sameRowSpread = nfes.map((n) => Math.max(...rowChanges(n)));
  const typicalRowChange = nfes.map((n) => median(rowChanges(n)));
  const difference = nfes.map((n) => runs.reduce((a, r) => a + fd(r, 'auto (preset)', n) - Math.min(...baselines.map((b) => fd(r, b, n))), 0) / runs.length);
  // Two readings of "worse than the best baseline by more than the noise" (docs/benchmarks.md §3):
  // paired (every row of a set has the same noise, so compare the ratio with its own set-to-set
  // spread) and per row (compare the FD difference with how much one configuration's FD moves
  // between noise sets, i.e. what two independent evaluations of the same solver would disagree by).
  const verdict = (worse: boolean, within: boolean) => (!worse ? 'better or equal' : within ? 'within noise' : 'worse');
  const pairedVerdict = nfes.map((_, i) => verdict(mean[i] > 1, mean[i] <= 1 + spread[i]));
  const rowVerdict = nfes.map((_, i) => verdict(difference[i] > 0, difference[i] <= typicalRowChange[i]));
  const md = [
    `# FD on the CPU (issue 14): auto vs ${baselines.join(', ')}`,
    '',
    `Command: \`npx vite-node benchmarks/fid-summary.ts -- --runs ${runTags.join(',')}${refTags.length ? ` --refs ${refTags.join(',')}` : ''} --out ${outTag}\`, from`,
    '',
    ...[...runTags, ...refTags].map((t) => `- [fid${t}.md](fid${t}.md)`),
    '',
    `Each run: ${runs[0].samples} samples per configuration (chunks of ${runs[0].chunk}) through the Sampler on the bundled UNet (CPU, float32),`,
    'features of models/fmnist_classifier.pt, FD against the 10 000 test images (benchmarks/fid.py). The noise sets are disjoint',
    `(chunk seeds), so the spread between them is the noise of the measurement. Floor: ${runs[0].trainReference.n} real training images score`,
    `FD = ${fixed(runs[0].trainReference.fd, 2)}. FD measures network + solver: a lower FD is not a more accurate ODE solution (docs/benchmarks.md §3).`,
    '',
    table(['solver', 'noise set', ...nfes.map((n) => `NFE ${n}`)], [...fdRows, ...refRows]),
    '',
    table(['', ...nfes.map((n) => `NFE ${n}`)], [
      ...ratioRows,
      ['mean of the sets', ...mean.map((v) => fixed(v, 2))],
      ['noise: set-to-set spread of the ratio', ...spread.map((v) => fixed(v, 2))],
      ['noise: largest set-to-set change of one row\'s FD', ...sameRowSpread.map((v) => fixed(v, 2))],
      ['noise: median set-to-set change of one row\'s FD', ...typicalRowChange.map((v) => fixed(v, 2))],
      ['auto − best baseline, FD units (mean of the sets)', ...difference.map((v) => fixed(v, 2))],
      ['verdict, paired: mean ratio vs 1 + its set-to-set spread', ...pairedVerdict],
      ['verdict, per row: difference vs the median change of one row', ...rowVerdict],
    ]),
    '',
    'Verdicts: "better or equal" (auto at or below the best baseline), "within noise", "worse" (beyond it). Paired: all rows of a',
    'set share the noise, so the ratio auto / best baseline is compared with its own set-to-set spread. Per row: the FD',
    "difference is compared with the median over the rows of one configuration's set-to-set change, i.e. how much two",
    'independent evaluations of one solver disagree.',
    '',
  ].join('\n');
  const out = join(dir, `fid${outTag}.md`);
  writeFileSync(out, md);
  console.log(`wrote ${basename(out)}\n\n${md}`);
}

main();
