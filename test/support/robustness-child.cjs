// Child process of test/robustness.test.ts, run on the compiled package (dist/):
//
//   node robustness-child.cjs crash-prone          requests that used to abort V8 or exhaust
//                                                  memory (issue 12, items 1 and 2; array-sizing
//                                                  arguments of public helpers)
//   node --expose-gc robustness-child.cjs soak '{"samples":5000,...}'
//                                                  many small samples with random aborts and
//                                                  concurrency; memory and handles before/after
//
// A regression that crashes the process (SIGABRT, heap exhaustion) then fails the test through
// the exit status instead of killing vitest. Prints one JSON object on the last stdout line.
'use strict';
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const lib = require(path.join(ROOT, 'dist', 'index.js'));
const { Sampler, NoiseSchedule, loadModel, compilePlan } = lib;
const { prng } = require('./prng.cjs');
const GMM = path.join(ROOT, 'test', 'fixtures', 'models', 'gmm_D16_discrete.pt');


const errorInfo = (e) => ({
  name: e && e.name,
  code: e && e.code,
  message: String(e && e.message),
  ctor: e && e.constructor && e.constructor.name,
  // ERR_SCIRE_TOO_LARGE's numbers
  requestedElements: e && e.requestedElements,
  requestedBytes: e && e.requestedBytes,
  limitElements: e && e.limitElements,
  freeBytes: e && e.freeBytes,
  device: e && e.device,
});

/** Largest event-loop stall seen while `fn` runs (a 5 ms interval timer measures it). */
async function withLagMonitor(fn) {
  let last = performance.now();
  let maxLag = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last);
    last = now;
  }, 5);
  try {
    const value = await fn();
    return { value, maxLagMs: maxLag };
  } finally {
    clearInterval(timer);
  }
}

async function crashProne() {
  const schedule = NoiseSchedule.discrete({ kind: 'linear' });
  const cases = [];
  const record = async (name, fn) => {
    const t0 = performance.now();
    const { value, maxLagMs } = await withLagMonitor(async () => {
      try {
        await fn();
        return { resolved: true };
      } catch (e) {
        return { error: errorInfo(e) };
      }
    });
    cases.push({ name, ...value, ms: performance.now() - t0, maxLagMs });
  };
  const duck = { info: { device: 'cpu', dtype: 'float32', numInputs: 2 }, execute: async () => ({}) };
  await record('Sampler steps 1e9', () => new Sampler({ model: duck, schedule, steps: 1e9 }));
  await record('compilePlan steps 1e6', () => compilePlan({ schedule, steps: 1e6 }));
  const model = await loadModel(GMM);
  const sampler = new Sampler({ model, schedule, steps: 4 });
  await record('sample shape [1e6, 1, 28, 28]', () => sampler.sample({ shape: [1e6, 1, 28, 28], seed: 0 }));
  const big = await loadModel(GMM, { maxElements: 2 ** 31 - 1 });
  await record('sample 2^31 - 1 elements (maxElements at its bound)', () =>
    new Sampler({ model: big, schedule, steps: 4 }).sample({ shape: [2 ** 31 - 1], seed: 0 }),
  );
  await record('sample shape [1e300, 1e300]', () => sampler.sample({ shape: [1e300, 1e300], seed: 0 }));
  // Public helpers that size JS arrays from their arguments (each aborted V8 before).
  await record('timeSteps n 1e9', () => lib.timeSteps(schedule, 'nsr', 1, 0.001, 1e9));
  await record('checkPlan numRegs 1e9', () => lib.checkPlan({ ...compilePlan({ schedule, steps: 3 }), numRegs: 1e9 }));
  await record('discrete schedule N 1e9', () => NoiseSchedule.discrete({ kind: 'linear', N: 1e9 }));
  return { cases, rssMB: process.memoryUsage().rss / 2 ** 20 };
}

function settle() {
  return new Promise((resolve) => setTimeout(resolve, 50));
}

function snapshot() {
  if (global.gc) {
    global.gc();
    global.gc();
  }
  return {
    rss: process.memoryUsage().rss,
    handles: process._getActiveHandles().length,
    resources: process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').sort(),
  };
}

async function soak(args) {
  const { samples = 5000, concurrency = 8, abortRate = 0.1, seed = 1, warmup = 500 } = args;
  const random = prng(seed);
  const schedule = NoiseSchedule.discrete({ kind: 'linear' });
  const model = await loadModel(GMM);
  const samplers = [
    new Sampler({ model, schedule, steps: 5 }),
    new Sampler({ model, schedule, solver: 'dpmpp', steps: 4 }),
    new Sampler({ model, schedule, solver: 'ddim', steps: 3 }),
  ];
  const stats = { completed: 0, aborted: 0, unexpected: [], nonFinite: 0, steps: 0 };
  async function one(i) {
    const sampler = samplers[Math.floor(random() * samplers.length)];
    const batch = 1 + Math.floor(random() * 4);
    const options = { shape: [batch, 16], seed: i };
    let timer;
    const roll = random();
    if (roll < abortRate) {
      const controller = new AbortController();
      options.signal = controller.signal;
      if (roll < abortRate / 10) controller.abort();
      else timer = setTimeout(() => controller.abort(), Math.floor(random() * 3));
    }
    if (random() < 0.3) options.onStep = () => stats.steps++;
    try {
      const out = await sampler.sample(options);
      if (out.data.length !== batch * 16 || !out.data.every(Number.isFinite)) stats.nonFinite++;
      stats.completed++;
    } catch (e) {
      if (e && e.name === 'AbortError') stats.aborted++;
      else if (stats.unexpected.length < 5) stats.unexpected.push(errorInfo(e));
      else stats.unexpected.length++;
    } finally {
      clearTimeout(timer);
    }
  }

  // A pool of `concurrency` workers drawing sample indices [from, to).
  async function run(from, to) {
    let next = from;
    const worker = async () => {
      for (let i = next++; i < to; i = next++) await one(i);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  const t0 = performance.now();
  await run(0, warmup); // first calls: LibTorch's lazy allocations, JIT, the allocator's pools
  await settle();
  const before = snapshot();
  await run(warmup, samples);
  await settle();
  const after = snapshot();
  return { ...stats, samples, concurrency, warmup, seconds: (performance.now() - t0) / 1000, before, after };
}

async function main() {
  const [mode, json] = process.argv.slice(2);
  const args = json ? JSON.parse(json) : {};
  const result = mode === 'soak' ? await soak(args) : mode === 'crash-prone' ? await crashProne() : undefined;
  if (!result) throw new Error(`unknown mode ${mode}`);
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (e) => {
    process.stderr.write(`robustness-child: ${e && e.stack}\n`);
    process.exitCode = 1;
  },
);
