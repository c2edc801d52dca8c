/**
 * `scire worker` and `scire submit`: the queue commands of the CLI (lib/scaleout).
 *
 *   scire worker --redis redis://127.0.0.1:6379 --queue scire --model m.pt --device cuda:0 [--concurrency 16]
 *   scire worker --devices all ...      one worker process per visible CUDA device
 *   scire submit --redis redis://127.0.0.1:6379 --queue scire -n 16 --seed 3 --out samples.png
 *
 * Exit status: 0 on success (a worker: after a graceful SIGTERM / SIGINT shutdown), 1 when
 * the work fails, 2 for a bad command line (with the usage).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError, choice as oneOf, device, guarded, reportCliError } from './cli-args';
import { PACKAGE_ROOT, nativeBinding } from './native';
import { ALGORITHMS, METHODS, RDE_MODES, SCIRE_CORRECTORS, SOLVERS, UNIPC_VARIANTS } from './options';
import { PRESETS } from './presets/auto';
import type { SampleJobData } from './scaleout/job';
import { SKIP_TYPES } from './timesteps';
import { DEFAULT_WORKER_MAX_WAIT_MS } from './scaleout/worker';

const DEFAULT_REDIS = 'redis://127.0.0.1:6379';
const DEFAULT_QUEUE = 'scire';
const DEFAULT_MODEL = path.join(PACKAGE_ROOT, 'models', 'fmnist_unet.pt');

export const WORKER_USAGE = `Usage: scire worker [flags]

Runs a BullMQ worker that samples the jobs of a Redis queue (see docs/scaling.md). Jobs in
flight on one worker share the model and are batched together. SIGTERM / SIGINT: stop taking
jobs, finish those in flight, exit 0 (a second signal exits at once; the jobs then go back
to the queue after the stalled interval). Needs the npm package bullmq.

Flags:
  --redis <url>              Redis URL (default ${DEFAULT_REDIS})
  --queue <name>             Queue name (default ${DEFAULT_QUEUE})
  --model <file.pt>          TorchScript model with its card (default: the bundled model)
  --device <name>            cpu | cuda | cuda:N (default cpu)
  --devices <all|0,1,..>     One worker process per CUDA device (all: every visible one);
                             without CUDA devices, one CPU worker
  --dtype <name>             float32 | float16 | bfloat16 (default float32)
  --concurrency <int>        Jobs in flight on this worker (default 16)
  --threads <int>            CPU threads of the network (OMP_NUM_THREADS; default: LibTorch's)
  --steps <int>              Default solver steps of the jobs (default 12)
  --max-batch <int>          Most samples in one batched solve (default 64)
  --max-wait-ms <ms>         How long an idle model waits to fill a batch (default 5: the
                             successors of a finished batch arrive one Redis round trip each)
  --no-batching              Run each job alone
  --max-samples <int>        Most samples in one job (default 64)
  --results <store>          auto | inline | key (default auto: up to 64 KiB inline)
  --result-ttl <s>           Lifetime of result keys (default 86400)
  --lock-duration <ms>       BullMQ job lock (default 30000)
  --stalled-interval <ms>    Stalled-job check period (default 30000)
  --max-stalled-count <int>  Times a job may stall before it fails (default 1)
  -v, --verbose              One line per finished job
  -h, --help                 Show this help`;

export const SUBMIT_USAGE = `Usage: scire submit [flags]

Puts one sampling request on the queue, waits for a worker to finish it and writes the
result: .png (a grid), .npy (float32 array) or .f32 (raw little-endian float32).

Flags:
  --redis <url>           Redis URL (default ${DEFAULT_REDIS})
  --queue <name>          Queue name (default ${DEFAULT_QUEUE})
  -n, --samples <int>     Number of samples (default 1); or --shape for the whole batch
  --shape <dims>          Batch shape, e.g. 4,1,28,28
  --seed <int>            Seed of the starting noise (default: random, printed)
  --steps <int>           Solver steps (default: the worker's)
  --preset, --solver, --algorithm, --method, --order, --skip, --rde, --corrector, --variant,
  --final-corrector, --no-lower-order-final, --denoise-to-zero   as in scire sample
  --guidance-scale <g>    Classifier-free guidance scale (with a conditional model)
  --out <file>            .png | .npy | .f32 (default samples.png)
  --job-id <id|auto>      Job id; auto derives it from the request (resubmitting returns
                          the stored result)
  --priority <int>        BullMQ priority (1 is the highest)
  --attempts <int>        Tries on worker errors (default 3; bad data is never retried)
  --timeout <s>           Longest wait for the result (default 600)
  -q, --quiet             No summary line
  -h, --help              Show this help`;

function int(flag: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${flag} must be an integer >= ${min}, got '${value}'`);
  }
  return n;
}

function num(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got '${value}'`);
  return n;
}



// ---------------------------------------------------------------------------- worker

const WORKER_FLAGS = {
  redis: { type: 'string' },
  queue: { type: 'string' },
  model: { type: 'string' },
  device: { type: 'string' },
  devices: { type: 'string' },
  dtype: { type: 'string' },
  concurrency: { type: 'string' },
  threads: { type: 'string' },
  steps: { type: 'string' },
  'max-batch': { type: 'string' },
  'max-wait-ms': { type: 'string' },
  'no-batching': { type: 'boolean' },
  'max-samples': { type: 'string' },
  results: { type: 'string' },
  'result-ttl': { type: 'string' },
  'lock-duration': { type: 'string' },
  'stalled-interval': { type: 'string' },
  'max-stalled-count': { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Device list of --devices: 'all' or comma-separated CUDA indices. */
function deviceList(value: string, visible: number): number[] {
  if (value === 'all') return Array.from({ length: visible }, (_, i) => i);
  if (!/^\d+(,\d+)*$/.test(value)) throw new UsageError(`--devices must be 'all' or CUDA indices such as 0,1, got '${value}'`);
  const ids = [...new Set(value.split(',').map(Number))];
  const bad = ids.find((i) => i >= visible);
  if (bad !== undefined) throw new UsageError(`--devices ${value}: cuda:${bad} is not visible (${visible} CUDA device(s))`);
  return ids;
}

/** Spawns one `scire worker --device cuda:i` per device and forwards signals to them. */
function launchPerDevice(argv: string[], ids: number[]): Promise<number> {
  // The same command line without --devices, plus --device cuda:i.
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--devices' || argv[i] === '--device') i++;
    else if (!argv[i].startsWith('--devices=') && !argv[i].startsWith('--device=')) rest.push(argv[i]);
  }
  const script = process.argv[1];
  const children: ChildProcess[] = ids.map((id) =>
    spawn(process.execPath, [script, 'worker', ...rest, '--device', `cuda:${id}`], { stdio: 'inherit' }),
  );
  process.stderr.write(`scire worker: ${children.length} worker process(es) on cuda:${ids.join(', cuda:')} (pids ${children.map((c) => c.pid).join(', ')})\n`);
  let stopping = false;
  const forward = (sig: NodeJS.Signals): void => {
    stopping = true;
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  process.on('SIGTERM', () => forward('SIGTERM'));
  process.on('SIGINT', () => forward('SIGINT'));
  return new Promise((resolve) => {
    let left = children.length;
    let status = 0;
    for (const c of children) {
      c.on('exit', (code, signal) => {
        const s = code ?? (signal ? 1 : 0);
        if (s !== 0 && status === 0) status = s;
        if (!stopping) {
          // One device's worker died: stop the others gracefully, let the supervisor restart us.
          process.stderr.write(`scire worker: the worker on pid ${c.pid} exited (${signal ?? code}); stopping the others\n`);
          status = status || 1;
          forward('SIGTERM');
        }
        if (--left === 0) resolve(status);
      });
    }
  });
}

async function runWorker(argv: string[]): Promise<number> {
  const { values, positionals } = guarded(() => parseArgs({ args: argv, strict: true, allowPositionals: true, options: WORKER_FLAGS }), WORKER_FLAGS);
  if (values.help) {
    process.stdout.write(WORKER_USAGE + '\n');
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`scire worker takes no positional arguments, got '${positionals[0]}'`);
  const threads = int('threads', values.threads, 1);
  // Before the addon (and LibTorch's OpenMP) loads: the intra-op thread count of this process.
  if (threads !== undefined) process.env.OMP_NUM_THREADS = String(threads);
  if (values.devices !== undefined && values.device !== undefined) throw new UsageError('give --device or --devices, not both');
  const results = oneOf('results', ['auto', 'inline', 'key'] as const, values.results);
  const dtype = oneOf('dtype', ['float32', 'float16', 'bfloat16'] as const, values.dtype);
  const options = {
    connection: values.redis ?? DEFAULT_REDIS,
    queue: values.queue ?? DEFAULT_QUEUE,
    model: values.model ?? DEFAULT_MODEL,
    device: device(values.device),
    dtype,
    concurrency: int('concurrency', values.concurrency, 1),
    solverOptions: values.steps === undefined ? undefined : { steps: int('steps', values.steps, 1) as number },
    batching: values['no-batching']
      ? false
      : { maxBatchSize: int('max-batch', values['max-batch'], 1), maxWaitMs: num('max-wait-ms', values['max-wait-ms']) ?? DEFAULT_WORKER_MAX_WAIT_MS },
    maxSamples: int('max-samples', values['max-samples'], 1),
    results: results === undefined && values['result-ttl'] === undefined ? undefined : { store: results, ttlSeconds: int('result-ttl', values['result-ttl'], 1) },
    lockDuration: int('lock-duration', values['lock-duration'], 100),
    stalledInterval: int('stalled-interval', values['stalled-interval'], 100),
    maxStalledCount: int('max-stalled-count', values['max-stalled-count'], 0),
  };
  if (!fs.existsSync(options.model)) throw new Error(`--model ${options.model}: no such file`);

  if (values.devices !== undefined) {
    const build = nativeBinding().buildInfo();
    const visible = build.cuda ? build.cudaDeviceCount : 0;
    if (visible > 0) return launchPerDevice(argv, deviceList(values.devices, visible));
    process.stderr.write(
      `scire worker: --devices ${values.devices}: no CUDA device visible (${build.cuda ? '0 GPUs' : 'this build has CUDA off'}); ` +
        'starting one CPU worker instead\n',
    );
  }

  const { createWorker } = await import('./scaleout/worker');
  const w = await createWorker(options);
  const info = w.model.info;
  process.stdout.write(
    `scire worker ${process.pid} ready: queue '${options.queue}' on ${typeof options.connection === 'string' ? options.connection : 'redis'}, ` +
      `${info?.path ?? options.model} on ${info?.device ?? options.device} ${info?.dtype ?? ''}, concurrency ${options.concurrency ?? 16}` +
      `, OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? '(LibTorch default)'}\n`,
  );
  w.worker.on('stalled', (jobId: string) => process.stderr.write(`scire worker ${process.pid}: job ${jobId} stalled (its worker died?), retrying\n`));
  w.worker.on('failed', (job, err) => process.stderr.write(`scire worker ${process.pid}: job ${job?.id} failed: ${err.message}\n`));
  if (values.verbose) {
    w.worker.on('completed', (job, r: { timings?: { batchSize?: number; totalMs?: number } }) =>
      process.stdout.write(`job ${job.id} done: batch ${r.timings?.batchSize}, ${r.timings?.totalMs?.toFixed(0)} ms\n`),
    );
  }

  let closed = false;
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (closed) return;
      if (++signals > 1) {
        process.stderr.write(`scire worker ${process.pid}: second ${sig}, exiting now; in-flight jobs return to the queue when their locks expire\n`);
        process.exit(1);
      }
      process.stderr.write(`scire worker ${process.pid}: ${sig}: no new jobs; finishing ${w.stats().active} in flight\n`);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await w.close();
  closed = true;
  const s = w.stats();
  process.stdout.write(`scire worker ${process.pid} closed: ${s.completed} completed, ${s.failed} failed\n`);
  // Nothing should hold the loop after close; if something does, do not hang the shutdown.
  setTimeout(() => process.exit(0), 2000).unref();
  return 0;
}

// ---------------------------------------------------------------------------- submit

const SUBMIT_FLAGS = {
  redis: { type: 'string' },
  queue: { type: 'string' },
  samples: { type: 'string', short: 'n' },
  shape: { type: 'string' },
  seed: { type: 'string' },
  steps: { type: 'string' },
  solver: { type: 'string' },
  algorithm: { type: 'string' },
  method: { type: 'string' },
  order: { type: 'string' },
  skip: { type: 'string' },
  preset: { type: 'string' },
  rde: { type: 'string' },
  corrector: { type: 'string' },
  variant: { type: 'string' },
  'final-corrector': { type: 'boolean' },
  'no-lower-order-final': { type: 'boolean' },
  'denoise-to-zero': { type: 'boolean' },
  'guidance-scale': { type: 'string' },
  out: { type: 'string' },
  'job-id': { type: 'string' },
  priority: { type: 'string' },
  attempts: { type: 'string' },
  timeout: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function runSubmit(argv: string[]): Promise<number> {
  const { values, positionals } = guarded(() => parseArgs({ args: argv, strict: true, allowPositionals: true, options: SUBMIT_FLAGS }), SUBMIT_FLAGS);
  if (values.help) {
    process.stdout.write(SUBMIT_USAGE + '\n');
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`scire submit takes no positional arguments, got '${positionals[0]}'`);
  const out = values.out ?? 'samples.png';
  const ext = /\.(png|npy|f32)$/i.exec(out)?.[1]?.toLowerCase() as 'png' | 'npy' | 'f32' | undefined;
  if (!ext) throw new UsageError(`--out must name a .png, .npy or .f32 file, got '${out}'`);
  if (values.samples !== undefined && values.shape !== undefined) throw new UsageError('give -n or --shape, not both');
  if (values.seed !== undefined && !/^\d{1,20}$/.test(values.seed)) throw new UsageError(`--seed must be a non-negative integer below 2^64, got '${values.seed}'`);
  const shape = values.shape?.split(/[,x]/).map((p) => int('shape', p, 1) as number);
  const seed = values.seed === undefined ? undefined : BigInt(values.seed) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(values.seed) : values.seed;
  const request: SampleJobData = {
    ...(shape ? { shape } : { n: int('samples', values.samples, 1) ?? 1 }),
    seed,
    output: ext,
    steps: int('steps', values.steps, 1),
    // The allowed names are checked here, at once; how they combine, by the worker's Sampler.
    solver: oneOf('solver', SOLVERS, values.solver),
    algorithm: oneOf('algorithm', ALGORITHMS, values.algorithm),
    method: oneOf('method', METHODS, values.method),
    order: int('order', values.order, 1),
    skip: oneOf('skip', SKIP_TYPES, values.skip),
    preset: oneOf('preset', PRESETS, values.preset),
    rde: oneOf('rde', RDE_MODES, values.rde),
    corrector: oneOf('corrector', SCIRE_CORRECTORS, values.corrector),
    variant: oneOf('variant', UNIPC_VARIANTS, values.variant),
    finalCorrector: values['final-corrector'] || undefined,
    lowerOrderFinal: values['no-lower-order-final'] ? false : undefined,
    denoiseToZero: values['denoise-to-zero'] || undefined,
    guidanceScale: num('guidance-scale', values['guidance-scale']),
  };
  const timeoutS = int('timeout', values.timeout, 1) ?? 600;
  const attempts = int('attempts', values.attempts, 1);

  const { createClient } = await import('./scaleout/client');
  let client: Awaited<ReturnType<typeof createClient>> | undefined;
  try {
    client = await createClient({ connection: values.redis ?? DEFAULT_REDIS, queue: values.queue ?? DEFAULT_QUEUE });
    const started = performance.now();
    const jobId = await client.enqueue(request, {
      jobId: values['job-id'],
      priority: int('priority', values.priority, 0),
      jobOptions: attempts === undefined ? undefined : { attempts },
    });
    const r = await client.result(jobId, { timeoutMs: timeoutS * 1000 });
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    fs.writeFileSync(out, r.bytes);
    if (!values.quiet) {
      const t = r.timings;
      process.stdout.write(
        `job ${jobId} -> ${out}: ${r.shape[0]} samples [${r.shape.slice(1).join(', ')}], NFE ${r.nfe}, seed ${r.seed}; ` +
          `batch ${t.batchSize} (${t.batchRequests} requests), queue ${t.queueMs.toFixed(0)} ms, run ${t.executeMs.toFixed(0)} ms ` +
          `on ${r.worker.host} pid ${r.worker.pid} ${r.worker.device}; ${((performance.now() - started) / 1000).toFixed(2)} s in all\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  } finally {
    await client?.close();
  }
}

/** Runs `scire worker ...` or `scire submit ...` (argv starts with the command). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const usage = command === 'worker' ? WORKER_USAGE : SUBMIT_USAGE;
  try {
    return command === 'worker' ? await runWorker(rest) : await runSubmit(rest);
  } catch (err) {
    return reportCliError(err, usage);
  }
}
