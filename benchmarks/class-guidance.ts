/**
 * Classifier-free guidance on the class-conditional Fashion-MNIST model (issue 16): for each
 * guidance scale, K samples of every class from the public Sampler (native executor, CPU,
 * float32, cond/uncond from classGuidance), scored by the project classifier
 * (models/fmnist_classifier.pt, as benchmarks/fid.ts uses it) in benchmarks/class_accuracy.py:
 * the share of samples labelled as the requested class, per class, and optionally (--fd) the
 * Frechet distance of each class's samples to that class's test images.
 *
 * Every scale uses the same starting noise (seed --seed, one batch of 10 K samples, class-major),
 * so rows differ only by the guidance.
 *
 *   npx vite-node benchmarks/class-guidance.ts -- [--model models/fmnist_cond_unet.pt] [--per-class 20]
 *       [--scales 0,1,2,3,5] [--steps 12] [--fd] [--seed 0] [--work DIR] [--out DIR] [--python EXE]
 *   npx vite-node benchmarks/class-guidance.ts -- --tiny --out /tmp/x       smoke setting (2 per class, 3 steps)
 */
import { execFileSync } from 'child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'fs';
import { basename, join, relative } from 'path';
import { classGuidance } from '../lib/class-cond';
import { encodeNpy } from '../lib/image-io';
import { loadModel } from '../lib/model';
import { readModelCard } from '../lib/model-card';
import { Sampler } from '../lib/sampler';
import { parseArgs, table } from './support/markdown';

interface FileScore {
  n: number;
  nonfinite: number;
  accuracy: number;
  accuracy_per_class: number[];
  confusion: number[][];
  fd_per_class?: number[];
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const ROOT = args.get('root') ?? join(__dirname, '..');
  const tiny = args.has('tiny');
  const modelPath = args.get('model') ?? join(ROOT, 'models', 'fmnist_cond_unet.pt');
  const perClass = Number(args.get('per-class') ?? (tiny ? 2 : 20));
  const scales = (args.get('scales') ?? (tiny ? '0,3' : '0,1,2,3,5')).split(',').map(Number);
  const steps = Number(args.get('steps') ?? (tiny ? 3 : 12));
  const seed = Number(args.get('seed') ?? 0);
  const fd = args.has('fd');
  const python = args.get('python') ?? '/usr/bin/python3';
  const outDir = args.get('out') ?? join(__dirname, 'results');
  const work = args.get('work') ?? (tiny ? join(outDir, 'class-guidance-work') : '/tmp/scire-class-guidance');
  if (!(Number.isInteger(perClass) && perClass >= (fd ? 2 : 1))) throw new RangeError(`--per-class must be an integer >= ${fd ? 2 : 1}, got ${perClass}`);
  if (scales.some((g) => !Number.isFinite(g))) throw new RangeError(`--scales must be finite numbers, got '${args.get('scales')}'`);
  mkdirSync(work, { recursive: true });
  mkdirSync(outDir, { recursive: true });

  const card = readModelCard(modelPath);
  if (!card.conditioning) throw new TypeError(`--model ${modelPath}: not a class-conditional model (no "conditioning" in its card)`);
  const classes = card.conditioning.classes;
  const shape = card.shape ?? [1, 28, 28];
  const labels = classes.flatMap((_, k) => new Array<number>(perClass).fill(k));
  const model = await loadModel(modelPath);
  const sampler = new Sampler({ model, schedule: card.schedule, modelType: card.modelType, steps, preset: 'auto' });
  const files: Array<{ g: number; file: string; nfe: number; seconds: number }> = [];
  let solverName = '';
  for (const g of scales) {
    const t0 = Date.now();
    const out = await sampler.sample({ shape: [labels.length, ...shape], seed, ...classGuidance(card, labels, g) });
    const seconds = (Date.now() - t0) / 1000;
    solverName = out.solver.presetRow?.name ?? '';
    const file = join(work, `guidance_${g}.npy`);
    writeFileSync(file, encodeNpy(out.data, out.shape));
    files.push({ g, file, nfe: out.nfe, seconds });
    process.stderr.write(`  class-guidance: g ${g}: ${labels.length} samples, NFE ${out.nfe}, ${seconds.toFixed(1)} s\n`);
  }
  model.dispose();

  const jsonFile = join(work, 'class-accuracy.json');
  execFileSync(
    python,
    [join(ROOT, 'benchmarks', 'class_accuracy.py'), '--json', jsonFile, '--per-class', String(perClass), ...(fd ? ['--fd-per-class'] : []),
      '--classifier', join(ROOT, 'models', 'fmnist_classifier.pt'), ...files.map((f) => f.file)],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const scores = JSON.parse(readFileSync(jsonFile, 'utf8')) as {
    files: Record<string, FileScore>;
    train_reference_fd_per_class?: number[];
    test_images_per_class?: number;
    test_images: { n: number; accuracy: number; accuracy_per_class: number[] };
    seconds: number;
  };
  const score = (f: { file: string }) => scores.files[basename(f.file)];
  const pct = (v: number) => `${(100 * v).toFixed(1)}`;
  const short = classes.map((c) => c.split('/')[0]);
  const cmd = `npx vite-node benchmarks/class-guidance.ts -- --model ${relative(ROOT, modelPath)} --per-class ${perClass} --scales ${scales.join(',')} --steps ${steps}${fd ? ' --fd' : ''}${seed ? ` --seed ${seed}` : ''}`;
  const md = [
    '# Classifier-free guidance on the class-conditional Fashion-MNIST model',
    '',
    `Command: \`${cmd}\`${tiny ? ' --tiny' : ''}. Model: \`${relative(ROOT, modelPath)}\` (${card.name ?? basename(modelPath)}); ` +
      `${perClass} samples per class (${labels.length} per scale, the same starting noise, seed ${seed}), ` +
      `${files[0]?.nfe} NFE (${solverName ? `preset auto: ${solverName}` : 'preset auto'}), CPU float32. ` +
      'Labels: models/fmnist_classifier.pt (argmax of the logits; its own test accuracy is 88.0 %), ' +
      'benchmarks/class_accuracy.py.',
    '',
    '## Share of samples labelled as the requested class (%)',
    '',
    table(
      ['guidance', 'all', ...short, 'sampling s'],
      [
        ...files.map((f) => [String(f.g), `**${pct(score(f).accuracy)}**`, ...score(f).accuracy_per_class.map(pct), f.seconds.toFixed(1)]),
        [`real test images (${scores.test_images.n})`, pct(scores.test_images.accuracy), ...scores.test_images.accuracy_per_class.map(pct), ''],
      ],
    ),
    '',
    'Guidance 0 samples the unconditional model (the null class), 1 the conditional model alone; larger scales push ' +
      'samples towards what the network considers typical of the class, at the cost of variety' +
      `${fd ? ' (see the FD per class)' : ''}. The last row is the classifier on the real test images: its own ` +
      'recall per class (shirts are its weak class), for scale.',
  ];
  if (fd && scores.train_reference_fd_per_class) {
    const ref = scores.train_reference_fd_per_class;
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    md.push(
      '',
      `## FD per class (samples of a class vs its ${scores.test_images_per_class} test images; lower is better)`,
      '',
      `With ${perClass} samples per class the FD has a large positive bias: the "train images" row is ${perClass} ` +
        'training images of each class, the value a perfect generator would get. Compare rows, not absolute values.',
      '',
      table(
        ['guidance', 'mean', ...short],
        [
          ...files.map((f) => [String(f.g), mean(score(f).fd_per_class!).toFixed(1), ...score(f).fd_per_class!.map((v) => v.toFixed(1))]),
          ['train images', mean(ref).toFixed(1), ...ref.map((v) => v.toFixed(1))],
        ],
      ),
    );
  }
  const nonfinite = files.filter((f) => score(f).nonfinite > 0);
  if (nonfinite.length) md.push('', `Non-finite values: ${nonfinite.map((f) => `g ${f.g}: ${score(f).nonfinite}`).join(', ')}.`);
  md.push('');
  writeFileSync(join(outDir, 'class-guidance.md'), md.join('\n'));
  writeFileSync(
    join(outDir, 'class-guidance.json'),
    JSON.stringify({ command: cmd, model: relative(ROOT, modelPath), perClass, steps, seed, solver: solverName, classes,
      rows: files.map((f) => ({ guidance: f.g, nfe: f.nfe, seconds: f.seconds, ...score(f) })),
      testImages: scores.test_images,
      trainReferenceFdPerClass: scores.train_reference_fd_per_class }, null, 1) + '\n',
  );
  process.stdout.write(md.join('\n'));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
