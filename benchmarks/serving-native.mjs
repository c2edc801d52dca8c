#!/usr/bin/env node
/**
 * The native side of serving (issue 10), measured on the CPU with the bundled UNet:
 *
 *   node benchmarks/serving-native.mjs [--requests 8] [--steps 6] [--forwards 8] [--batch 16]
 *
 *  1. forward time of the UNet at [batch, 1, 28, 28] through model.forward (the model's own
 *     thread; before issue 10 a libuv pool thread), and, when the loaded addon has the
 *     testing entries (the default here: build/Release/scire_testing.node, a superset of
 *     scire.node), the same forward on the JS thread (model.benchForward with onJsThread) and
 *     the intra-op thread counts.
 *  2. the readFile probe: fs.promises.readFile of a small file while `requests` batch-1
 *     samples (6 steps) are queued on / running in the UNet's thread.
 *  3. a sample on a second model (the 16-d Gaussian-mixture fixture) while the UNet is busy,
 *     against the same sample when everything is idle.
 * Medians; timings on a loaded 2-core machine are noisy, compare within one run.
 */
import { createRequire } from 'module';
import { promises as fsp } from 'fs';
import path from 'path';
import { fileURLToPath } from 'url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.env.SCIRE_NATIVE_PATH ??= path.join(root, 'build/Release/scire_testing.node');
const { nativeBinding, nativeBindingPath } = require(path.join(root, 'dist/native.js'));
const { compilePlan, NoiseSchedule, randn } = require(path.join(root, 'dist/index.js'));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const REQUESTS = opt('requests', 8);
const STEPS = opt('steps', 6);
const FORWARDS = opt('forwards', 8);
const BATCH = opt('batch', 16);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const now = () => performance.now();
const fmt = (ms) => `${ms.toFixed(1)} ms`;

const binding = nativeBinding();
console.log(`# serving, native side (addon ${nativeBindingPath()}; LibTorch ${binding.buildInfo().torchVersion})`);
const unet = await binding.loadModel(path.join(root, 'models/fmnist_unet.pt'), { device: 'cpu', dtype: 'float32' });
const gmm = await binding.loadModel(path.join(root, 'test/fixtures/models/gmm_D16_discrete.pt'), { device: 'cpu', dtype: 'float32' });
const schedule = NoiseSchedule.discrete({ kind: 'linear' });
const plan = compilePlan({ schedule, steps: STEPS });

// 1. forward time
const shape = [BATCH, 1, 28, 28];
const x = randn(shape, 1);
await unet.forward(x, shape, 500); // warm-up (TorchScript profiling runs)
await unet.forward(x, shape, 500);
const owner = [];
for (let i = 0; i < FORWARDS; i++) {
  const t0 = now();
  await unet.forward(x, shape, 500);
  owner.push(now() - t0);
}
console.log(`forward [${shape}] on the model's thread: median ${fmt(median(owner))} (${FORWARDS} runs)`);
if (binding.buildInfo().testing === true) {
  const js = await unet.benchForward({ shape, iters: FORWARDS, onJsThread: true });
  const own = await unet.benchForward({ shape, iters: FORWARDS });
  console.log(
    `forward [${shape}] benchForward: JS thread ${fmt(js.eagerMs)} (${js.threads} intra-op threads), ` +
      `model thread ${fmt(own.eagerMs)} (${own.threads} intra-op threads)`,
  );
}

// 3a. the second model alone
const gShape = [1, 16];
const gX = randn(gShape, 3);
const idle = [];
for (let i = 0; i < 5; i++) {
  const t0 = now();
  await gmm.execute(plan, { x: gX, shape: gShape });
  idle.push(now() - t0);
}

// 2 + 3b. load on the UNet, probes meanwhile
const one = [1, 1, 28, 28];
const t0 = now();
const load = Array.from({ length: REQUESTS }, (_, i) => unet.execute(plan, { x: randn(one, 100 + i), shape: one }));
await new Promise((r) => setTimeout(r, 20));
const probes = [];
const second = [];
const small = path.join(root, 'package.json');
// The two probes start together while the queue is full, then again every 200 ms.
const timed = async (fn) => {
  const t = now();
  await fn();
  return now() - t;
};
for (let i = 0; i < 5; i++) {
  const [p, s] = await Promise.all([timed(() => fsp.readFile(small)), timed(() => gmm.execute(plan, { x: gX, shape: gShape }))]);
  probes.push(p);
  second.push(s);
  await new Promise((r) => setTimeout(r, 200));
}
await Promise.all(load);
const loadMs = now() - t0;
console.log(`${REQUESTS} concurrent batch-1 UNet samples (${STEPS} steps) took ${fmt(loadMs)}`);
console.log(`readFile of package.json during the load: first ${fmt(probes[0])}, median ${fmt(median(probes))}, max ${fmt(Math.max(...probes))}`);
console.log(
  `sample on a second model (gmm D16, ${plan.nfe} NFE): idle median ${fmt(median(idle))}, ` +
    `while the UNet is busy: first ${fmt(second[0])}, median ${fmt(median(second))}, max ${fmt(Math.max(...second))}`,
);
unet.dispose();
gmm.dispose();
