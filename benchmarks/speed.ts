/**
 * Speed benchmark (issue 6), every ratio measured in one run on one machine:
 *
 * 1. Solver overhead per step: the same plan run against a network that does almost nothing
 *    (benchmarks/models/null_eps.pt, forward = 0.1 x; made by benchmarks/make_null_model.py)
 *    by the native executor (model.execute: whole loop in C++, fused kernels) and stepped
 *    from JS op by op with plain LibTorch ops (model.torchOpsStepper of native/testing/gpu_bench.cc). Time per NFE.
 * 2. End to end on the bundled Fashion-MNIST UNet on the CPU: samples/s of Sampler.sample
 *    (native executor) and of the JS op-by-op loop, with the executor's split into network
 *    and solver time.
 * 3. Fused lincomb kernel vs the same update as LibTorch ops: benchmarks/kernels.mjs (the
 *    executor issue's kernel benchmark) when dist/ is built, else binding.benchLincomb directly.
 *
 *   npm run bench:speed                      writes benchmarks/results/speed.md
 *   npx vite-node benchmarks/speed.ts -- --tiny --out /tmp/x       smoke setting
 * Options: --out DIR  --tiny  --reps N  --model PATH (default models/fmnist_unet.pt)
 */
import { execFileSync } from 'child_process';
import { existsSync, mkdirSync, writeFileSync } from 'fs';
import { cpus, loadavg } from 'os';
import { join } from 'path';
import { compilePlan } from '../lib/compile';
import { loadModel } from '../lib/model';
import { readModelCard } from '../lib/model-card';
import { nativeBinding, nativeBindingPath } from '../lib/native';
import type { CompileOptions } from '../lib/options';
import { randn } from '../lib/randn';
import { Sampler } from '../lib/sampler';
import { NoiseSchedule } from '../lib/schedule';
import { fixed, parseArgs, table } from './support/markdown';
import { stepPlanFromJs } from './support/op-stepper';

const ROOT = join(__dirname, '..');
// model.torchOpsStepper and benchLincomb are entries of the testing addon (native/testing/):
// load it as the addon (a superset of scire.node) unless SCIRE_NATIVE_PATH names one.
process.env.SCIRE_NATIVE_PATH ??= join(ROOT, 'build', 'Release', 'scire_testing.node');
const NULL_MODEL = join(__dirname, 'models', 'null_eps.pt');

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeMs(reps: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  return (await timeInterleaved(reps, [fn]))[0];
}

/**
 * Median milliseconds of each function, run in turns (a b a b ...) after one warm-up call
 * each, so that both see the same machine load: the ratios are what this benchmark reports.
 */
async function timeInterleaved(reps: number, fns: Array<() => unknown | Promise<unknown>>): Promise<number[]> {
  for (const fn of fns) await fn();
  const ms: number[][] = fns.map(() => []);
  for (let i = 0; i < reps; i++) {
    for (let k = 0; k < fns.length; k++) {
      const t0 = performance.now();
      await fns[k]();
      ms[k].push(performance.now() - t0);
    }
  }
  return ms.map(median);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const PLANS: Array<[string, Omit<CompileOptions, 'schedule' | 'steps'>]> = [
  ['SciRE v1 3M (nsr)', { solver: 'scire', algorithm: 'v1', order: 3, skip: 'nsr' }],
  ['DPM-Solver++ 3M (logsnr)', { solver: 'dpmpp', order: 3, skip: 'logsnr' }],
  ['DDIM (logsnr)', { solver: 'ddim', skip: 'logsnr' }],
];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const tiny = args.has('tiny');
  const outDir = args.get('out') ?? join(__dirname, 'results');
  const reps = Number(args.get('reps') ?? (tiny ? 2 : 15));
  mkdirSync(outDir, { recursive: true });
  const binding = nativeBinding();
  const info = binding.buildInfo();
  const schedule = NoiseSchedule.discrete({ kind: 'linear', N: 1000, betaStart: 1e-4, betaEnd: 0.02 });
  const steps = 10;
  const md: string[] = [
    '# Speed (CPU)',
    '',
    `Command: \`npx vite-node benchmarks/speed.ts${tiny ? ' -- --tiny' : ''}\`. Machine: ${cpus().length} CPU cores (${cpus()[0]?.model ?? '?'}),`,
    `LibTorch ${info.torchVersion}, addon built with ${info.buildSystem}; median of ${reps} runs after a warm-up, the contenders run in turns.`,
    `Load average when it started: ${loadavg().map((v) => v.toFixed(1)).join(' / ')} (1 / 5 / 15 min). Other jobs shared the CPU: absolute`,
    'times are noisy; the contenders run in turns, so their ratios are less so.',
    '',
  ];

  // ---------------------------------------------------------------- 1. solver overhead
  const shapes = tiny ? [[2, 1, 8, 8]] : [[16, 1, 28, 28], [64, 3, 32, 32], [8, 4, 64, 64]];
  const nullModel = await loadModel(NULL_MODEL);
  const rows1: string[][] = [];
  for (const shape of shapes) {
    const x = randn(shape, 0);
    for (const [name, options] of PLANS) {
      const plan = compilePlan({ schedule, steps, ...options });
      const [nativeMs, jsMs] = await timeInterleaved(reps, [() => nullModel.execute(plan, { x, shape }), () => stepPlanFromJs(nullModel, plan, x, shape)]);
      const a = (await nullModel.execute(plan, { x, shape })).data;
      const b = stepPlanFromJs(nullModel, plan, x, shape);
      const lincombs = plan.ops.filter((o) => o.op === 'lincomb').length;
      rows1.push([
        `[${shape.join(', ')}]`,
        name,
        `${plan.nfe} / ${lincombs}`,
        fixed((nativeMs * 1000) / plan.nfe, 0),
        fixed((jsMs * 1000) / plan.nfe, 0),
        fixed(jsMs / nativeMs, 2),
        maxAbsDiff(a, b).toExponential(1),
      ]);
    }
  }
  nullModel.dispose();
  md.push(
    '## 1. Solver overhead per step (network that does almost nothing)',
    '',
    `Plans of ${steps} steps (DDPM discrete linear schedule) against benchmarks/models/null_eps.pt (forward = 0.1·x). Time per`,
    'network evaluation, in microseconds, of everything but a real network: register arithmetic, network-input',
    'scaling and output conversion, the call into TorchScript, and (once per run) copying x_T in and x_0 out.',
    '"native executor": model.execute (whole loop in C++, fused kernels, one worker-thread task). "JS op-by-op":',
    'the same plan stepped from JS with one plain LibTorch op per arithmetic operation (model.torchOpsStepper,',
    'synchronous calls). The last column checks that both computed the same x_0.',
    '',
    table(['shape', 'plan', 'evals / lincombs', 'native executor µs/step', 'JS op-by-op µs/step', 'JS / native', 'max abs diff'], rows1),
    '',
  );

  // ---------------------------------------------------------------- 2. end to end on the UNet
  const unetPath = args.get('model') ?? join(ROOT, 'models', 'fmnist_unet.pt');
  if (existsSync(unetPath)) {
    const card = readModelCard(unetPath);
    const model = await loadModel(unetPath);
    const batches = tiny ? [2] : [1, 16];
    // A real network is slow on a CPU: fewer repetitions here (median of 3).
    const unetReps = Math.min(reps, 3);
    const rows2: string[][] = [];
    for (const batch of batches) {
      const shape = [batch, ...(card.shape ?? [1, 28, 28])];
      const x = randn(shape, 1);
      const fwdMs = await timeMs(unetReps, () => model.forward(x, shape, 500));
      for (const [name, options] of PLANS.slice(0, tiny ? 1 : 2)) {
        const sampler = new Sampler({ model, schedule: card.schedule, steps, modelType: card.modelType, ...options });
        let modelMs = 0;
        let solverMs = 0;
        const plan = compilePlan({ schedule: card.schedule, steps, modelType: card.modelType, ...options });
        const [nativeMs, jsMs] = await timeInterleaved(unetReps, [
          async () => {
            const r = await sampler.sample({ shape, seed: 1 });
            modelMs = r.timings.modelMs;
            solverMs = r.timings.solverMs;
          },
          () => stepPlanFromJs(model, plan, x, shape),
        ]);
        rows2.push([
          String(batch),
          name,
          String(plan.nfe),
          fixed(fwdMs, 1),
          fixed(nativeMs, 0),
          fixed((batch * 1000) / nativeMs, 1),
          `${fixed(modelMs, 0)} / ${fixed(solverMs, 1)}`,
          fixed(jsMs, 0),
          fixed((batch * 1000) / jsMs, 1),
          fixed(jsMs / nativeMs, 3),
        ]);
      }
    }
    model.dispose();
    md.push(
      '## 2. End to end on the bundled Fashion-MNIST UNet (CPU, float32)',
      '',
      `${unetPath.replace(ROOT + '/', '')}, ${steps} steps, median of ${Math.min(reps, 3)} runs in turns. "forward": one model.forward of the batch (host copies included).`,
      '"Sampler": Sampler.sample (noise + native executor); its network / solver split is the executor\'s own timing.',
      '',
      table(
        ['batch', 'solver', 'NFE', 'forward ms', 'Sampler ms', 'Sampler samples/s', 'network / solver ms', 'JS op-by-op ms', 'JS samples/s', 'JS / native'],
        rows2,
      ),
      '',
    );
  } else {
    md.push('## 2. End to end on the bundled model', '', `skipped: ${unetPath} does not exist`, '');
  }

  // ---------------------------------------------------------------- 3. fused kernel
  // The kernel benchmark of the executor issue (benchmarks/kernels.mjs, needs dist/), else the
  // same entry point (binding.benchLincomb) called from here.
  const kernelsScript = join(__dirname, 'kernels.mjs');
  const sizeList = tiny ? '64K' : '256K,4M,16M';
  if (existsSync(kernelsScript) && existsSync(join(ROOT, 'dist', 'native.js'))) {
    const out = execFileSync(process.execPath, [kernelsScript, '--device', 'cpu', '--sizes', sizeList, ...(tiny ? ['--iters', '3'] : [])], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, SCIRE_NATIVE_PATH: nativeBindingPath() },
    });
    md.push(
      '## 3. Fused linear-combination kernel vs LibTorch ops (CPU)',
      '',
      `\`node benchmarks/kernels.mjs --device cpu --sizes ${sizeList}\` (the executor's kernel benchmark, run from here): out = sum c_k x_k`,
      'over float32 tensors of the given size. "torch ops": in-place LibTorch ops (the executor\'s fallback); "torch expr":',
      '`c0*x0 + c1*x1 + ...` with temporaries, as a Python sampler writes it.',
      '',
      ...out.split('\n').filter((l) => l.startsWith('|') || l.startsWith('threads')),
      '',
    );
  } else {
    const rows3: string[][] = [];
    let threads = 0;
    for (const size of sizeList.split(',')) {
      const bytes = Number(size.slice(0, -1)) * (size.endsWith('M') ? 1 << 20 : 1024);
      for (const terms of [2, 3, 4]) {
        const r = (binding as unknown as { benchLincomb(o: object): Record<string, number> }).benchLincomb({ terms, bytes, device: 'cpu', iters: tiny ? 3 : 20 });
        threads = r.threads;
        rows3.push([
          size.replace('K', ' KiB').replace('M', ' MiB'),
          String(terms),
          fixed(r.fusedMs * 1000, 0),
          fixed(r.torchOpsMs * 1000, 0),
          fixed(r.torchExprMs * 1000, 0),
          fixed(r.torchExprMs / r.fusedMs, 2),
          fixed(((terms + 1) * bytes) / (r.fusedMs * 1e6), 1),
          fixed((2 * bytes) / (r.copyMs * 1e6), 1),
          r.maxAbsDiff.toExponential(1),
        ]);
      }
    }
    md.push(
      '## 3. Fused linear-combination kernel vs LibTorch ops (CPU)',
      '',
      `binding.benchLincomb (native/testing/kernel_bindings.cc), ${threads} LibTorch threads. out = sum c_k x_k over float32 tensors of the`,
      'given size. "LibTorch ops": the executor\'s fallback written as in-place ops; "expression": `c0*x0 + c1*x1 + ...`',
      '(new tensors, what a Python sampler does). GB/s = (terms + 1) × bytes / time; copy = a plain tensor copy.',
      '',
      table(['tensor', 'terms', 'fused µs', 'LibTorch ops µs', 'expression µs', 'expression / fused', 'fused GB/s', 'copy GB/s', 'max abs diff'], rows3),
      '',
    );
  }

  const text = md.join('\n');
  writeFileSync(join(outDir, 'speed.md'), text);
  console.log(text);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
