/**
 * Serving benchmark (issue 10): N concurrent batch-1 sample() requests on the bundled UNet
 * (CPU, 6 steps), with dynamic batching on and off, against ONE sample() of the whole batch
 * [N, 1, 28, 28] measured in the same run. For each load it reports wall time and throughput,
 * p50 / p99 request latency, the event loop's delay (perf_hooks.monitorEventLoopDelay), a
 * fs.promises.readFile probe and a sample on a second model (benchmarks/models/null_eps.pt)
 * made while the load runs.
 *
 *   npm run bench:serving                         writes benchmarks/results/serving.md and .json
 *   npx vite-node benchmarks/serving.ts -- --tiny --out /tmp/x      smoke setting
 * Options: --out DIR  --tiny  --reps N (default 3; the largest load without batching runs once)  --steps N (6)
 *          --loads 16,64,256  --model PATH
 */
import { mkdirSync, writeFileSync } from 'fs';
import { readFile } from 'fs/promises';
import { cpus, loadavg } from 'os';
import { join } from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import { loadModel } from '../lib/model';
import { readModelCard } from '../lib/model-card';
import { nativeBinding } from '../lib/native';
import { Sampler } from '../lib/sampler';
import { fixed, parseArgs, table } from './support/markdown';

const ROOT = join(__dirname, '..');
const NULL_MODEL = join(__dirname, 'models', 'null_eps.pt');
const PROBE_FILE = join(ROOT, 'package.json');

function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const median = (v: number[]): number => quantile(v, 0.5);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Probe {
  /** readFile of a small file, ms each. */
  readFileMs: number[];
  /** sample() of [1, 1, 28, 28] on the second model, ms each. */
  otherModelMs: number[];
}

/** Runs `load` while probing readFile and a second model every `everyMs`; returns the load's result and the probes. */
async function underProbes<T>(load: () => Promise<T>, other: Sampler, everyMs: number): Promise<{ value: T; probe: Probe; loopP99: number; loopMax: number }> {
  const probe: Probe = { readFileMs: [], otherModelMs: [] };
  let done = false;
  const files = (async () => {
    while (!done) {
      const t0 = performance.now();
      await readFile(PROBE_FILE);
      probe.readFileMs.push(performance.now() - t0);
      await sleep(everyMs);
    }
  })();
  let seed = 0;
  const otherModel = (async () => {
    while (!done) {
      const t0 = performance.now();
      await other.sample({ shape: [1, 1, 28, 28], seed: seed++ });
      probe.otherModelMs.push(performance.now() - t0);
      await sleep(everyMs);
    }
  })();
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  try {
    const value = await load();
    return { value, probe, loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6 };
  } finally {
    loop.disable();
    done = true;
    await Promise.all([files, otherModel]);
  }
}

interface LoadResult {
  mode: string;
  requests: number;
  wallMs: number;
  /** Best of the runs (extra machine load only adds time). */
  bestWallMs: number;
  samplesPerS: number;
  latencyP50: number;
  latencyP99: number;
  batches: number;
  loopDelayP99: number;
  loopDelayMax: number;
  readFileMedian: number;
  readFileMax: number;
  otherModelMedian: number;
  otherModelMax: number;
  otherModelCount: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const tiny = args.has('tiny');
  const outDir = args.get('out') ?? join(__dirname, 'results');
  const reps = Number(args.get('reps') ?? (tiny ? 1 : 3));
  const steps = Number(args.get('steps') ?? (tiny ? 3 : 6));
  const loads = (args.get('loads') ?? (tiny ? '4,8' : '16,64,256')).split(',').map(Number);
  const modelPath = args.get('model') ?? join(ROOT, 'models', 'fmnist_unet.pt');
  mkdirSync(outDir, { recursive: true });

  const info = nativeBinding().buildInfo();
  const card = readModelCard(modelPath);
  const model = await loadModel(modelPath);
  const other = await loadModel(NULL_MODEL);
  const base = { schedule: card.schedule, modelType: card.modelType, steps };
  const maxLoad = Math.max(...loads);
  const batched = new Sampler({ model, ...base, batching: { maxBatchSize: maxLoad } });
  const defaultBatched = new Sampler({ model, ...base, batching: true }); // maxBatchSize 64
  const unbatched = new Sampler({ model, ...base });
  const otherSampler = new Sampler({ model: other, ...base });
  const sampleShape = card.shape ?? [1, 28, 28];

  // Warm-up: the first calls of a TorchScript module are slower (profiling executor).
  for (let i = 0; i < 2; i++) {
    await unbatched.sample({ shape: [4, ...sampleShape], seed: i });
    await otherSampler.sample({ shape: [1, 1, 28, 28], seed: i });
  }
  const idleOther: number[] = [];
  const idleRead: number[] = [];
  for (let i = 0; i < 10; i++) {
    let t0 = performance.now();
    await otherSampler.sample({ shape: [1, 1, 28, 28], seed: i });
    idleOther.push(performance.now() - t0);
    t0 = performance.now();
    await readFile(PROBE_FILE);
    idleRead.push(performance.now() - t0);
  }

  // The event loop's delay with nothing to do, for scale (this machine's scheduling noise).
  const idleLoop = monitorEventLoopDelay({ resolution: 5 });
  idleLoop.enable();
  await sleep(tiny ? 200 : 2000);
  idleLoop.disable();
  const idleLoopP99 = idleLoop.percentile(99) / 1e6;
  const idleLoopMax = idleLoop.max / 1e6;

  const results: LoadResult[] = [];
  const started = new Date().toISOString();
  const load0 = loadavg();
  for (const n of loads) {
    // The slowest mode (the largest load without batching: minutes on a CPU) runs once.
    const runsOf = (mode: string): number => (n === maxLoad && !tiny && mode.endsWith('batching off') ? 1 : reps);
    const modes: Array<[string, () => Promise<number[]>]> = [
      [
        `one sample() of [${n}, 1, 28, 28]`,
        async () => {
          const t0 = performance.now();
          await unbatched.sample({ shape: [n, ...sampleShape], seed: 0 });
          return [performance.now() - t0];
        },
      ],
      [`${n} × batch-1, batching on (maxBatchSize ${maxLoad})`, () => concurrent(batched, n, sampleShape)],
      ...(n > 64 ? [[`${n} × batch-1, batching on (default maxBatchSize 64)`, () => concurrent(defaultBatched, n, sampleShape)] as [string, () => Promise<number[]>]] : []),
      [`${n} × batch-1, batching off`, () => concurrent(unbatched, n, sampleShape)],
    ];
    const perMode = new Map<string, { wall: number[]; lat: number[]; batches: number; probes: Array<Awaited<ReturnType<typeof underProbes<number[]>>>> }>();
    for (let r = 0; r < reps; r++) {
      // Modes in turns, so that each sees the same machine load; the order rotates from one
      // run to the next, so that no mode always goes first.
      const turn = [...modes.slice(r % modes.length), ...modes.slice(0, r % modes.length)];
      for (const [mode, run] of turn) {
        if (r >= runsOf(mode)) continue;
        const before = model.stats().totals.batches;
        const t0 = performance.now();
        const res = await underProbes(run, otherSampler, 20);
        const wall = performance.now() - t0;
        const entry = perMode.get(mode) ?? { wall: [], lat: [], batches: 0, probes: [] };
        entry.wall.push(wall);
        entry.lat.push(...res.value);
        entry.batches = model.stats().totals.batches - before;
        entry.probes.push(res);
        perMode.set(mode, entry);
        process.stderr.write(`serving: ${mode}: ${fixed(wall, 0)} ms\n`);
      }
    }
    for (const [mode, e] of perMode) {
      const wallMs = median(e.wall);
      const read = e.probes.flatMap((p) => p.probe.readFileMs);
      const oth = e.probes.flatMap((p) => p.probe.otherModelMs);
      results.push({
        mode,
        requests: n,
        wallMs,
        bestWallMs: Math.min(...e.wall),
        samplesPerS: (n * 1000) / wallMs,
        latencyP50: quantile(e.lat, 0.5),
        latencyP99: quantile(e.lat, 0.99),
        batches: e.batches,
        loopDelayP99: Math.max(...e.probes.map((p) => p.loopP99)),
        loopDelayMax: Math.max(...e.probes.map((p) => p.loopMax)),
        readFileMedian: median(read),
        readFileMax: Math.max(...read),
        otherModelMedian: median(oth),
        otherModelMax: Math.max(...oth),
        otherModelCount: oth.length,
      });
    }
  }
  model.dispose();
  other.dispose();

  const rows = results.map((r) => {
    const one = results.find((x) => x.requests === r.requests && x.mode.startsWith('one sample()'))!;
    return [
      r.mode,
      `${fixed(r.wallMs, 0)} (${fixed(r.bestWallMs, 0)})`,
      `${fixed(r.wallMs / one.wallMs, 2)} (${fixed(r.bestWallMs / one.bestWallMs, 2)})`,
      fixed(r.samplesPerS, 1),
      r.mode.startsWith('one') ? '–' : `${fixed(r.latencyP50, 0)} / ${fixed(r.latencyP99, 0)}`,
      String(r.batches),
      `${fixed(r.loopDelayP99, 1)} / ${fixed(r.loopDelayMax, 1)}`,
      `${fixed(r.readFileMedian, 1)} / ${fixed(r.readFileMax, 1)}`,
      `${fixed(r.otherModelMedian, 1)} / ${fixed(r.otherModelMax, 1)} (${r.otherModelCount})`,
    ];
  });
  const md = [
    '# Serving (CPU)',
    '',
    `Command: \`npm run bench:serving${tiny ? ' -- --tiny' : ''}\` (benchmarks/serving.ts), ${started}. Machine: ${cpus().length} CPU cores`,
    `(${cpus()[0]?.model ?? '?'}), load average ${load0.map((v) => v.toFixed(1)).join(' / ')} at the start (other jobs shared the CPU),`,
    `LibTorch ${info.torchVersion}. Model: ${modelPath.replace(ROOT + '/', '')} (float32, CPU), SciRE v1 multistep order 3, ${steps} steps.`,
    `Wall times are medians of ${reps} runs, with the best run in parentheses (${maxLoad} requests without batching: 1 run); the modes of`,
    'one load run in turns (the order rotating from run to run), so each sees the same machine load.',
    '',
    'Each load is N concurrent `sampler.sample({ shape: [1, 1, 28, 28], seed: i })` calls started in one tick, against ONE',
    '`sample()` of shape [N, 1, 28, 28]. "vs one" is the wall time over that of the one sample(). Latency: from each call to its',
    'result. Event-loop delay: perf_hooks.monitorEventLoopDelay (resolution 5 ms) during the load. While the load runs, a probe',
    `reads a small file with fs.promises.readFile and samples [1, 1, 28, 28] on a second model (benchmarks/models/null_eps.pt)`,
    `every 20 ms; idle, those take ${fixed(median(idleRead), 2)} ms and ${fixed(median(idleOther), 1)} ms (medians of 10), and the`,
    `idle event loop's delay is ${fixed(idleLoopP99, 1)} / ${fixed(idleLoopMax, 1)} ms (p99 / max over ${tiny ? 0.2 : 2} s). The maxima of the probes follow the`,
    "event loop's own maximum delay: they measure how often this busy machine leaves the JS thread unscheduled.",
    '',
    table(
      ['load', 'wall ms median (best)', 'vs one: median (best)', 'samples/s', 'latency p50 / p99 ms', 'native runs', 'loop delay p99 / max ms', 'readFile median / max ms', 'second model median / max ms (n)'],
      rows,
    ),
    '',
    'Concurrency model: every Sampler on a model shares one queue that sends at most one solve at a time to the native',
    'executor (which runs it off the JS thread); with batching on, the requests that queued up meanwhile and share a plan and',
    'sample shape are concatenated into that one solve, so N batch-1 requests cost about one sample() of N.',
    '',
  ];
  writeFileSync(join(outDir, 'serving.md'), md.join('\n'));
  writeFileSync(
    join(outDir, 'serving.json'),
    JSON.stringify({ started, steps, reps, loads, cpus: cpus().length, loadavg: load0, idle: { readFileMs: median(idleRead), otherModelMs: median(idleOther), loopDelayP99Ms: idleLoopP99, loopDelayMaxMs: idleLoopMax }, results }, null, 2) + '\n',
  );
  process.stdout.write(md.join('\n'));
}

/** n concurrent batch-1 requests (seeds 0..n-1); resolves with each request's latency. */
async function concurrent(sampler: Sampler, n: number, sampleShape: number[]): Promise<number[]> {
  const t0 = performance.now();
  return Promise.all(
    Array.from({ length: n }, (_, i) => sampler.sample({ shape: [1, ...sampleShape], seed: i }).then(() => performance.now() - t0)),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
