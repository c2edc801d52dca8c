/**
 * The job data, result encoding and connection parsing of lib/scaleout, without Redis:
 * parseJobData (n / shape, limits, output, JSON arrays), jobIdFor (stable under key order,
 * different for another seed), readStoredResult (f32 / npy round trips, expired keys) and
 * connectionOptions (redis:// and rediss:// URLs, bad URLs); the usage errors of `scire worker`
 * and `scire submit` (exit status 2), and the message when bullmq is not installed.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { encodeNpy } from '../lib/image-io';
import { connectionOptions } from '../lib/scaleout/bullmq';
import { prepareRequest } from '../lib/scaleout/client';
import { jobIdFor, parseJobData } from '../lib/scaleout/job';
import { RESULT_FORMAT, readStoredResult, type StoredResult } from '../lib/scaleout/result';
import { ROOT, ensureDistBuilt } from './support/dist';

const limits = { sampleShape: [1, 28, 28], maxSamples: 64, maxResultBytes: 16 * 1024 * 1024 };

describe('parseJobData', () => {
  it('reads n, shape, seeds, arrays and solver options', () => {
    const a = parseJobData({ n: 3, seed: 7, steps: 6, solver: 'dpmpp', output: 'png' }, limits);
    expect(a.sample.shape).toEqual([3, 1, 28, 28]);
    expect(a.sample.seed).toBe(7);
    expect(a.solver).toEqual({ steps: 6, solver: 'dpmpp' });
    expect(a.output).toBe('png');
    const b = parseJobData({ shape: [2, 1, 28, 28], seed: '18446744073709551615', cond: [1, 2], guidanceScale: 2 }, limits);
    expect(b.sample.seed).toBe(18446744073709551615n);
    expect(b.sample.cond).toEqual(new Float32Array([1, 2]));
    expect(b.output).toBe('f32');
    expect(parseJobData({ seed: '12' }, limits).sample).toMatchObject({ shape: [1, 1, 28, 28], seed: 12 });
  });

  it('refuses data no worker can run, naming the field', () => {
    expect(() => parseJobData({ n: 65 }, limits)).toThrow(/at most 64 samples per job .* for n/);
    expect(() => parseJobData({ shape: [1, 2, 4, 4] }, { ...limits, sampleShape: [2, 4, 4] })).not.toThrow();
    expect(() => parseJobData({ shape: [1, 2, 4, 4], output: 'png' }, { ...limits, sampleShape: [2, 4, 4] })).toThrow(/'png' only for image samples/);
    expect(() => parseJobData({ n: 64 }, { ...limits, maxResultBytes: 1000 })).toThrow(RangeError);
    expect(() => parseJobData({ n: 1 }, { ...limits, sampleShape: undefined })).toThrow(/no sample shape to go with n/);
    expect(() => parseJobData({ n: 1, cond: [1, NaN] }, limits)).toThrow(/for cond\[1\]/);
    expect(() => parseJobData({ n: 1, seed: '1'.repeat(21) }, limits)).toThrow(/for seed/);
    expect(() => parseJobData({ n: 1, seed: '99999999999999999999' }, limits)).toThrow(RangeError);
  });

  it('prepareRequest checks structure and adds a seed', () => {
    const r = prepareRequest({ n: 2, output: 'png' });
    expect(Number.isSafeInteger(r.seed)).toBe(true);
    expect(prepareRequest({ n: 2, seed: 4 }).seed).toBe(4);
    expect(() => prepareRequest({ n: 2, steps: 3, foo: 1 } as never)).toThrow(/unknown option 'foo'/);
  });
});

describe('jobIdFor', () => {
  it('is the same for the same request in any key order, different for another seed', () => {
    const a = jobIdFor({ n: 1, seed: 3, steps: 6, thresholding: { ratio: 0.99, maxVal: 1 } });
    const b = jobIdFor({ thresholding: { maxVal: 1, ratio: 0.99 }, steps: 6, seed: 3, n: 1 });
    expect(a).toBe(b);
    expect(a).toMatch(/^scire-[0-9a-f]{32}$/);
    expect(jobIdFor({ n: 1, seed: 4, steps: 6, thresholding: { ratio: 0.99, maxVal: 1 } })).not.toBe(a);
  });
});

describe('readStoredResult', () => {
  const base = {
    format: RESULT_FORMAT,
    shape: [2, 3],
    seed: 1,
    nfe: 4,
    timings: { queueMs: 0, batchSize: 2, batchRequests: 1, executeMs: 1, totalMs: 1 },
    worker: { host: 'h', pid: 1, device: 'cpu' },
  } as const;
  const data = new Float32Array([1, -2, 3.5, 0, 1e-8, -7]);

  it('round-trips f32 (inline) and npy (under a key)', async () => {
    const f32 = Buffer.from(data.buffer);
    const inline: StoredResult = { ...base, shape: [2, 3], output: 'f32', bytes: f32.length, encoding: 'base64', data: f32.toString('base64') };
    const r = await readStoredResult('j1', JSON.stringify(inline), async () => null);
    expect(r.data).toEqual(data);
    expect(r.jobId).toBe('j1');
    const npy = encodeNpy(data, [2, 3]);
    const keyed: StoredResult = { ...base, shape: [2, 3], output: 'npy', bytes: npy.length, encoding: 'redis-key', key: 'k', ttlSeconds: 5 };
    const r2 = await readStoredResult('j2', keyed, async (k) => (k === 'k' ? npy : null));
    expect(r2.data).toEqual(data);
    expect(r2.bytes.equals(npy)).toBe(true);
    await expect(readStoredResult('j3', { ...keyed, key: 'gone' }, async () => null)).rejects.toThrow(/has expired \(ttl 5 s\)/);
    await expect(readStoredResult('j4', { hello: 1 }, async () => null)).rejects.toThrow(/not a scire-result\/1 result/);
  });
});

describe('connectionOptions', () => {
  it('parses Redis URLs', () => {
    expect(connectionOptions('redis://127.0.0.1:6390')).toEqual({ host: '127.0.0.1', port: 6390 });
    expect(connectionOptions('rediss://u:p%40ss@cache.internal/3')).toEqual({
      host: 'cache.internal', port: 6379, username: 'u', password: 'p@ss', db: 3, tls: {},
    });
    expect(connectionOptions({ host: 'x', port: 1 })).toEqual({ host: 'x', port: 1 });
    expect(() => connectionOptions('http://x')).toThrow(/redis:\/\/ or rediss:\/\//);
    expect(() => connectionOptions(6379)).toThrow(TypeError);
    expect(() => connectionOptions('redis://x/abc')).toThrow(/database number/);
  });
});

describe('scire worker / submit command lines (dist/cli.js, no Redis needed)', () => {
  const run = (args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [ensureDistBuilt(), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

  it('prints the help, and exits 2 with the usage on bad flags', () => {
    const help = run(['worker', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: scire worker/);
    expect(run(['submit', '-h']).stdout).toMatch(/Usage: scire submit/);
    const bad: [string[], RegExp][] = [
      [['worker', '--concurrency', '0'], /--concurrency must be an integer >= 1, got '0'/],
      [['worker', '--device', 'gpu'], /--device must be cpu, cuda or cuda:N/],
      [['worker', '--device', 'cpu', '--devices', 'all'], /give --device or --devices, not both/],
      [['worker', '--results', 'disk'], /--results must be one of auto \| inline \| key/],
      [['worker', '--bogus'], /unknown flag '--bogus'/],
      [['submit', '--out', 'x.jpg'], /--out must name a .png, .npy or .f32 file/],
      [['submit', '-n', '2', '--shape', '2,1,28,28'], /give -n or --shape, not both/],
      [['submit', '--seed', '1.5'], /--seed must be a non-negative integer/],
      // solver names are checked before anything is sent (no Redis is running here)
      [['submit', '--solver', 'euler'], /--solver must be one of scire \| ddim \| dpmpp \| unipc, got 'euler'/],
      [['submit', '--variant', 'bh3'], /--variant must be one of bh1 \| bh2, got 'bh3'/],
      [['submit', '--skip', 'linear'], /--skip must be one of .*, got 'linear'/],
      [['submit', '--nfe', '8'], /unknown flag '--nfe' \(did you mean --steps\?\)/],
    ];
    for (const [args, message] of bad) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).toMatch(/Usage: scire (worker|submit)/);
    }
  }, 120_000);

  it('without bullmq installed, says how to install it', () => {
    // Resolution of 'bullmq' fails as it would without the package.
    const hide = `const M = require('module'); const r = M._resolveFilename;
      M._resolveFilename = function (req, ...a) { if (req === 'bullmq') { const e = new Error("Cannot find module 'bullmq'"); e.code = 'MODULE_NOT_FOUND'; throw e; } return r.call(this, req, ...a); };`;
    ensureDistBuilt();
    const r = spawnSync(
      process.execPath,
      ['-e', `${hide} require('./dist/scaleout/bullmq.js').loadBullMQ()`],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/optional peer dependency bullmq .* npm install bullmq@5/);
  }, 120_000);
});
