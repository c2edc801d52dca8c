/**
 * Sample quality on Fashion-MNIST per solver and NFE (issue 6): the Frechet distance of the
 * project classifier's penultimate features (benchmarks/fid.py, method documented there and
 * in docs/benchmarks.md) between generated samples and the 10 000 test images.
 *
 * Samples come from the public Sampler on the bundled UNet (models/fmnist_unet.pt, native
 * executor, CPU, float32), written as .npy with encodeNpy. Every configuration uses the same
 * starting noise (seed = chunk index for each chunk of --chunk samples), so differences
 * between rows are not noise-draw differences. Existing .npy files of the right size in
 * --work are reused (a long run can be resumed): they live in a folder named by the model
 * file's SHA-256 and the chunk size, so a retrained model or another chunking (other seeds)
 * never reuses samples of the old one.
 *
 *   npm run bench:fid                                   the grid below, 2000 samples each
 *   npx vite-node benchmarks/fid.ts -- --samples 2000 --nfes 6,8,10,12,20 --solvers "SciRE v1 3M (nsr),DDIM (logsnr)"
 *   npx vite-node benchmarks/fid.ts -- --tiny --out /tmp/x                       smoke setting
 * Options: --samples N  --chunk N  --nfes list  --solvers list (names of benchmarks/support/solver-grid.ts,
 *          or 'all' for the whole grid)  --work DIR (default /tmp/scire-fid)  --out DIR  --model PATH  --tiny
 *          --device cpu|cuda  --python EXE (default /usr/bin/python3)  --ref-stats FILE (fid.py --save-ref-stats)
 *          --root DIR (repository root: models/, benchmarks/fid.py; default the folder above this file)
 *          --seed-base S (chunk c starts from seed S + c; default 0)  --tag SUFFIX (writes fid<SUFFIX>.md/.svg/.json)
 * benchmarks/fid-gpu.sh runs the same script compiled to JS on a GPU machine.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { loadModel } from '../lib/model';
import { readModelCard } from '../lib/model-card';
import { Sampler } from '../lib/sampler';
import { fdOf, sampleFile, sampleSet, scoreFd, writeSamples } from './support/fd';
import { parseArgs, table } from './support/markdown';
import { fullGrid, gridByNames } from './support/solver-grid';
import { logLogChart } from './support/svg-chart';

const DEFAULT_SOLVERS = [
  'SciRE v1 3M (nsr)',
  'SciRE v1 2M (nsr)',
  'DPM-Solver++ 3M (logsnr)',
  'DDIM (logsnr)',
  'UniPC bh2 2M (logsnr)',
  'SciRE v1 2M + corrector (time-quadratic)',
  'auto (preset)',
];
const DEFAULT_NFES = [6, 8, 10, 12, 20];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const ROOT = args.get('root') ?? join(__dirname, '..');
  const device = args.get('device') ?? 'cpu';
  const python = args.get('python') ?? '/usr/bin/python3';
  const tiny = args.has('tiny');
  const outDir = args.get('out') ?? join(__dirname, 'results');
  const work = args.get('work') ?? (tiny ? join(outDir, 'fid-work') : '/tmp/scire-fid');
  const samples = Number(args.get('samples') ?? (tiny ? 8 : 2000));
  const chunk = Number(args.get('chunk') ?? (tiny ? 4 : 250));
  // Noise set: chunk c starts from seed seedBase + c (two runs with disjoint seed ranges measure the noise of FD).
  const seedBase = Number(args.get('seed-base') ?? 0);
  const tag = args.get('tag') ?? '';
  if (!/^[A-Za-z0-9_-]*$/.test(tag)) throw new RangeError(`--tag must be letters, digits, '-' or '_' (got '${tag}')`);
  const nfes = (args.get('nfes') ?? (tiny ? '5' : DEFAULT_NFES.join(','))).split(',').map(Number);
  const names = args.has('solvers') ? args.get('solvers')!.split(',') : tiny ? ['SciRE v1 3M (nsr)'] : DEFAULT_SOLVERS;
  const grid = names.length === 1 && names[0] === 'all' ? fullGrid() : gridByNames(names);
  const modelPath = args.get('model') ?? join(ROOT, 'models', 'fmnist_unet.pt');
  const card = readModelCard(modelPath);
  const set = sampleSet({ work, modelPath, samples, chunk, seedBase, shape: card.shape ?? [1, 28, 28] });
  const modelSha = set.modelSha256;
  mkdirSync(outDir, { recursive: true });

  const model = await loadModel(modelPath, { device });
  const t0 = Date.now();
  let generationMs = 0;
  let forwards = 0;
  const files: Array<{ name: string; nfe: number; file: string; actualNfe: number }> = [];
  for (const entry of grid) {
    for (const steps of nfes) {
      const sampler = new Sampler({ model, schedule: card.schedule, modelType: card.modelType, steps, ...entry.options });
      const w = await writeSamples(sampler, set, sampleFile(set, entry.name, steps));
      generationMs += w.ms;
      forwards += w.forwards;
      if (w.generated) process.stderr.write(`  fid: ${entry.name} NFE ${w.actualNfe}: ${samples} samples in ${(w.ms / 1000).toFixed(0)} s\n`);
      files.push({ name: entry.name, nfe: steps, file: w.file, actualNfe: w.actualNfe });
      // On CUDA the executor keeps a captured graph (and its memory pool) per plan and batch
      // bucket, within the cache's bounds: free this configuration's before the next one.
      model.clearCudaGraphs();
    }
  }
  model.dispose();

  const scores = scoreFd({
    root: ROOT,
    python,
    files: files.map((f) => f.file),
    jsonFile: join(set.dir, 'fid-scores.json'),
    refStats: args.get('ref-stats'),
    trainRef: samples,
    testLimit: tiny ? 500 : undefined,
    threads: args.get('py-threads'),
  });
  const trainReference = scores.train_reference ?? { n: 0, fd: NaN };
  const fd = (f: { file: string }) => fdOf(scores, f.file);
  const rows = grid.map((e) => {
    const mine = files.filter((f) => f.name === e.name);
    const best = nfes.map((_, i) => Math.min(...grid.map((g) => fd(files.filter((f) => f.name === g.name)[i]))));
    return [e.name, ...mine.map((f, i) => `${fd(f) === best[i] ? '**' : ''}${fd(f).toFixed(2)}${f.actualNfe !== f.nfe ? ` (${f.actualNfe})` : ''}${fd(f) === best[i] ? '**' : ''}`)];
  });
  const classifierMeta = existsSync(join(ROOT, 'models', 'fmnist_classifier.json'))
    ? (JSON.parse(readFileSync(join(ROOT, 'models', 'fmnist_classifier.json'), 'utf8')) as { test_accuracy: number })
    : null;
  const cmd = `npx vite-node benchmarks/fid.ts -- --samples ${samples} --nfes ${nfes.join(',')} --solvers "${names.join(',')}"${chunk !== 250 ? ` --chunk ${chunk}` : ''}${args.has('model') ? ` --model ${modelPath.replace(ROOT + '/', '')}` : ''}${device !== 'cpu' ? ` --device ${device}` : ''}${seedBase ? ` --seed-base ${seedBase}` : ''}${tag ? ` --tag ${tag}` : ''}`;
  const md = [
    '# Sample quality on Fashion-MNIST: Frechet distance of classifier features (FD, lower is better)',
    '',
    `Command: \`${cmd}\`${tiny ? ' --tiny' : ''}. Generation: ${(generationMs / 1000).toFixed(0)} s for ${forwards} batched evaluations of ${chunk} samples (this run; reused files not counted);`,
    `scoring ${scores.seconds} s; total ${((Date.now() - t0) / 1000).toFixed(0)} s.`,
    '',
    `Samples: ${samples} per configuration from ${modelPath.replace(ROOT + '/', '')} (SHA-256 ${modelSha.slice(0, 16)}...) through Sampler (native executor, ${device}, float32),`,
    `chunks of ${chunk} with seeds ${seedBase}, ${seedBase + 1}, ... (the same starting noise for every row). Features: penultimate layer (128-d) of`,
    `models/fmnist_classifier.pt${classifierMeta ? ` (test accuracy ${(classifierMeta.test_accuracy * 100).toFixed(2)} %)` : ''}; reference: ${scores.reference_images} test images.`,
    'FD = |mu_g - mu_r|^2 + tr(S_g + S_r - 2 (S_r^1/2 S_g S_r^1/2)^1/2) (benchmarks/fid.py).',
    `Floor: ${trainReference.n} real training images score FD = ${trainReference.fd.toFixed(2)} against the test set (finite-sample bias; a perfect`,
    'generator would score about this). NFE in parentheses: actual NFE where it differs. **Bold**: best in the column.',
    '',
    table(['solver', ...nfes.map((n) => `NFE ${n}`)], rows),
    '',
  ].join('\n');
  writeFileSync(join(outDir, `fid${tag}.md`), md);
  writeFileSync(
    join(outDir, `fid${tag}.svg`),
    logLogChart(
      grid.map((e) => ({
        label: e.name,
        points: files.filter((f) => f.name === e.name).map((f) => [f.actualNfe, fd(f)] as [number, number]),
        dashed: e.family !== 'SciRE' && e.family !== 'SciRE+' && e.family !== 'auto',
      })),
      { title: `Fashion-MNIST: Frechet distance of classifier features (${samples} samples)`, xLabel: 'NFE', yLabel: 'FD (lower is better)' },
    ),
  );
  writeFileSync(join(outDir, `fid${tag}.json`), JSON.stringify({ model: modelPath.replace(ROOT + '/', ''), modelSha256: modelSha, samples, chunk, seedBase, nfes, files: files.map((f) => ({ ...f, fd: fd(f) })), trainReference }, null, 1) + '\n');
  console.log(md);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
