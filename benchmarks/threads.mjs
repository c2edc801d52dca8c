#!/usr/bin/env node
/**
 * LibTorch intra-op threads and the OpenMP wait policy, on the CPU with the bundled UNet:
 *
 *   node benchmarks/threads.mjs [--reps 5] [--batch 8] [--steps 6] [--load 0,2] [--out FILE.md]
 *
 * For each background load (L busy-looping processes, each in its own session, standing in for
 * the other tenants of a shared machine) and each configuration (intra-op threads 1 or 2, and
 * the OpenMP wait policy: libgomp's default, ACTIVE, a short GOMP_SPINCOUNT, or PASSIVE = what
 * scire-solver sets unless the environment says otherwise), a fresh child
 * process loads the model, warms up with one sample, then times one sample() call of
 * [batch, 1, 28, 28] with `steps` steps and exits; `reps` such children per configuration,
 * configurations in turns (order alternating per rep), only one child alive at a time (an idle
 * child whose OpenMP threads spin would load the machine for the others). Prints medians (and min/max) and the ratio to
 * 1 thread PASSIVE under the same load.
 */
import { spawn, spawnSync } from 'child_process';
import { writeFileSync } from 'fs';
import { cpus, loadavg } from 'os';
import path from 'path';
import { fileURLToPath } from 'url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const REPS = Number(opt('reps', '5'));
const BATCH = Number(opt('batch', '8'));
const STEPS = Number(opt('steps', '6'));
const LOADS = opt('load', '0,2').split(',').map(Number);
const OUT = opt('out', '');
for (const [k, v] of [['reps', REPS], ['batch', BATCH], ['steps', STEPS]]) {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${k} must be a positive integer (got ${opt(k)})`);
}
if (LOADS.some((l) => !Number.isInteger(l) || l < 0 || l > 64)) throw new RangeError(`--load must list integers in [0, 64] (got ${opt('load')})`);

// policy: OMP_WAIT_POLICY ('' = unset: libgomp's own default, idle threads spin for a while
// (GOMP_SPINCOUNT 300000) before they sleep); spin: GOMP_SPINCOUNT when given.
const CONFIGS = [
  { threads: 1, policy: 'PASSIVE' },
  { threads: 2, policy: '' },
  { threads: 2, policy: 'ACTIVE' },
  { threads: 2, policy: '', spin: '10000' },
  { threads: 2, policy: 'PASSIVE' },
];
const label = (c) => (c.policy || 'unset') + (c.spin ? `, GOMP_SPINCOUNT=${c.spin}` : '');

/** One child: load, warm up, time one sample() (the child is reused across reps via stdin lines). */
const CHILD = `
const s = require(${JSON.stringify(path.join(root, 'dist/index.js'))});
const readline = require('readline');
(async () => {
  const model = await s.loadModel(${JSON.stringify(path.join(root, 'models/fmnist_unet.pt'))});
  const sampler = new s.Sampler({ model, schedule: s.NoiseSchedule.discrete({ kind: 'linear' }), steps: ${STEPS}, preset: 'none' });
  await sampler.sample({ shape: [${BATCH}, 1, 28, 28], seed: 0 });
  process.stdout.write('ready\\n');
  let seed = 1;
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line !== 'go') break;
    const t0 = performance.now();
    await sampler.sample({ shape: [${BATCH}, 1, 28, 28], seed: seed++ });
    process.stdout.write((performance.now() - t0).toFixed(1) + '\\n');
  }
  model.dispose();
})();
`;

function startChild(c) {
  const env = { ...process.env, SCIRE_INTRA_OP_THREADS: String(c.threads), OMP_WAIT_POLICY: c.policy };
  // '' is not "unset" for scire-solver's loader (it sets PASSIVE when the variable is missing or
  // empty), so the unset case is spelled out as the value libgomp reads as its default.
  if (c.policy === '') env.OMP_WAIT_POLICY = 'unset-default';
  if (c.spin) env.GOMP_SPINCOUNT = c.spin;
  else delete env.GOMP_SPINCOUNT;
  const child = spawn(process.execPath, ['-e', CHILD], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const next = () => new Promise((resolve, reject) => {
    if (lines.length) return resolve(lines.shift());
    waiters.push(resolve);
    child.once('exit', (code) => reject(new Error(`child (${c.threads} threads, ${label(c)}) exited with ${code}`)));
  });
  return { child, next };
}

function startLoad(n) {
  return Array.from({ length: n }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { detached: true, stdio: 'ignore' }));
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const rows = [];
const started = new Date().toISOString();
const la0 = loadavg().map((x) => x.toFixed(1)).join(' / ');
for (const load of LOADS) {
  const hogs = startLoad(load);
  try {
    // One child at a time: an idle child with ACTIVE threads keeps spinning and would load the
    // machine for the others. Each rep starts a fresh child per configuration (alternating order).
    const children = CONFIGS.map((c) => ({ c, times: [] }));
    for (let rep = 0; rep < REPS; rep++) {
      for (const ch of rep % 2 ? [...children].reverse() : children) {
        const run = startChild(ch.c);
        const r = await run.next();
        if (r !== 'ready') throw new Error(`child said ${r}`);
        run.child.stdin.write('go\n');
        ch.times.push(Number(await run.next()));
        const exited = new Promise((resolve) => run.child.once('exit', resolve));
        run.child.stdin.end();
        await exited;
      }
    }
    const base = median(children[0].times);
    for (const ch of children) {
      const m = median(ch.times);
      rows.push({ load, threads: ch.c.threads, policy: label(ch.c), median: m, min: Math.min(...ch.times), max: Math.max(...ch.times), ratio: m / base });
      console.log(`load ${load}: ${ch.c.threads} thread(s) ${label(ch.c)}: median ${m.toFixed(0)} ms (${ch.times.map((t) => t.toFixed(0)).join(', ')}), ${(m / base).toFixed(2)}x 1 thread`);
    }
  } finally {
    for (const h of hogs) h.kill('SIGKILL');
  }
}

const lines = [
  '# Intra-op threads and the OpenMP wait policy (cpu, bundled UNet)',
  '',
  `Command: \`node benchmarks/threads.mjs${args.length ? ' ' + args.join(' ') : ''}\`, ${started}. Machine: ${cpus().length} CPU cores`,
  `(${cpus()[0]?.model ?? '?'}), load average ${la0} at the start (1 / 5 / 15 min).`,
  `LibTorch ${spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(path.join(root, 'dist/native.js'))}).nativeBinding().buildInfo().torchVersion)`], { encoding: 'utf8' }).stdout.trim()}.`,
  '',
  `One sample() of [${BATCH}, 1, 28, 28], ${STEPS} steps (SciRE v1 3M), per configuration and rep: a fresh child process`,
  'with SCIRE_INTRA_OP_THREADS and OMP_WAIT_POLICY set, warmed up, then timed; one child at a time, configurations in turns. Background',
  'load: busy-looping processes, each in its own session. unset: libgomp\'s default (idle threads spin up to',
  'GOMP_SPINCOUNT = 300000 times, then sleep); ACTIVE: they spin; PASSIVE: they sleep at once (what scire-solver',
  'sets when OMP_WAIT_POLICY is unset); GOMP_SPINCOUNT=10000: a short spin.',
  '',
  '| background busy processes | threads | OMP_WAIT_POLICY | median ms | min - max ms | vs 1 thread |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.load} | ${r.threads} | ${r.policy} | ${r.median.toFixed(0)} | ${r.min.toFixed(0)} - ${r.max.toFixed(0)} | ${r.ratio.toFixed(2)} |`),
  '',
];
if (OUT) writeFileSync(OUT, lines.join('\n'));
console.log(lines.join('\n'));
