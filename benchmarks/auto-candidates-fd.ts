/**
 * Can `preset: 'auto'` meet issue 14's FD item without giving up its mixture item? Per NFE, the FD
 * of every candidate the auto table's UNet stage measured at that row (all of them keep the mixture
 * acceptance: mixture error <= the best reference configuration's) next to the reference
 * configurations of the FD comparison and the ODE solution itself (DPM-Solver++ 3M at 50 NFE), on
 * one noise set. If the best admissible candidate scores well above the best reference here, no
 * table built from these candidates can satisfy both items at that NFE. A second FD, against the
 * ODE solution's own samples instead of the test images, tells a solver that follows the ODE's
 * distribution from one whose error happens to move the samples towards the data.
 *
 * Every row also gets, from the same samples: its mixture error relative to the bar of the mixture
 * acceptance (the tuning mixture of lib/presets/auto-table.json), its per-sample error against the
 * ODE solution's samples (median and RMS over the samples of each sample's RMS error: the UNet
 * accuracy statistics, on 500 samples), and the spread and 99th percentile of its pixel values
 * (the test images' are printed in the header), which shows what kind of error an FD rewards.
 *
 *   npx vite-node benchmarks/auto-candidates-fd.ts -- --nfes 8,12 --seed-base 2000 --tag -issue14
 *     writes benchmarks/results/auto-candidates-fd<TAG>.md and .json
 *   npx vite-node benchmarks/auto-candidates-fd.ts -- --all --nfes 8 --seed-base 2000 --tag -issue14-all
 *     every candidate of lib/presets/auto-candidates.ts, admitted or not (about 30 s each at 8 NFE)
 * Options: --samples N (500)  --chunk N (250)  --seed-base S (2000: the noise set no FD table uses)
 *          --work DIR (/tmp/scire-fid; samples are reused like benchmarks/fid.ts's)  --out DIR
 *          --all (every candidate, not only the admitted ones)
 *          --tiny (smoke setting: 8 samples, NFE 8, two candidates, one reference, the ODE at 10 NFE)
 */
import { readFileSync, mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { gunzipSync } from 'zlib';
import { loadModel } from '../lib/model';
import { readModelCard } from '../lib/model-card';
import { autoTable } from '../lib/presets/auto';
import { autoCandidates, type AutoCandidate } from '../lib/presets/auto-candidates';
import type { CompileOptions } from '../lib/options';
import { Sampler } from '../lib/sampler';
import { autoProblem, candidateError, referenceBest } from './support/auto-measure';
import { fdOf, readSamples, sampleFile, sampleSet, scoreFd, writeSamples } from './support/fd';
import { perSampleRms } from './support/fmnist-accuracy';
import { fixed, parseArgs, sci, table } from './support/markdown';
import { gridByNames } from './support/solver-grid';
import { median, quantile, rankCorrelation } from './support/stats';

const REFERENCES = ['DPM-Solver++ 2M (logsnr)', 'DPM-Solver++ 3M (logsnr)', 'UniPC bh2 2M (logsnr)', 'SciRE v1 3M (nsr)', 'SciRE v1 2M (nsr)'];
const ODE = { name: 'DPM-Solver++ 3M (logsnr)', nfe: 50 };
const TEST_IMAGES = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz';

interface Entry {
  name: string;
  kind: 'admissible candidate' | 'candidate' | 'reference' | 'ODE solution';
  nfe: number;
  /** What the row runs, as a candidate of the mixture stage (for its mixture error). */
  candidate: AutoCandidate;
  /** Median UNet error recorded by the table's UNet stage (seed 2), admitted candidates only. */
  unetError?: number;
  picked?: boolean;
  file?: string;
  fd?: number;
  /** FD against the ODE solution's samples (same noise): how far the solver moves the distribution. */
  fdToOde?: number;
  /** Mixture error / the bar of the mixture acceptance at this NFE (<= 1: admissible). */
  mixtureRatio?: number;
  /** Median and RMS over the samples of each sample's RMS error against the ODE solution's sample. */
  medianError?: number;
  rmsError?: number;
  /** Standard deviation and 99th percentile of the pixel values. */
  pixelStd?: number;
  pixelP99?: number;
}

/** Standard deviation and 99th percentile of a set of pixel values. */
function pixelStats(values: ArrayLike<number>): { std: number; p99: number } {
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    sq += values[i] * values[i];
  }
  const mean = sum / values.length;
  const sorted = Float64Array.from(values).sort();
  return { std: Math.sqrt(sq / values.length - mean * mean), p99: quantile(sorted, 0.99) };
}

/** The Fashion-MNIST test images as values in [-1, 1] (as benchmarks/fid.py reads them). */
function testImageValues(): Float32Array {
  const raw = gunzipSync(readFileSync(TEST_IMAGES));
  if (raw.readUInt32BE(0) !== 2051) throw new Error(`${TEST_IMAGES}: not an IDX image file`);
  return Float32Array.from(raw.subarray(16), (b) => b / 127.5 - 1);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const root = join(__dirname, '..');
  const outDir = args.get('out') ?? join(__dirname, 'results');
  const tag = args.get('tag') ?? '';
  const tiny = args.has('tiny');
  const all = args.has('all');
  mkdirSync(outDir, { recursive: true });
  if (!/^[A-Za-z0-9_-]*$/.test(tag)) throw new RangeError(`--tag must be letters, digits, '-' or '_' (got '${tag}')`);
  const nfes = (args.get('nfes') ?? (tiny ? '8' : '8,12')).split(',').map(Number);
  const auto = autoTable();
  const rows = auto.schedules.discrete ?? [];
  for (const n of nfes) {
    if (!rows.some((r) => r.nfe === n && r.unet)) throw new RangeError(`--nfes: ${n} is not a discrete table row with a UNet stage (${rows.filter((r) => r.unet).map((r) => r.nfe).join(', ')})`);
  }
  const modelPath = join(root, 'models', 'fmnist_unet.pt');
  const card = readModelCard(modelPath);
  const set = sampleSet({
    work: args.get('work') ?? (tiny ? join(outDir, 'fid-work') : '/tmp/scire-fid'),
    modelPath,
    samples: Number(args.get('samples') ?? (tiny ? 8 : 500)),
    chunk: Number(args.get('chunk') ?? (tiny ? 4 : 250)),
    seedBase: Number(args.get('seed-base') ?? 2000),
    shape: card.shape ?? [1, 28, 28],
  });
  const candidates = autoCandidates();
  const asCandidate = (name: string, config: AutoCandidate['config']): AutoCandidate => ({ name, config, stepsOffset: 0, dataPrediction: false });
  const entries: Entry[] = [];
  for (const nfe of nfes) {
    const row = rows.find((r) => r.nfe === nfe)!;
    const measured = row.unet!.measured;
    const known = (name: string): AutoCandidate => {
      const c = candidates.find((k) => k.name === name);
      if (!c) throw new Error(`the table names an unknown candidate '${name}'`);
      return c;
    };
    const chosen = all ? candidates : measured.map((m) => known(m.name));
    for (const c of tiny ? chosen.slice(0, 2) : chosen) {
      const m = measured.find((k) => k.name === c.name);
      entries.push({
        name: `auto-candidate ${c.name}`,
        kind: m ? 'admissible candidate' : 'candidate',
        nfe,
        candidate: c,
        unetError: m?.unetError,
        picked: c.name === row.best.name,
      });
    }
    for (const g of gridByNames(tiny ? REFERENCES.slice(1, 2) : REFERENCES)) entries.push({ name: g.name, kind: 'reference', nfe, candidate: asCandidate(g.name, g.options) });
  }
  const odeNfe = tiny ? 10 : ODE.nfe;
  entries.push({ name: ODE.name, kind: 'ODE solution', nfe: odeNfe, candidate: asCandidate(ODE.name, gridByNames([ODE.name])[0].options) });

  const model = await loadModel(modelPath, {});
  const t0 = Date.now();
  for (const e of entries) {
    const options: Omit<CompileOptions, 'schedule'> = { steps: e.nfe + e.candidate.stepsOffset, ...e.candidate.config };
    const w = await writeSamples(new Sampler({ model, schedule: card.schedule, modelType: card.modelType, ...options }), set, sampleFile(set, e.name, e.nfe));
    if (w.actualNfe !== e.nfe) throw new Error(`${e.name}: NFE ${w.actualNfe} != ${e.nfe}`);
    if (w.generated) process.stderr.write(`  ${e.name} NFE ${e.nfe}: ${set.samples} samples in ${(w.ms / 1000).toFixed(0)} s\n`);
    e.file = w.file;
  }
  model.dispose();
  const scores = scoreFd({ root, files: entries.map((e) => e.file!), jsonFile: join(set.dir, `auto-candidates-fd-${set.seedBase}.json`), testLimit: tiny ? 500 : undefined });
  for (const e of entries) e.fd = fdOf(scores, e.file!);
  const ode = entries.find((e) => e.kind === 'ODE solution')!;
  const toOde = scoreFd({ root, files: entries.map((e) => e.file!), jsonFile: join(set.dir, `auto-candidates-fd-${set.seedBase}-vs-ode.json`), refNpy: ode.file });
  for (const e of entries) e.fdToOde = fdOf(toOde, e.file!);

  // Sample-level statistics against the ODE solution's samples (same noise, so sample i of every
  // file solves the same ODE).
  const odeSamples = readSamples(ode.file!);
  for (const e of entries) {
    const x = readSamples(e.file!);
    const errors = perSampleRms(x, odeSamples, set.samples);
    e.medianError = median(errors);
    e.rmsError = Math.sqrt(errors.reduce((a, v) => a + v * v, 0) / errors.length);
    const p = pixelStats(x);
    e.pixelStd = p.std;
    e.pixelP99 = p.p99;
  }
  const testStats = pixelStats(testImageValues());

  // The mixture stage's view of every row: its error on the table's tuning mixture over the bar.
  const mixture = autoProblem('discrete', { batch: tiny ? 20 : auto.batch, seed: auto.seed, rk4Steps: tiny ? 100 : auto.rk4Steps });
  for (const nfe of nfes) {
    const bar = referenceBest(mixture, nfe).error;
    for (const e of entries.filter((k) => k.nfe === nfe)) e.mixtureRatio = candidateError(mixture, e.candidate, nfe) / bar;
  }

  const sections = nfes.map((nfe) => {
    const mine = entries.filter((e) => e.nfe === nfe);
    const admissible = mine.filter((e) => e.kind === 'admissible candidate');
    const bestAdmissible = Math.min(...admissible.map((e) => e.fd!));
    const bestReference = mine.filter((e) => e.kind === 'reference').reduce((a, e) => (e.fd! < a.fd! ? e : a));
    const lines = [
      `## NFE ${nfe}`,
      '',
      table(
        ['configuration', 'kind', 'mixture error / bar', 'UNet error (table, seed 2)', 'median error vs ODE', 'RMS error vs ODE', 'FD', 'FD − ODE solution', "FD to the ODE solution's samples", 'pixel std', 'pixel p99'],
        mine
          .slice()
          .sort((a, b) => a.fd! - b.fd!)
          .map((e) => [
            `${e.name.replace(/^auto-candidate /, '')}${e.picked ? ' (auto)' : ''}`,
            e.kind,
            Number.isFinite(e.mixtureRatio!) ? fixed(e.mixtureRatio!, 2) : 'cannot run',
            e.unetError === undefined ? '' : sci(e.unetError),
            sci(e.medianError!),
            sci(e.rmsError!),
            fixed(e.fd!, 2),
            fixed(e.fd! - ode.fd!, 2),
            fixed(e.fdToOde!, 2),
            fixed(e.pixelStd!, 3),
            fixed(e.pixelP99!, 3),
          ]),
      ),
      '',
      `Best admissible candidate / best reference (${bestReference.name}): ${fixed(bestAdmissible / bestReference.fd!, 2)}.`,
    ];
    if (all) {
      // Which rows are at or below the best reference on the mixture, on the median error and on FD at once?
      const bestMedian = Math.min(...mine.filter((e) => e.kind === 'reference').map((e) => e.medianError!));
      const everywhere = mine.filter((e) => e.kind !== 'ODE solution' && e.mixtureRatio! <= 1 && e.medianError! <= bestMedian && e.fd! <= bestReference.fd!);
      const betterFd = mine.filter((e) => e.kind === 'candidate' || e.kind === 'admissible candidate').filter((e) => e.fd! <= bestReference.fd! && e.candidate.name !== bestReference.name);
      // What FD ranks by: over the distinct configurations that converge (median error vs ODE < 0.15;
      // the diverging SciRE v2 consistent rows would dominate any ranking).
      const sane = mine.filter((e) => e.kind !== 'reference' && e.kind !== 'ODE solution' && e.medianError! < 0.15);
      const rho = (f: (e: Entry) => number, g: (e: Entry) => number): string => fixed(rankCorrelation(sane.map(f), sane.map(g)), 2);
      lines.push(
        '',
        `Rank correlations over the ${sane.length} candidates with a median error below 0.15 (Spearman): FD vs pixel std ${rho((e) => e.fd!, (e) => e.pixelStd!)}, ` +
          `FD vs pixel p99 ${rho((e) => e.fd!, (e) => e.pixelP99!)}, FD vs median error ${rho((e) => e.fd!, (e) => e.medianError!)}, ` +
          `FD vs mixture error ${rho((e) => e.fd!, (e) => e.mixtureRatio!)}; FD to the ODE solution's samples vs median error ${rho((e) => e.fdToOde!, (e) => e.medianError!)}.`,
      );
      lines.push(
        '',
        `Rows at or below the best reference on all three (mixture error <= bar, median error vs ODE <= ${sci(bestMedian)}, FD <= ${fixed(bestReference.fd!, 2)}): ${everywhere.length ? everywhere.map((e) => e.name.replace(/^auto-candidate /, '')).join(', ') : 'none'}.`,
        `Rows with an FD at or below the best reference's: ${betterFd.length ? betterFd.map((e) => `${e.name.replace(/^auto-candidate /, '')} (mixture ${fixed(e.mixtureRatio!, 2)}, median error ${sci(e.medianError!)})`).join('; ') : 'none'}.`,
      );
    }
    lines.push('');
    return lines.join('\n');
  });
  const cmd = `npx vite-node benchmarks/auto-candidates-fd.ts --${tiny ? ' --tiny' : ''}${all ? ' --all' : ''} --nfes ${nfes.join(',')}${set.samples !== 500 ? ` --samples ${set.samples}` : ''}${set.chunk !== 250 ? ` --chunk ${set.chunk}` : ''} --seed-base ${set.seedBase}${tag ? ` --tag ${tag}` : ''}`;
  const md = [
    `# FD of the auto table's ${all ? 'candidates (all of them)' : 'admissible candidates'} vs the references (issue 14)`,
    '',
    `Command: \`${cmd}\` (${((Date.now() - t0) / 1000).toFixed(0)} s; sample files of earlier runs reused).`,
    '',
    `${set.samples} samples per configuration from models/fmnist_unet.pt (SHA-256 ${set.modelSha256.slice(0, 16)}...), chunk seeds ${set.seedBase}, ${set.seedBase + 1}, ... (the`,
    'same noise for every row; a set no FD table uses), FD of models/fmnist_classifier.pt features vs the 10 000 test images',
    "(benchmarks/fid.py). Admissible candidates: the ones the table's UNet stage measured at that row (lib/presets/auto-table.json,",
    "`unet.measured`), i.e. every distinct candidate whose mixture error is at most the best reference configuration's; \"(auto)\"",
    `marks the table's pick.${all ? ' Candidates: the others (not admitted by the mixture, or beyond the UNet stage\'s top).' : ''} ODE solution: ${ode.name} at ${ode.nfe} NFE on the same noise, FD ${fixed(ode.fd!, 2)}.`,
    '',
    `Columns: mixture error / bar: median error on the table's tuning mixture (discrete schedule, ${mixture.shape[0]} samples, seed ${auto.seed}) over`,
    "the best reference configuration's (the mixture acceptance's bar; <= 1 admissible). UNet error (table): the UNet stage's median",
    "error (16 samples, seed 2, vs 500 NFE). Median / RMS error vs ODE: over these samples, of each sample's RMS error against the",
    "ODE solution's sample from the same noise. FD to the ODE solution's samples: fid.py --ref-npy, how far the solver moves the",
    'distribution of the samples, whether or not towards the data. Pixel std / p99: spread and 99th percentile of the pixel',
    `values (before fid.py clamps them to [-1, 1]); the test images have std ${fixed(testStats.std, 3)} and p99 ${fixed(testStats.p99, 3)}, the ODE solution ${fixed(ode.pixelStd!, 3)} and ${fixed(ode.pixelP99!, 3)}.`,
    '',
    ...sections,
  ].join('\n');
  writeFileSync(join(outDir, `auto-candidates-fd${tag}.md`), md);
  writeFileSync(
    join(outDir, `auto-candidates-fd${tag}.json`),
    JSON.stringify(
      {
        modelSha256: set.modelSha256,
        samples: set.samples,
        chunk: set.chunk,
        seedBase: set.seedBase,
        testImages: testStats,
        entries: entries.map(({ file, candidate, ...e }) => ({ ...e, options: { steps: e.nfe + candidate.stepsOffset, ...candidate.config }, file: file?.split('/').pop() })),
      },
      null,
      1,
    ) + '\n',
  );
  console.log(md);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
