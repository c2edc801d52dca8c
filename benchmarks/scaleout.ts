/**
 * Scale-out benchmark (issue 15): jobs/s of `scire worker` processes on one BullMQ queue
 * (a throwaway redis-server, lib/testing/redis-server.ts) with 1, 2 and 4 worker processes,
 * against the single-process batched figure (a local Sampler, batching on, the same jobs
 * with the same number in flight), all measured in one run, configurations in turns.
 *
 * Jobs: batch-1 requests { n: 1, seed, output: 'f32' } on the bundled UNet (CPU, float32,
 * SciRE v1 multistep order 3, --steps), batching on in every worker (concurrency --inflight).
 * Threads: each configuration is WORKERS x THREADS (LibTorch intra-op threads per process,
 * OMP_NUM_THREADS); the default 1xCORES, 1x1, 2x1, 4x1 shows one process on all cores, and
 * the scaling in processes at one thread each. The local Sampler gets all cores.
 *
 *   npm run bench:scaleout                     writes benchmarks/results/scaleout.md and .json
 *   npx vite-node benchmarks/scaleout.ts -- --tiny --out /tmp/x    smoke setting
 * Options: --out DIR  --tiny  --jobs N (128)  --reps N (3)  --steps N (6)  --inflight K (8)
 *          --configs 1x2,1x1,2x1,4x1,local:1x1,local:2x1 (WORKERSxTHREADS; local:PxT is the
 *          control without Redis: P processes with a local Sampler each)  --model PATH  --device cpu|cuda:N
 *          --max-wait-ms MS (the workers' batching wait; default theirs, 5)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../lib/model';
import { readModelCard } from '../lib/model-card';
import { nativeBinding } from '../lib/native';
import { Sampler } from '../lib/sampler';
import { createClient, type ScireClient } from '../lib/scaleout/client';
import { startRedisServer } from '../lib/testing/redis-server';
import { ensureDistBuilt } from '../test/support/dist';
import { fixed, parseArgs, table } from './support/markdown';

const ROOT = join(__dirname, '..');
/** kernel.sched_autogroup_enabled ('?' where it cannot be read). */
function autogroup(): string {
  try {
    return readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim();
  } catch {
    return '?';
  }
}
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/**
 * CPU seconds of a process so far, split into its model threads (named 'scire:...' by
 * native/model_thread.cc; LibTorch's OpenMP helpers of that thread count as 'other') and the
 * rest (the JS thread, libuv, BullMQ's Redis I/O). Linux /proc; null elsewhere.
 */
function processCpu(pid: number): { model: number; other: number } | null {
  try {
    const tick = 100; // USER_HZ (sysconf(_SC_CLK_TCK)) on Linux
    let model = 0;
    let other = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' '); // f[0] is field 3 (state): utime = field 14, stime = 15
      const secs = (Number(f[11]) + Number(f[12])) / tick;
      if (name.startsWith('scire:')) model += secs;
      else other += secs;
    }
    return { model, other };
  } catch {
    return null;
  }
}

/** Sum of processCpu over processes (null when any is unreadable). */
function poolCpu(pids: number[]): { model: number; other: number } | null {
  let model = 0;
  let other = 0;
  for (const pid of pids) {
    const c = processCpu(pid);
    if (!c) return null;
    model += c.model;
    other += c.other;
  }
  return { model, other };
}

interface Pool {
  workers: number;
  threads: number;
  queue: string;
  client: ScireClient;
  children: ChildProcess[];
}

/** Starts `workers` worker processes on their own queue; resolves when all printed ready. */
async function startPool(cli: string, url: string, workers: number, threads: number, o: { steps: number; inflight: number; model: string; device: string; maxWaitMs?: string }): Promise<Pool> {
  const queue = `bench-${workers}x${threads}`;
  const children = Array.from({ length: workers }, () =>
    spawn(
      process.execPath,
      [cli, 'worker', '--redis', url, '--queue', queue, '--model', o.model, '--threads', String(threads), '--steps', String(o.steps), '--concurrency', String(o.inflight), '--device', o.device, ...(o.maxWaitMs ? ['--max-wait-ms', o.maxWaitMs] : [])],
      // detached: each worker in its own session, as a supervisor starts services. With Linux
      // autogroup scheduling (kernel.sched_autogroup_enabled=1), the processes of one session
      // share ONE fair CPU share against the other sessions of a busy machine, which would
      // cap N workers of this script at the CPU of one.
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], detached: true },
    ),
  );
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve, reject) => {
          let out = '';
          c.stdout!.on('data', (d: Buffer) => {
            out += d.toString();
            if (/ready: queue/.test(out)) resolve();
          });
          c.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready: ${out}`)));
        }),
    ),
  );
  const client = await createClient({ connection: url, queue, jobOptions: { removeOnComplete: true } });
  return { workers, threads, queue, client, children };
}

/** Commands Redis has run so far (INFO commandstats, summed; commands inside Lua scripts count too). */
function redisCommands(port: number): { calls: number; scripts: number } {
  const out = spawnSync('redis-cli', ['-p', String(port), 'INFO', 'commandstats'], { encoding: 'utf8' }).stdout ?? '';
  let calls = 0;
  let scripts = 0;
  for (const m of out.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) {
    if (m[1] === 'info') continue;
    calls += Number(m[2]);
    if (m[1] === 'evalsha' || m[1] === 'eval') scripts += Number(m[2]);
  }
  return { calls, scripts };
}

interface Run {
  wallMs: number;
  /** Redis commands per job (all clients; null for the local Sampler). */
  redisPerJob?: { calls: number; scripts: number };
  meanBatch: number;
  perWorker: number[];
  /** CPU ms per job of the worker processes: their model threads, and everything else (null: not measured). */
  cpuPerJob?: { model: number; other: number } | null;
}

/** Enqueues `jobs` batch-1 jobs and waits for all of them; wall time from the first add to the last completion. */
async function runJobs(pool: Pool, jobs: number, seed0: number, port: number): Promise<Run> {
  const c0 = redisCommands(port);
  const pids = pool.children.map((c) => c.pid!);
  const cpu0 = poolCpu(pids);
  const batches: number[] = [];
  const byPid = new Map<number, number>();
  const firstByPid = new Map<number, number>();
  let done = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const onCompleted = ({ returnvalue }: { returnvalue: unknown }): void => {
    const r = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as { timings: { batchSize: number }; worker: { pid: number } };
    batches.push(r.timings.batchSize);
    byPid.set(r.worker.pid, (byPid.get(r.worker.pid) ?? 0) + 1);
    if (!firstByPid.has(r.worker.pid)) firstByPid.set(r.worker.pid, performance.now() - t0);
    if (++done === jobs) resolveAll();
  };
  const t0 = performance.now();
  pool.client.events.on('completed', onCompleted);
  await pool.client.queue.addBulk(Array.from({ length: jobs }, (_, i) => ({ name: 'sample', data: { n: 1, seed: seed0 + i, output: 'f32' }, opts: { removeOnComplete: true } })));
  await all;
  const wallMs = performance.now() - t0;
  pool.client.events.off('completed', onCompleted);
  if (process.env.SCALEOUT_DEBUG) process.stderr.write(`first completion per worker (ms): ${[...firstByPid.values()].map((v) => v.toFixed(0)).join(' / ')}\n`);
  const c1 = redisCommands(port);
  const cpu1 = poolCpu(pids);
  return {
    cpuPerJob: cpu0 && cpu1 ? { model: ((cpu1.model - cpu0.model) * 1000) / jobs, other: ((cpu1.other - cpu0.other) * 1000) / jobs } : null,
    redisPerJob: { calls: (c1.calls - c0.calls) / jobs, scripts: (c1.scripts - c0.scripts) / jobs },
    wallMs, meanBatch: batches.reduce((a, b) => a + b, 0) / batches.length, perWorker: [...byPid.values()] };
}

/** The same jobs on a local Sampler with `inflight` requests in flight at once. */
async function runLocal(sampler: Sampler, jobs: number, inflight: number, seed0: number): Promise<Run> {
  const batches: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < jobs) {
        const seed = seed0 + next++;
        const r = await sampler.sample({ shape: [1, 1, 28, 28], seed });
        batches.push(r.timings.batchSize);
      }
    }),
  );
  return { wallMs: performance.now() - t0, meanBatch: batches.reduce((a, b) => a + b, 0) / batches.length, perWorker: [jobs] };
}

/**
 * Control without Redis: `processes` child processes (each in its own session, OMP_NUM_THREADS
 * = threads) run a local batched Sampler on jobs / processes batch-1 jobs each, started together
 * after their warm-up. It shows how this machine scales independent processes, queue or not.
 */
async function runLocalProcesses(processes: number, threads: number, jobs: number, o: { steps: number; inflight: number; model: string; device: string }): Promise<Run> {
  const script = join(__dirname, 'scaleout.ts');
  const viteNode = join(ROOT, 'node_modules', '.bin', 'vite-node');
  const share = Math.ceil(jobs / processes);
  const children = Array.from({ length: processes }, () =>
    spawn(viteNode, [script, '--', '--child', '--jobs', String(share), '--steps', String(o.steps), '--inflight', String(o.inflight), '--model', o.model, '--device', o.device], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true,
      env: { ...process.env, OMP_NUM_THREADS: String(threads) },
    }),
  );
  const lines = children.map((c) => {
    let out = '';
    const waiters: Array<[RegExp, (line: string) => void]> = [];
    c.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const w of [...waiters]) {
        const m = w[0].exec(out);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w[1](m[0]);
        }
      }
    });
    return (re: RegExp): Promise<string> => new Promise((resolve) => (re.test(out) ? resolve(re.exec(out)![0]) : waiters.push([re, resolve])));
  });
  await Promise.all(lines.map((l) => l(/ready\n/)));
  const t0 = performance.now();
  for (const c of children) c.stdin!.write('go\n');
  const done = await Promise.all(lines.map((l) => l(/\{"meanBatch".*\}\n/)));
  const wallMs = performance.now() - t0;
  await Promise.all(children.map((c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : c.once('exit', () => resolve())))));
  const batches = done.map((d) => (JSON.parse(d) as { meanBatch: number }).meanBatch);
  return { wallMs, meanBatch: batches.reduce((a, b) => a + b, 0) / batches.length, perWorker: children.map(() => share) };
}

/** The child of runLocalProcesses: warm up, say ready, wait for 'go', run, print the mean batch. */
async function child(args: Map<string, string>): Promise<void> {
  const modelPath = args.get('model')!;
  const model = await loadModel(modelPath, { device: args.get('device') ?? 'cpu' });
  const card = readModelCard(modelPath);
  const inflight = Number(args.get('inflight'));
  const sampler = new Sampler({ model, schedule: card.schedule, modelType: card.modelType, steps: Number(args.get('steps')), batching: true });
  await runLocal(sampler, inflight * 2, inflight, 1e6);
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  const r = await runLocal(sampler, Number(args.get('jobs')), inflight, 0);
  process.stdout.write(JSON.stringify({ meanBatch: r.meanBatch }) + '\n');
  process.stdin.pause();
  model.dispose();
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  if (args.has('child')) return child(args);
  const tiny = args.has('tiny');
  const outDir = args.get('out') ?? join(ROOT, 'benchmarks', 'results');
  const jobs = Number(args.get('jobs') ?? (tiny ? 16 : 128));
  const reps = Number(args.get('reps') ?? (tiny ? 1 : 3));
  const steps = Number(args.get('steps') ?? (tiny ? 3 : 6));
  const inflight = Number(args.get('inflight') ?? 8);
  const parsed = (args.get('configs') ?? `1x${cpus().length},1x1,2x1,4x1,local:1x1,local:2x1`).split(',').map((c) => {
    const m = /^(local:)?(\d+)x(\d+)$/.exec(c);
    if (!m) throw new RangeError(`--configs: expected WORKERSxTHREADS or local:PROCESSESxTHREADS items such as 2x1, got '${c}'`);
    return { local: m[1] !== undefined, workers: Number(m[2]), threads: Number(m[3]) };
  });
  const configs = parsed.filter((c) => !c.local);
  const controls = parsed.filter((c) => c.local);
  const modelPath = args.get('model') ?? join(ROOT, 'models', 'fmnist_unet.pt');
  const device = args.get('device') ?? 'cpu';
  const cores = cpus().length;
  const started = new Date().toISOString();
  const load0 = loadavg();

  const cli = ensureDistBuilt();
  const redis = await startRedisServer();
  const pools: Pool[] = [];
  // The local Sampler's model thread gets all cores (LibTorch's own default here is 1 thread,
  // which made the "1 x cores" row of earlier runs a 1-thread figure).
  process.env.SCIRE_INTRA_OP_THREADS = String(cores);
  const model = await loadModel(modelPath, { device });
  delete process.env.SCIRE_INTRA_OP_THREADS;
  try {
    const card = readModelCard(modelPath);
    const local = new Sampler({ model, schedule: card.schedule, modelType: card.modelType, steps, batching: true });
    for (const c of configs) pools.push(await startPool(cli, redis.url, c.workers, c.threads, { steps, inflight, model: modelPath, device, maxWaitMs: args.get('max-wait-ms') }));
    // Warm-up: every worker loads and runs batches of every size 1..inflight (the TorchScript
    // executor optimises a graph per new input shape, which made the first timed run of a pool
    // up to 1.4x slower than the later ones); the local Sampler too.
    await runLocal(local, inflight * 2, inflight, 1e6);
    for (const p of pools) {
      for (let k = 1; k <= inflight; k++) await runJobs(p, p.workers * k, 1e6 + 100 * k, redis.port);
      await runJobs(p, p.workers * inflight * 2, 1e6, redis.port);
    }
    for (let k = 1; k < inflight; k++) await runLocal(local, k, k, 1e6 + 100 * k);

    const runs = new Map<string, Run[]>();
    for (let r = 0; r < reps; r++) {
      const order: Array<[string, () => Promise<Run>]> = [
        ['local', () => runLocal(local, jobs, inflight, r * jobs)],
        ...pools.map((p): [string, () => Promise<Run>] => [p.queue, () => runJobs(p, jobs, r * jobs, redis.port)]),
        ...controls.map((c): [string, () => Promise<Run>] => [
          `local-${c.workers}x${c.threads}`,
          () => runLocalProcesses(c.workers, c.threads, jobs, { steps, inflight, model: modelPath, device }),
        ]),
      ];
      for (const [name, run] of order) {
        const res = await run();
        runs.set(name, [...(runs.get(name) ?? []), res]);
        process.stderr.write(`scaleout: rep ${r + 1}/${reps} ${name}: ${fixed(res.wallMs, 0)} ms, ${fixed((jobs * 1000) / res.wallMs, 1)} jobs/s, mean batch ${fixed(res.meanBatch, 1)}\n`);
      }
    }
    const load1 = loadavg();

    const rate = (name: string): number => (jobs * 1000) / median(runs.get(name)!.map((x) => x.wallMs));
    const oneQueue = pools.find((p) => p.workers === 1 && p.threads === 1)?.queue ?? pools[0].queue;
    const one = rate(oneQueue);
    const localRate = rate('local');
    const results = [
      { name: 'local', label: 'one process, local Sampler (no Redis)', processes: 1, threads: cores },
      ...pools.map((p) => ({
        name: p.queue,
        label: `${p.workers} worker process${p.workers > 1 ? 'es' : ''}, ${p.threads} thread${p.threads > 1 ? 's' : ''} each`,
        processes: p.workers,
        threads: p.threads,
      })),
      ...controls.map((c) => ({
        name: `local-${c.workers}x${c.threads}`,
        label: `control: ${c.workers} process${c.workers > 1 ? 'es' : ''} with a local Sampler, ${c.threads} thread${c.threads > 1 ? 's' : ''} each (no Redis)`,
        processes: c.workers,
        threads: c.threads,
      })),
    ].map((c) => {
      const rs = runs.get(c.name)!;
      return {
        ...c,
        wallMs: rs.map((x) => x.wallMs),
        jobsPerS: rate(c.name),
        vsOneWorker: rate(c.name) / one,
        vsLocal: rate(c.name) / localRate,
        meanBatch: median(rs.map((x) => x.meanBatch)),
        perWorker: rs[rs.length - 1].perWorker,
        redisPerJob: rs[rs.length - 1].redisPerJob ?? null,
        cpuPerJob: rs.every((x) => x.cpuPerJob) ? { model: median(rs.map((x) => x.cpuPerJob!.model)), other: median(rs.map((x) => x.cpuPerJob!.other)) } : null,
      };
    });
    const info = nativeBinding().buildInfo();
    const md = [
      `# Scale-out: BullMQ workers (${device})`,
      '',
      `Command: \`npm run bench:scaleout${tiny ? ' -- --tiny' : ''}\` (benchmarks/scaleout.ts), ${started}. Machine: ${cores} CPU cores`,
      `(${cpus()[0]?.model ?? '?'}), load average ${load0.map((v) => v.toFixed(1)).join(' / ')} at the start and ${load1.map((v) => v.toFixed(1)).join(' / ')} at the end`,
      `(1 / 5 / 15 min; other jobs shared the CPU). LibTorch ${info.torchVersion}; redis-server on loopback, no persistence.`,
      `Model: ${modelPath.replace(ROOT + '/', '')} (float32, ${device}), SciRE v1 multistep order 3, ${steps} steps.`,
      '',
      `${jobs} batch-1 jobs \`{ n: 1, seed, output: 'f32' }\` per run, added with one addBulk; wall time from the add to the last`,
      `'completed' event. Every worker runs ${inflight} jobs at once with dynamic batching on; the local Sampler keeps ${inflight} sample()`,
      `calls in flight. Threads: LibTorch intra-op threads per process (OMP_NUM_THREADS), as in the configuration.`,
      `Medians of ${reps} runs; configurations in turns, so each sees the same machine load. Each worker process runs in its own`,
      `session (as under a supervisor); kernel.sched_autogroup_enabled = ${autogroup()}: with autogroup on, the CPU is shared fairly between`,
      `sessions, so on a busy machine every worker process gets its own share, and N processes get up to N shares.`,
      `The control rows run the same jobs split over P processes with a local batched Sampler each (own sessions, no Redis),`,
      `started together after their warm-up: how far this machine scales independent processes at all.`,
      `Worker CPU per job (median over the runs; /proc of the worker processes): the model threads ('scire:...', the network`,
      `and the plan) and the other threads (the JS thread with BullMQ and ioredis, libuv; OpenMP helpers when threads > 1).`,
      '',
      table(
        ['configuration', 'processes x threads', 'wall ms (runs)', 'jobs/s', 'vs 1 worker x 1 thread', 'vs local Sampler', 'mean batch', 'jobs per worker (last run)', 'Redis commands / scripts per job', 'worker CPU ms per job: model threads / other'],
        results.map((r) => [
          r.label,
          `${r.processes} x ${r.threads}`,
          r.wallMs.map((w) => fixed(w, 0)).join(', '),
          fixed(r.jobsPerS, 1),
          fixed(r.vsOneWorker, 2),
          fixed(r.vsLocal, 2),
          fixed(r.meanBatch, 1),
          r.perWorker.join(' / '),
          r.redisPerJob ? `${fixed(r.redisPerJob.calls, 1)} / ${fixed(r.redisPerJob.scripts, 1)}` : '–',
          r.cpuPerJob ? `${fixed(r.cpuPerJob.model, 1)} / ${fixed(r.cpuPerJob.other, 1)}` : '–',
        ]),
      ),
      '',
    ];
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'scaleout.md'), md.join('\n'));
    writeFileSync(
      join(outDir, 'scaleout.json'),
      JSON.stringify({ started, device, jobs, reps, steps, inflight, cores, loadavgStart: load0, loadavgEnd: load1, torch: info.torchVersion, results }, null, 2) + '\n',
    );
    process.stdout.write(md.join('\n'));
  } finally {
    for (const p of pools) {
      await p.client.close();
      await Promise.all(p.children.map((c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : (c.once('exit', () => resolve()), c.kill('SIGTERM'))))));
    }
    model.dispose();
    await redis.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`scaleout: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
