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
 *   npx vite-node benchmarks/auto-candidates-fd.ts -- --nfes 8,12 --seed-base 2000 --tag -issue14
 *     writes benchmarks/results/auto-candidates-fd<TAG>.md and .json
 * Options: --samples N (500)  --chunk N (250)  --seed-base S (2000: the noise set no FD table uses)
 *          --work DIR (/tmp/scire-fid; samples are reused like benchmarks/fid.ts's)  --out DIR
 *          --tiny (smoke setting: 8 samples, NFE 8, two candidates, one reference, the ODE at 10 NFE)
 */
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { loadModel } from '../lib/model';
import { readModelCard } from '../lib/model-card';
import { autoTable } from '../lib/presets/auto';
import { autoCandidates } from '../lib/presets/auto-candidates';
import type { CompileOptions } from '../lib/options';
import { Sampler } from '../lib/sampler';
import { fdOf, sampleFile, sampleSet, scoreFd, writeSamples } from './support/fd';
import { fixed, parseArgs, sci, table } from './support/markdown';
import { gridByNames } from './support/solver-grid';

const REFERENCES = ['DPM-Solver++ 2M (logsnr)', 'DPM-Solver++ 3M (logsnr)', 'UniPC bh2 2M (logsnr)', 'SciRE v1 3M (nsr)', 'SciRE v1 2M (nsr)'];
const ODE = { name: 'DPM-Solver++ 3M (logsnr)', nfe: 50 };

interface Entry {
  name: string;
  kind: 'admissible candidate' | 'reference' | 'ODE solution';
  nfe: number;
  options: Omit<CompileOptions, 'schedule'>;
  /** Median UNet error recorded by the table's UNet stage (seed 2), candidates only. */
  unetError?: number;
  picked?: boolean;
  file?: string;
  fd?: number;
  /** FD against the ODE solution's samples (same noise): how far the solver moves the distribution. */
  fdToOde?: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const root = join(__dirname, '..');
  const outDir = args.get('out') ?? join(__dirname, 'results');
  const tag = args.get('tag') ?? '';
  const tiny = args.has('tiny');
  mkdirSync(outDir, { recursive: true });
  if (!/^[A-Za-z0-9_-]*$/.test(tag)) throw new RangeError(`--tag must be letters, digits, '-' or '_' (got '${tag}')`);
  const nfes = (args.get('nfes') ?? (tiny ? '8' : '8,12')).split(',').map(Number);
  const rows = autoTable().schedules.discrete ?? [];
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
  const entries: Entry[] = [];
  for (const nfe of nfes) {
    const row = rows.find((r) => r.nfe === nfe)!;
    for (const m of tiny ? row.unet!.measured.slice(0, 2) : row.unet!.measured) {
      const c = candidates.find((k) => k.name === m.name);
      if (!c) throw new Error(`the table names an unknown candidate '${m.name}'`);
      entries.push({ name: `auto-candidate ${c.name}`, kind: 'admissible candidate', nfe, options: { steps: nfe + c.stepsOffset, ...c.config }, unetError: m.unetError, picked: c.name === row.best.name });
    }
    for (const g of gridByNames(tiny ? REFERENCES.slice(1, 2) : REFERENCES)) entries.push({ name: g.name, kind: 'reference', nfe, options: { steps: nfe, ...g.options } });
  }
  const odeNfe = tiny ? 10 : ODE.nfe;
  entries.push({ name: ODE.name, kind: 'ODE solution', nfe: odeNfe, options: { steps: odeNfe, ...gridByNames([ODE.name])[0].options } });

  const model = await loadModel(modelPath, {});
  const t0 = Date.now();
  for (const e of entries) {
    const w = await writeSamples(new Sampler({ model, schedule: card.schedule, modelType: card.modelType, ...e.options }), set, sampleFile(set, e.name, e.nfe));
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

  const sections = nfes.map((nfe) => {
    const mine = entries.filter((e) => e.nfe === nfe);
    const bestAdmissible = Math.min(...mine.filter((e) => e.kind === 'admissible candidate').map((e) => e.fd!));
    const bestReference = mine.filter((e) => e.kind === 'reference').reduce((a, e) => (e.fd! < a.fd! ? e : a));
    return [
      `## NFE ${nfe}`,
      '',
      table(
        ['configuration', 'kind', 'UNet error (table, seed 2)', 'FD', 'FD − ODE solution', "FD to the ODE solution's samples"],
        mine
          .slice()
          .sort((a, b) => a.fd! - b.fd!)
          .map((e) => [
            `${e.name.replace(/^auto-candidate /, '')}${e.picked ? ' (auto)' : ''}`,
            e.kind,
            e.unetError === undefined ? '' : sci(e.unetError),
            fixed(e.fd!, 2),
            fixed(e.fd! - ode.fd!, 2),
            fixed(e.fdToOde!, 2),
          ]),
      ),
      '',
      `Best admissible candidate / best reference (${bestReference.name}): ${fixed(bestAdmissible / bestReference.fd!, 2)}.`,
      '',
    ].join('\n');
  });
  const cmd = `npx vite-node benchmarks/auto-candidates-fd.ts --${tiny ? ' --tiny' : ''} --nfes ${nfes.join(',')}${set.samples !== 500 ? ` --samples ${set.samples}` : ''}${set.chunk !== 250 ? ` --chunk ${set.chunk}` : ''} --seed-base ${set.seedBase}${tag ? ` --tag ${tag}` : ''}`;
  const md = [
    "# FD of the auto table's admissible candidates vs the references (issue 14)",
    '',
    `Command: \`${cmd}\` (${((Date.now() - t0) / 1000).toFixed(0)} s; sample files of earlier runs reused).`,
    '',
    `${set.samples} samples per configuration from models/fmnist_unet.pt (SHA-256 ${set.modelSha256.slice(0, 16)}...), chunk seeds ${set.seedBase}, ${set.seedBase + 1}, ... (the`,
    'same noise for every row; a set no FD table uses), FD of models/fmnist_classifier.pt features vs the 10 000 test images',
    '(benchmarks/fid.py). Admissible candidates: the ones the table\'s UNet stage measured at that row (lib/presets/auto-table.json,',
    '`unet.measured`), i.e. every distinct candidate whose mixture error is at most the best reference configuration\'s; "(auto)"',
    `marks the table's pick. ODE solution: ${ode.name} at ${ode.nfe} NFE on the same noise, FD ${fixed(ode.fd!, 2)}. The last`,
    "column scores each configuration against the ODE solution's samples instead of the test images (fid.py --ref-npy): how",
    'far its error moves the distribution of the samples, whether or not that is towards the data.',
    '',
    ...sections,
  ].join('\n');
  writeFileSync(join(outDir, `auto-candidates-fd${tag}.md`), md);
  writeFileSync(
    join(outDir, `auto-candidates-fd${tag}.json`),
    JSON.stringify({ modelSha256: set.modelSha256, samples: set.samples, chunk: set.chunk, seedBase: set.seedBase, entries: entries.map(({ file, ...e }) => ({ ...e, file: file?.split('/').pop() })) }, null, 1) + '\n',
  );
  console.log(md);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
