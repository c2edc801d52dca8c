/**
 * examples/service.mjs as a user runs it: a child process on a free loopback port with the
 * bundled UNet (6 steps, batching on, queue limit 24). Checks concurrent requests (valid
 * payloads), request validation (400 naming the field), the queue limit (503 with
 * ERR_SCIRE_QUEUE_FULL), abort of a request whose client disconnects (seen in /metrics) and
 * a clean stop on SIGTERM. Needs dist/ (built by the bootstrap: the example imports 'scire-solver').
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..');
const SERVICE = path.join(ROOT, 'examples', 'service.mjs');
const MAX_QUEUE = 24;

let child: ChildProcessWithoutNullStreams;
let base = '';
let stderr = '';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(route: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(base + route, { method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const json = (r: Reply): Record<string, any> => JSON.parse(r.body.toString('utf8'));

async function metrics(): Promise<Record<string, any>> {
  return json(await get('/metrics'));
}

async function waitFor(what: string, check: (m: Record<string, any>) => boolean, timeoutMs = 60_000): Promise<Record<string, any>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const m = await metrics();
    if (check(m)) return m;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last metrics ${JSON.stringify(m)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  child = spawn(process.execPath, [SERVICE, '--port', '0', '--steps', '6', '--max-queue', String(MAX_QUEUE), '--max-wait-ms', '5', '--max-n', '256'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1' },
  });
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  base = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`service exited with ${code}: ${stderr}`)));
  });
}, 60_000);

afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
});

describe('examples/service.mjs', () => {
  it('answers /healthz and serves 24 concurrent requests with valid payloads, batched', async () => {
    expect((await get('/healthz')).status).toBe(200);
    const replies = await Promise.all(Array.from({ length: 24 }, (_, i) => get(`/sample?n=1&seed=${i}&format=json`)));
    const seen = new Set<string>();
    replies.forEach((r, i) => {
      expect(r.status, r.body.toString()).toBe(200);
      const body = json(r);
      expect(body).toMatchObject({ shape: [1, 1, 28, 28], seed: i, nfe: 6, dtype: 'float32' });
      const bytes = Buffer.from(body.data, 'base64');
      expect(bytes.length).toBe(784 * 4);
      const data = new Float32Array(bytes.buffer, bytes.byteOffset, 784);
      expect(data.every((v) => Number.isFinite(v) && Math.abs(v) < 10)).toBe(true);
      seen.add(body.data);
      expect(body.timings.batchSize).toBeGreaterThanOrEqual(1);
    });
    expect(seen.size).toBe(24); // 24 seeds, 24 different images
    const m = await metrics();
    expect(m.model.totals.completed).toBe(24);
    expect(m.model.totals.batches).toBeLessThan(24); // requests were merged

    const png = await get('/sample?n=4&seed=3');
    expect(png.status).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.body.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.headers['x-seed']).toBe('3');
  }, 180_000);

  it('rejects bad requests with 400 naming the field, and unknown routes and methods', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['/sample?n=0', 'n', /n must be an integer in \[1, 256\], got '0'/],
      ['/sample?n=abc', 'n', /got 'abc'/],
      ['/sample?n=257', 'n', /\[1, 256\]/],
      ['/sample?seed=-1', 'seed', /seed must be an integer/],
      ['/sample?seed=1.5', 'seed', /got '1.5'/],
      ['/sample?priority=1000', 'priority', /\[-100, 100\]/],
      ['/sample?format=gif', 'format', /format must be 'png' or 'json'/],
      ['/sample?steps=3', 'steps', /unknown parameter 'steps'/],
    ];
    for (const [route, field, message] of cases) {
      const r = await get(route);
      expect(r.status, route).toBe(400);
      expect(json(r).error).toMatchObject({ code: 'ERR_BAD_REQUEST', field });
      expect(json(r).error.message).toMatch(message);
    }
    expect((await get('/sample', 'POST')).status).toBe(405);
    expect((await get('/nope')).status).toBe(404);
    expect((await metrics()).model.totals.submitted).toBe(25); // none of them reached the queue
  });

  it('answers 503 ERR_SCIRE_QUEUE_FULL past the queue limit, and aborts the sample of a client that disconnects', async () => {
    // A long request (256 samples) occupies the model...
    const blocker = http.request(`${base}/sample?n=256&seed=0&format=json`, { agent: false });
    const blockerClosed = new Promise<void>((resolve) => blocker.on('close', () => resolve()));
    blocker.on('error', () => undefined); // we destroy it below
    blocker.end();
    await waitFor('the blocker to run', (m) => m.model.running !== null);
    // ...while 25 more arrive: 24 wait, one is refused.
    const queued = Array.from({ length: MAX_QUEUE + 1 }, (_, i) => get(`/sample?n=1&seed=${100 + i}&format=json`));
    const m1 = await waitFor('the queue to fill', (m) => m.model.totals.rejected === 1 && m.model.queueLength === MAX_QUEUE);
    expect(m1.model.running).toMatchObject({ requests: 1, size: 256 });
    expect(m1.model.maxQueue).toBe(MAX_QUEUE);
    // The client of the long request goes away: its sample is aborted (it ran alone, so the solve stops).
    blocker.destroy();
    await blockerClosed;
    const m2 = await waitFor('the abort', (m) => m.model.totals.aborted === 1);
    expect(m2.model.totals.aborted).toBe(1);
    const replies = await Promise.all(queued);
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(MAX_QUEUE);
    const full = replies.filter((r) => r.status === 503);
    expect(full).toHaveLength(1);
    expect(full[0].headers['retry-after']).toBe('1');
    expect(json(full[0]).error.code).toBe('ERR_SCIRE_QUEUE_FULL');
    expect(json(full[0]).error.message).toMatch(/24 request\(s\) waiting, maxQueue 24/);
    const m3 = await metrics();
    expect(m3.model.totals).toMatchObject({ completed: 24 + 1 + MAX_QUEUE, aborted: 1, rejected: 1, failed: 0 });
    expect(m3.model.queueLength).toBe(0);
    expect(m3.model.running).toBeNull();
  }, 240_000);

  it('stops on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/Error|Warning/);
  }, 60_000);
});
