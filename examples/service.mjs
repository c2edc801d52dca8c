#!/usr/bin/env node
// An HTTP sampling service on the bundled Fashion-MNIST model, with the serving features of
// scire-solver: a bounded per-model queue, dynamic batching of concurrent requests, request
// priorities, abort on client disconnect and a metrics route.
//
//   node examples/service.mjs [--port 8080] [--host 127.0.0.1]
//   curl -o grid.png 'http://127.0.0.1:8080/sample?n=16&seed=3'
//   curl 'http://127.0.0.1:8080/sample?n=1&seed=7&format=json'
//   curl 'http://127.0.0.1:8080/metrics'
//
// Routes
//   GET /sample   n (1..MAX_N, default 1), seed (integer 0..2^53-1, default random),
//                 priority (integer -100..100, default 0; higher is served first),
//                 format ('png' (default): a grid of the samples, 'json': the raw float32 data, base64)
//   GET /metrics  model.stats() (queue length, running batch, totals, busy time) and the settings
//   GET /healthz  200 'ok'
// Errors are JSON { error: { code, message, field? } }: 400 for a bad parameter (field names it),
// 503 with Retry-After when the queue is full, 404 / 405 for other routes and methods.
//
// Settings (flags override the environment):
//   --port / PORT (8080; 0 picks a free port), --host / HOST (127.0.0.1: loopback only; use
//   0.0.0.0 to listen on every interface, behind your own access control),
//   --model / SCIRE_MODEL (models/fmnist_unet.pt of the package), --device / SCIRE_DEVICE (cpu),
//   --steps / SCIRE_STEPS (12), --max-queue / SCIRE_MAX_QUEUE (64),
//   --max-batch / SCIRE_MAX_BATCH (64), --max-wait-ms / SCIRE_MAX_WAIT_MS (2), --max-n / SCIRE_MAX_N (64).
// On start it prints one line, `listening on http://HOST:PORT`, to stdout. SIGINT / SIGTERM stop
// it: requests in flight are aborted, the model is disposed.
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { loadModel, NoiseSchedule, Sampler, toImageGrid, encodePng } from 'scire-solver';

const require = createRequire(import.meta.url);
const PACKAGE_DIR = path.dirname(require.resolve('scire-solver/package.json'));

function settings() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      model: { type: 'string' },
      device: { type: 'string' },
      steps: { type: 'string' },
      'max-queue': { type: 'string' },
      'max-batch': { type: 'string' },
      'max-wait-ms': { type: 'string' },
      'max-n': { type: 'string' },
    },
  });
  const env = process.env;
  const int = (name, text, min, max) => {
    const v = Number(text);
    if (!Number.isInteger(v) || v < min || v > max) {
      console.error(`service: ${name} must be an integer in [${min}, ${max}], got '${text}'`);
      process.exit(2);
    }
    return v;
  };
  return {
    port: int('port', values.port ?? env.PORT ?? '8080', 0, 65535),
    host: values.host ?? env.HOST ?? '127.0.0.1',
    model: values.model ?? env.SCIRE_MODEL ?? path.join(PACKAGE_DIR, 'models', 'fmnist_unet.pt'),
    device: values.device ?? env.SCIRE_DEVICE ?? 'cpu',
    steps: int('steps', values.steps ?? env.SCIRE_STEPS ?? '12', 1, 1000),
    maxQueue: int('max-queue', values['max-queue'] ?? env.SCIRE_MAX_QUEUE ?? '64', 1, 1e6),
    maxBatch: int('max-batch', values['max-batch'] ?? env.SCIRE_MAX_BATCH ?? '64', 1, 4096),
    maxWaitMs: int('max-wait-ms', values['max-wait-ms'] ?? env.SCIRE_MAX_WAIT_MS ?? '2', 0, 10_000),
    maxN: int('max-n', values['max-n'] ?? env.SCIRE_MAX_N ?? '64', 1, 4096),
  };
}

/** A 400 answer naming the bad query parameter. */
class BadRequest extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

function intParam(query, field, { min, max, fallback }) {
  const text = query.get(field);
  if (text === null) return fallback;
  if (!/^-?\d+$/.test(text)) throw new BadRequest(field, `${field} must be an integer in [${min}, ${max}], got '${text}'`);
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new BadRequest(field, `${field} must be an integer in [${min}, ${max}], got '${text}'`);
  }
  return v;
}

const PARAMS = ['n', 'seed', 'priority', 'format'];

/** The checked request: { n, seed, priority, format }. */
function parseSampleQuery(query, maxN) {
  for (const key of query.keys()) {
    if (!PARAMS.includes(key)) throw new BadRequest(key, `unknown parameter '${key}' (allowed: ${PARAMS.join(', ')})`);
  }
  const format = query.get('format') ?? 'png';
  if (format !== 'png' && format !== 'json') throw new BadRequest('format', `format must be 'png' or 'json', got '${format}'`);
  return {
    n: intParam(query, 'n', { min: 1, max: maxN, fallback: 1 }),
    seed: intParam(query, 'seed', { min: 0, max: Number.MAX_SAFE_INTEGER, fallback: undefined }),
    priority: intParam(query, 'priority', { min: -100, max: 100, fallback: 0 }),
    format,
  };
}

function sendJson(res, status, body, headers = {}) {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body, (_k, v) => (v === Infinity ? null : v));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res, status, code, message, extra = {}) {
  sendJson(res, status, { error: { code, message, ...extra } }, status === 503 ? { 'retry-after': '1' } : {});
}

async function main() {
  const cfg = settings();
  const model = await loadModel(cfg.model, { device: cfg.device, maxQueue: cfg.maxQueue });
  // The bundled model's schedule: DDPM, linear betas 1e-4..0.02, N = 1000 (models/fmnist_unet.json).
  const schedule = NoiseSchedule.discrete({ kind: 'linear', betaStart: 1e-4, betaEnd: 0.02, N: 1000 });
  const sampler = new Sampler({
    model,
    schedule,
    steps: cfg.steps,
    batching: { maxBatchSize: cfg.maxBatch, maxWaitMs: cfg.maxWaitMs },
  });
  const inFlight = new Set();

  async function handleSample(req, res, query) {
    let params;
    try {
      params = parseSampleQuery(query, cfg.maxN);
    } catch (e) {
      if (e instanceof BadRequest) return sendError(res, 400, 'ERR_BAD_REQUEST', e.message, { field: e.field });
      throw e;
    }
    const abort = new AbortController();
    inFlight.add(abort);
    // The client went away before the answer: cancel the sample (queued: it never runs;
    // running: its part of the batch is dropped).
    res.on('close', () => {
      if (!res.writableFinished) abort.abort(new Error('client disconnected'));
    });
    try {
      const out = await sampler.sample({
        shape: [params.n, 1, 28, 28],
        seed: params.seed,
        priority: params.priority,
        signal: abort.signal,
      });
      const headers = {
        'x-seed': String(out.seed),
        'x-nfe': String(out.nfe),
        'x-queue-ms': out.timings.queueMs.toFixed(1),
        'x-batch-size': String(out.timings.batchSize),
      };
      if (params.format === 'json') {
        return sendJson(
          res,
          200,
          {
            shape: out.shape,
            seed: out.seed,
            nfe: out.nfe,
            timings: out.timings,
            dtype: 'float32',
            data: Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength).toString('base64'),
          },
          headers,
        );
      }
      const png = encodePng(toImageGrid(out.data, out.shape));
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length, ...headers });
      res.end(png);
    } catch (e) {
      if (e.name === 'AbortError') return; // the client is gone (or we are shutting down)
      if (e.code === 'ERR_SCIRE_QUEUE_FULL') return sendError(res, 503, e.code, e.message);
      // A TypeError / RangeError names the option it refuses; anything else is ours.
      if (e instanceof TypeError || e instanceof RangeError) return sendError(res, 400, 'ERR_BAD_REQUEST', e.message);
      console.error(`service: sample failed: ${e.stack ?? e}`);
      return sendError(res, 500, e.code ?? 'ERR_INTERNAL', e.message);
    } finally {
      inFlight.delete(abort);
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    if (!['/sample', '/metrics', '/healthz'].includes(route)) return sendError(res, 404, 'ERR_NOT_FOUND', `no route ${route}`);
    if (req.method !== 'GET') return sendError(res, 405, 'ERR_METHOD', `${route} takes GET, not ${req.method}`);
    if (route === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('ok');
    }
    if (route === '/metrics') {
      return sendJson(res, 200, {
        model: model.stats(),
        inFlight: inFlight.size,
        settings: { steps: cfg.steps, maxQueue: cfg.maxQueue, maxBatch: cfg.maxBatch, maxWaitMs: cfg.maxWaitMs, device: cfg.device },
      });
    }
    handleSample(req, res, url.searchParams).catch((e) => {
      console.error(`service: ${e.stack ?? e}`);
      sendError(res, 500, 'ERR_INTERNAL', String(e.message ?? e));
    });
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    console.error(`service: ${signal}: stopping`);
    server.close();
    for (const a of inFlight) a.abort(new Error('service shutting down'));
    server.closeAllConnections?.();
    model.dispose();
    process.exitCode = 0;
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  server.listen(cfg.port, cfg.host, () => {
    const { address, port } = server.address();
    console.log(`listening on http://${address}:${port}`);
  });
}

main().catch((e) => {
  console.error(`service: ${e.stack ?? e}`);
  process.exit(1);
});
