/**
 * Scale-out acceptance (issue 15) with a real redis-server (Debian's, started here on a free
 * loopback port in a temporary directory, no persistence) and the bundled Fashion-MNIST UNet
 * (models/fmnist_unet.pt, CPU, float32, SciRE v1 multistep order 3, STEPS steps). The UNet is
 * fast enough at 4 steps for 200 batch-1 jobs here, so no smaller fixture model is used.
 *
 * - 200 jobs across 2 `scire worker` processes (concurrency 8, 1 CPU thread each, batching
 *   on); one is killed with SIGKILL after 40 completions, while it holds jobs. Every job
 *   completes exactly once (one 'completed' event per job id, 200 distinct ids, none failed,
 *   at least one 'stalled' event: the killed worker's jobs were taken over), the results are
 *   200 distinct arrays, each of the job's seed and shape, and each equal to the solo sample()
 *   of its seed in this process: max|a - b| / max|b| < 1e-4, checked for all 200 (solo batch-1
 *   runs take 0.25-0.5 s each on this shared 2-core machine: 50-100 s of the file's time).
 * - 14 kinds of bad job data fail at once with a message that names the field, and are not
 *   retried (attemptsMade === 1 with attempts: 5).
 * - createWorker({ sampler }) with per-job solver options, an idempotent resubmit (jobId
 *   'auto': one run, the same bytes) and a seed above 2^53.
 * - SIGTERM to `scire worker --devices all` (no GPU here: it falls back to one CPU worker and
 *   says so) while jobs run: the jobs in flight finish, the rest stay queued, exit status 0.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { promisify } from 'node:util';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy } from '../lib/image-io';
import { loadModel } from '../lib/model';
import { Sampler } from '../lib/sampler';
import { NoiseSchedule } from '../lib/schedule';
import type { Model } from '../lib/serving/model';
import { createClient, type ScireClient } from '../lib/scaleout/client';
import { jobIdFor } from '../lib/scaleout/job';
import { createWorker, type ScireWorker } from '../lib/scaleout/worker';
import { startRedisServer, type RedisServer } from '../lib/testing/redis-server';
import { ROOT, ensureDistBuilt } from './support/dist';
import { relativeError as relErr } from './support/native-gmm';

const UNET = path.join(ROOT, 'models', 'fmnist_unet.pt');
const schedule = NoiseSchedule.discrete({ kind: 'linear', betaStart: 1e-4, betaEnd: 0.02, N: 1000 });
const STEPS = 4;
const JOBS = 200;
const KILL_AFTER = 40;
const REL_TOL = 1e-4;

let redis: RedisServer;
let cli: string;
let model: Model;
const children: ChildProcess[] = [];

interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `scire worker ...` and resolves once it printed its ready line. */
async function startWorker(queue: string, extra: string[]): Promise<Spawned> {
  const args = [cli, 'worker', '--redis', redis.url, '--queue', queue, '--threads', '1', '--steps', String(STEPS), ...extra];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const deadline = Date.now() + 60_000;
  while (!/ready: queue/.test(out)) {
    if (child.exitCode !== null) throw new Error(`worker exited early (${child.exitCode}): ${out}\n${err}`);
    if (Date.now() > deadline) throw new Error(`worker not ready after 60 s: ${out}\n${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


beforeAll(async () => {
  cli = ensureDistBuilt();
  redis = await startRedisServer();
  model = await loadModel(UNET, { device: 'cpu' });
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  model?.dispose();
  await redis?.stop();
});

describe('scire worker on a real redis-server', () => {
  it(`${JOBS} jobs over 2 worker processes, one SIGKILLed mid-run: each completes once, equal to solo sample()`, async () => {
    const client = await createClient({ connection: redis.url, queue: 'kill' });
    try {
      const completions = new Map<string, number>();
      let stalled = 0;
      client.events.on('completed', ({ jobId }) => completions.set(jobId, (completions.get(jobId) ?? 0) + 1));
      client.events.on('stalled', () => stalled++);
      const opts = ['--concurrency', '8', '--lock-duration', '4000', '--stalled-interval', '2000'];
      const t0 = performance.now();
      const [a, b] = await Promise.all([startWorker('kill', opts), startWorker('kill', opts)]);
      const tReady = performance.now();

      const seeds = Array.from({ length: JOBS }, (_, i) => 1000 + i);
      const ids = await Promise.all(seeds.map((seed) => client.enqueue({ n: 1, seed, output: 'f32' }, { jobId: 'auto' })));
      expect(new Set(ids).size).toBe(JOBS);
      expect(ids[0]).toBe(jobIdFor({ n: 1, seed: 1000, output: 'f32' }));

      await until(`${KILL_AFTER} completions`, () => completions.size >= KILL_AFTER, 120_000);
      a.child.kill('SIGKILL');
      const killed = await a.exited;
      expect(killed.signal).toBe('SIGKILL');
      const doneAtKill = completions.size;

      const tKill = performance.now();
      await until(`all ${JOBS} completions (${completions.size} so far)`, () => completions.size >= JOBS, 150_000);
      const tDone = performance.now();
      const counts = await client.queue.getJobCounts('completed', 'failed', 'active', 'wait', 'delayed');
      expect(counts).toEqual({ completed: JOBS, failed: 0, active: 0, wait: 0, delayed: 0 });
      expect([...completions.values()].every((n) => n === 1)).toBe(true);
      expect(new Set(completions.keys())).toEqual(new Set(ids));
      // The kill happened mid-run: jobs were left locked by the dead worker and taken over.
      expect(stalled).toBeGreaterThan(0);
      expect(doneAtKill).toBeLessThan(JOBS);

      const results = await Promise.all(ids.map((id) => client.result(id, { timeoutMs: 10_000 })));
      const pids = new Set(results.map((r) => r.worker.pid));
      expect(pids).toEqual(new Set([a.child.pid, b.child.pid]));
      const distinct = new Set(results.map((r) => r.bytes.toString('base64')));
      expect(distinct.size).toBe(JOBS);
      expect(results.some((r) => r.timings.batchSize > 1)).toBe(true);

      for (let i = 0; i < JOBS; i++) {
        expect(results[i].seed).toBe(seeds[i]);
        expect(results[i].shape).toEqual([1, 1, 28, 28]);
      }
      const stalledIds = new Set((await Promise.all(ids.map((id) => client.queue.getJob(id)))).filter((j) => (j?.stalledCounter ?? 0) > 0).map((j) => String(j!.id)));
      expect(stalledIds.size).toBeGreaterThan(0);
      const solo = new Sampler({ model, schedule, steps: STEPS });
      let worst = 0;
      for (let i = 0; i < JOBS; i++) {
        const ref = await solo.sample({ shape: [1, 1, 28, 28], seed: seeds[i] });
        worst = Math.max(worst, relErr(results[i].data!, ref.data));
      }
      const tSolo = performance.now();
      const s = (a: number, b: number): string => ((b - a) / 1000).toFixed(1);
      console.log(
        `[scaleout] workers ready ${s(t0, tReady)} s, kill at ${s(tReady, tKill)} s, all done ${s(tReady, tDone)} s, solo check ${s(tDone, tSolo)} s; ${JOBS} jobs: ${doneAtKill} done when worker ${a.child.pid} was killed, ${stalled} stalled job(s) taken over; ` +
          `results from pids ${[...pids].join(', ')}; ${stalledIds.size} job(s) with stalledCounter > 0; worst relative error vs solo over all ${JOBS} jobs ${worst.toExponential(2)}`,
      );
      expect(worst).toBeLessThan(REL_TOL);

      b.child.kill('SIGTERM');
      expect((await b.exited).code).toBe(0);
    } finally {
      await client.close();
    }
  }, 300_000);

  it('bad job data fails at once with the validation message and is not retried', async () => {
    const worker: ScireWorker = await createWorker({
      connection: redis.url,
      queue: 'bad',
      model,
      schedule,
      sampleShape: [1, 28, 28],
      solverOptions: { steps: STEPS },
      concurrency: 4,
      maxSamples: 16,
      progressIntervalMs: 0,
      results: { store: 'auto', inlineMaxBytes: 1000, ttlSeconds: 600 },
    });
    const client = await createClient({ connection: redis.url, queue: 'bad' });
    try {
      // [job data, what the failure reason must say]
      const cases: [unknown, RegExp][] = [
        ['hello', /Expected an object for job data/],
        [{ n: 1, sed: 3 }, /unknown option 'sed'/],
        [{ n: 1, modelType: 'v' }, /unknown option 'modelType'/],
        [{ n: 1, shape: [1, 1, 28, 28] }, /either n or shape.*for shape/],
        [{ n: 0 }, /RangeError: .*for n but received 0/],
        [{ n: 100 }, /at most 16 samples per job.*for n/],
        [{ shape: [1, 3, 28, 28] }, /\[n, 1, 28, 28\] \(the model's sample shape\) for shape/],
        [{ shape: [1, 1, 28, 'x'] }, /for shape\[3\]/],
        [{ n: 1, seed: -1 }, /for seed but received -1/],
        [{ n: 1, seed: 'abc' }, /for seed but received 'abc'/],
        [{ n: 1, steps: 0 }, /for steps/],
        [{ n: 1, solver: 'euler' }, /for solver but received 'euler'/],
        [{ n: 1, solver: 'ddim', order: 3 }, /for order/],
        [{ n: 1, output: 'jpg' }, /one of 'f32', 'npy', 'png' for output/],
        [{ n: 1, cond: [1, 2] }, /for cond/],
        [{ n: 1, tStart: -1 }, /for tStart/],
      ];
      const jobs = await Promise.all(cases.map(([data]) => client.queue.add('sample', data as object, { attempts: 5, backoff: 10 })));
      for (let i = 0; i < cases.length; i++) {
        const reason = await client.result(String(jobs[i].id), { timeoutMs: 60_000 }).then(
          () => 'completed',
          (e: Error) => e.message,
        );
        expect(reason, JSON.stringify(cases[i][0])).toMatch(cases[i][1]);
        const job = await client.queue.getJob(String(jobs[i].id));
        expect(await job!.getState()).toBe('failed');
        expect(job!.attemptsMade, JSON.stringify(cases[i][0])).toBe(1);
      }
      // The client checks the same things before enqueueing what it can check without the model.
      await expect(client.enqueue({ n: 1, sed: 3 } as never)).rejects.toThrow(/unknown option 'sed'/);
      await expect(client.enqueue({ n: 1, output: 'jpg' as never })).rejects.toThrow(/for output/);
      // Good jobs on the same worker still run. A small PNG is stored inline; 3136 bytes of
      // float32 exceed inlineMaxBytes (1000) and go under a result key with a TTL. Progress
      // events arrive (progressIntervalMs 0: every evaluation but the last).
      const progress: unknown[] = [];
      client.events.on('progress', ({ data }) => progress.push(data));
      const png = await client.submit({ n: 2, seed: 5, output: 'png' });
      expect(png.bytes.subarray(1, 4).toString()).toBe('PNG');
      const f32 = await client.submit({ n: 1, seed: 5, output: 'f32' }, { jobId: 'f32-seed-5' });
      const stored = (await client.queue.getJob('f32-seed-5'))!.returnvalue as { encoding: string; key: string; data?: string };
      expect(stored.encoding).toBe('redis-key');
      expect(stored.data).toBeUndefined();
      // redis-cli comes with Debian's redis-server (redis-tools).
      const ttl = spawnSync('redis-cli', ['-p', String(redis.port), 'TTL', stored.key], { encoding: 'utf8' });
      expect(Number(ttl.stdout.trim())).toBeGreaterThan(500);
      const ref = await new Sampler({ model, schedule, steps: STEPS }).sample({ shape: [1, 1, 28, 28], seed: 5 });
      expect(relErr(f32.data!, ref.data)).toBeLessThan(REL_TOL);
      expect(progress).toContainEqual({ nfe: 1, total: STEPS });
      expect(worker.stats()).toMatchObject({ failed: cases.length, completed: 2, active: 0 });
    } finally {
      await client.close();
      await worker.close();
    }
  }, 120_000);

  it('createWorker({ sampler }): job solver options override the sampler\'s; an auto job id runs a request once', async () => {
    const sampler = new Sampler({ model, schedule, steps: STEPS, batching: { maxBatchSize: 8, maxWaitMs: 5 } });
    const worker = await createWorker({ connection: redis.url, queue: 'api', sampler, sampleShape: [1, 28, 28], concurrency: 4 });
    const client = await createClient({ connection: redis.url, queue: 'api' });
    try {
      const request = { n: 2, seed: 77, steps: 3, solver: 'dpmpp' as const, order: 2, output: 'npy' as const };
      const first = await client.submit(request, { jobId: 'auto' });
      const again = await client.submit(request, { jobId: 'auto' });
      expect(again.jobId).toBe(first.jobId);
      expect(again.bytes.equals(first.bytes)).toBe(true);
      expect(worker.stats().completed).toBe(1); // the second submit found the finished job
      expect(first.bytes.subarray(1, 6).toString()).toBe('NUMPY');
      expect(first.nfe).toBe(3);
      const ref = await new Sampler({ model, schedule, steps: 3, solver: 'dpmpp', order: 2 }).sample({ shape: [2, 1, 28, 28], seed: 77 });
      expect(relErr(first.data!, ref.data)).toBeLessThan(REL_TOL);
      // A seed above 2^53 travels as a decimal string and comes back as one.
      const big = await client.submit({ n: 1, seed: '18446744073709551615' });
      expect(big.seed).toBe('18446744073709551615');
      const bigRef = await sampler.sample({ shape: [1, 1, 28, 28], seed: 18446744073709551615n });
      expect(relErr(big.data!, bigRef.data)).toBeLessThan(REL_TOL);
      // `scire submit` passes the solver flags of issue 14 (UniPC variant, final corrector) on to the job.
      const out = path.join(os.tmpdir(), `scire-submit-${process.pid}.npy`);
      const submitted = await promisify(execFile)(
        process.execPath,
        [cli, 'submit', '--redis', redis.url, '--queue', 'api', '-n', '2', '--seed', '8', '--steps', '4', '--solver', 'unipc', '--variant', 'bh2', '--final-corrector', '--out', out],
        { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
      );
      expect(submitted.stdout).toMatch(/2 samples \[1, 28, 28\], NFE 5, seed 8;/);
      const viaCli = decodeNpy(readFileSync(out)).data;
      const unipc = await new Sampler({ model, schedule, steps: 4, solver: 'unipc', variant: 'bh2', finalCorrector: true }).sample({ shape: [2, 1, 28, 28], seed: 8 });
      expect(relErr(viaCli, unipc.data)).toBeLessThan(REL_TOL);
    } finally {
      await client.close();
      await worker.close();
    }
  }, 120_000);

  it('SIGTERM: in-flight jobs finish, the rest stay queued, exit 0 (--devices all falls back to one CPU worker)', async () => {
    const client = await createClient({ connection: redis.url, queue: 'term' });
    try {
      const w = await startWorker('term', ['--devices', 'all', '--concurrency', '3', '--no-batching']);
      expect(w.stderr()).toMatch(/no CUDA device visible .*starting one CPU worker instead/);
      const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => client.enqueue({ n: 1, seed: i, steps: 12 })));
      await until('3 active jobs', async () => (await client.queue.getActiveCount()) === 3, 60_000);
      const active = (await client.queue.getActive()).map((j) => String(j.id));
      w.child.kill('SIGTERM');
      const { code } = await w.exited;
      expect(code, w.stderr()).toBe(0);
      expect(w.stderr()).toMatch(/SIGTERM: no new jobs; finishing \d+ in flight/);
      const states = await Promise.all(ids.map(async (id) => [id, await (await client.queue.getJob(id))!.getState()] as const));
      for (const [id, state] of states) {
        if (active.includes(id)) expect(state, id).toBe('completed');
        else expect(['waiting', 'completed'], id).toContain(state);
      }
      const counts = await client.queue.getJobCounts('completed', 'failed', 'active', 'wait');
      expect(counts.failed).toBe(0);
      expect(counts.active).toBe(0);
      expect(counts.wait).toBeGreaterThan(0);
      expect(counts.completed + counts.wait).toBe(12);
    } finally {
      await client.close();
    }
  }, 120_000);
});
