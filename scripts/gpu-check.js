#!/usr/bin/env node
/**
 * gpu-check.js: the native executor's and the fused kernels' equivalence checks on a CUDA
 * device, in plain Node (the GPU machine has no vitest). scripts/gpu-check.sh builds the addon
 * and runs this; it needs dist/ (compiled TypeScript) and test/fixtures.
 *
 *   ADDON=path/to/scire.node DEVICE=cuda node scripts/gpu-check.js
 *   (DEVICE=cpu: dry run of the same checks on the CPU)
 *
 * Checks (exit code 1 when one fails), every tolerance stated where it is checked:
 *   kernel     lincomb on DEVICE vs the formula, sizes 1, 3, 1023, 2^20+7, offsets 0-3 elements
 *              (misaligned for 16-byte loads), 1-4 terms, the 16-bit input/output layouts
 *   golden     every golden configuration run natively in float32 on DEVICE vs the float64
 *              reference executor (the rule of test/native-executor.test.ts) and vs the same
 *              run on the CPU
 *   dtype      bfloat16 and float16 model dtype with a model that is exact in 16 bits
 *              (0.5 x): equals the reference with the same input rounding; the GMM in bfloat16
 *              is reported (relative RMS error vs the float32 run, budget 0.1)
 *   progress   onStep count equals NFE;  abort mid-run rejects with AbortError, the next run works
 *   cfg        classifier-free guidance on DEVICE vs the reference formula
 */
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const ADDON = process.env.ADDON || process.env.SCIRE_NATIVE_PATH;
if (!ADDON) {
  console.error('gpu-check.js: set ADDON=<path of scire.node>');
  process.exit(2);
}
process.env.SCIRE_NATIVE_PATH = path.resolve(ADDON);
const DEVICE = process.env.DEVICE || 'cuda';
const binding = require(path.resolve(ADDON));
const { compilePlan } = require(path.join(ROOT, 'dist/compile.js'));
const { executePlanReference } = require(path.join(ROOT, 'dist/reference.js'));
const { GaussianMixtureNoiseModel } = require(path.join(ROOT, 'dist/testing/gmm.js'));
const { randomArray } = require(path.join(ROOT, 'dist/testing/random-array.js'));
const { toBFloat16, toFloat16 } = require(path.join(ROOT, 'dist/testing/rounding.js'));
const { goldenCaseOptions, goldenSchedule } = require(path.join(ROOT, 'dist/testing/golden-cases.js'));

const FIX = path.join(ROOT, 'test/fixtures');
const MODELS = path.join(FIX, 'models');
const results = []; // { check, ok, detail }
function record(check, ok, detail) {
  results.push({ check, ok, detail });
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${check}: ${detail}`);
}
async function guard(check, fn) {
  try {
    await fn();
  } catch (e) {
    record(check, false, `threw ${e && e.name}: ${String(e && e.message).split('\n')[0].slice(0, 300)}`);
  }
}
const maxAbs = (a, b) => {
  let abs = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, scale, rel: abs / scale };
};
const relRms = (a, b) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};
const flatten = (v) => (Array.isArray(v) ? v.flatMap(flatten) : [v]);
const ROUND = { float32: (v) => v, bfloat16: toBFloat16, float16: toFloat16 };

// ------------------------------------------------------------------ golden configurations
function goldenGroups() {
  const groups = [];
  const load = (name) => JSON.parse(fs.readFileSync(path.join(FIX, 'golden', `${name}.json`), 'utf8'));
  for (const name of ['scire_discrete', 'scire_linear', 'scire_cosine', 'scire_image_discrete', 'scire_image_linear', 'dpmsolver_discrete', 'dpmsolver_linear']) {
    const g = load(name);
    const base = path.basename(g.model_file, '.pt');
    groups.push({ name, model: base, xT: flatten(g.x_T), shape: g.x_T_shape, cases: g.cases });
  }
  const extra = JSON.parse(fs.readFileSync(path.join(FIX, 'dpmsolver_extra.json'), 'utf8'));
  const xT = flatten(load('dpmsolver_discrete').x_T);
  for (const kind of ['discrete', 'linear']) {
    groups.push({ name: `dpmsolver_extra ${kind}`, model: `gmm_D16_${kind}`, xT, shape: extra.x_T_shape, cases: extra.cases.filter((c) => c.schedule === kind) });
  }
  return groups;
}
const gmmFormula = (model) => new GaussianMixtureNoiseModel(JSON.parse(fs.readFileSync(path.join(MODELS, `${model}.json`), 'utf8'))).asModel();
const rounded32 = (model) => (x, shape, t) => Float64Array.from(model(x.map(Math.fround), shape, t), Math.fround);
// eager fused path (the CUDA-graph path, where built, is checked by benchmarks/gpu.js)
const EAGER = { cudaGraph: false };

async function main() {
  const info = binding.buildInfo();
  console.log(`gpu-check.js: addon ${ADDON}; ${JSON.stringify(info)}; device ${DEVICE}`);

  // -------------------------------------------------------------- kernel
  console.log('\n[kernel] lincomb vs the formula (bound 4 * 2^-24 * sum |c_k x_k| per element)');
  await guard('kernel', async () => {
    const COEFS = [0.75, -1.3125, 2.5e-3, 3.0000001];
    let worst = 0;
    let count = 0;
    for (const n of [1, 3, 1023, 2 ** 20 + 7]) {
      const inputs = [0, 1, 2, 3].map((k) => randomArray(n, 17 + 31 * k + n));
      for (const offset of [0, 1, 2, 3]) {
        for (let terms = 1; terms <= 4; terms++) {
          for (const termDType of terms > 1 ? ['float32', 'bfloat16', 'float16'] : ['float32']) {
            const out = binding.lincomb(inputs.slice(0, terms), COEFS.slice(0, terms), { device: DEVICE, offset, termDType });
            const round = ROUND[termDType];
            for (let i = 0; i < n; i++) {
              let ref = COEFS[0] * inputs[0][i];
              let mag = Math.abs(ref);
              for (let k = 1; k < terms; k++) {
                const v = COEFS[k] * round(inputs[k][i]);
                ref += v;
                mag += Math.abs(v);
              }
              const r = Math.abs(out[i] - ref) / (4 * 2 ** -24 * mag + 1e-30);
              if (!(r <= 1)) throw new Error(`n=${n} offset=${offset} terms=${terms} ${termDType}: element ${i} got ${out[i]} want ${ref}`);
              worst = Math.max(worst, r);
            }
            count++;
          }
        }
        for (const outDType of ['bfloat16', 'float16']) {
          const out = binding.lincomb([inputs[0]], [0.37], { device: DEVICE, offset, outDType });
          for (let i = 0; i < n; i++) {
            const want = ROUND[outDType](Math.fround(Math.fround(0.37) * inputs[0][i]));
            if (out[i] !== want) throw new Error(`input cast to ${outDType}, n=${n} offset=${offset}: element ${i} got ${out[i]} want ${want}`);
          }
          count++;
        }
      }
    }
    record('kernel', true, `${count} launches, worst |err| / bound = ${worst.toFixed(3)}; 16-bit input casts bit-exact`);
  });

  // -------------------------------------------------------------- golden
  console.log('\n[golden] float32 on the device vs the float64 reference executor (test/native-executor.test.ts rule) and vs the CPU');
  const cpuModels = new Map();
  const devModels = new Map();
  const modelOn = async (map, device, name, dtype = 'float32') => {
    const key = `${name}/${dtype}`;
    if (!map.has(key)) map.set(key, await binding.loadModel(path.join(MODELS, `${name}.pt`), { device, dtype }));
    return map.get(key);
  };
  let totalCases = 0;
  for (const group of goldenGroups()) {
    await guard(`golden ${group.name}`, async () => {
      const dev = await modelOn(devModels, DEVICE, group.model);
      const cpu = await modelOn(cpuModels, 'cpu', group.model);
      const formula = gmmFormula(group.model);
      const x = Float32Array.from(group.xT);
      let worstRel = 0;
      let worstCpu = 0;
      let conditioned = 0;
      for (const c of group.cases) {
        const plan = compilePlan(goldenCaseOptions(c));
        const ref = executePlanReference(plan, { x: Float64Array.from(x), shape: group.shape, model: formula });
        const res = await dev.execute(plan, { x, shape: group.shape, ...EAGER });
        if (res.nfe !== plan.nfe) throw new Error(`${c.id}: nfe ${res.nfe} != ${plan.nfe}`);
        const d = maxAbs(res.data, ref.x);
        worstRel = Math.max(worstRel, d.rel);
        if (d.rel > 1e-4) {
          const dev32 = c.float32_run_max_abs_dev;
          let bound;
          if (dev32 !== undefined) bound = 1e-4 + 10 * dev32;
          else bound = 1e-4 * d.scale + 10 * maxAbs(executePlanReference(plan, { x: Float64Array.from(x), shape: group.shape, model: rounded32(formula) }).x, ref.x).abs;
          if (!(d.abs <= bound)) throw new Error(`${c.id}: max|dx| ${d.abs.toExponential(2)} > ${bound.toExponential(2)} (relative ${d.rel.toExponential(2)})`);
          conditioned++;
        }
        const onCpu = await cpu.execute(plan, { x, shape: group.shape });
        worstCpu = Math.max(worstCpu, maxAbs(res.data, onCpu.data).rel);
        totalCases++;
      }
      record(
        `golden ${group.name}`,
        true,
        `${group.cases.length} cases, worst relative error vs reference ${worstRel.toExponential(2)} ` +
          `(${conditioned} float32-ill-conditioned within the README bound), worst relative |${DEVICE} - cpu| ${worstCpu.toExponential(2)}`,
      );
    });
  }

  // -------------------------------------------------------------- 16-bit model dtypes
  console.log('\n[dtype] 16-bit model dtypes');
  const shape = [8, 16];
  const x = Float32Array.from(randomArray(128, 5));
  const plan = compilePlan({ schedule: goldenSchedule('discrete'), steps: 12 });
  // Debian's CPU LibTorch 1.13 lacks float16 kernels for these ops: the dry run skips them.
  const cpuDryRun = DEVICE === 'cpu';
  for (const dtype of cpuDryRun ? ['bfloat16'] : ['bfloat16', 'float16']) {
    await guard(`dtype ${dtype} (exact model)`, async () => {
      // slow_model.pt: forward = 0.5 x, exact in 16 bits; the reference rounds x_in like the cast
      const m = await binding.loadModel(path.join(MODELS, 'slow_model.pt'), { device: DEVICE, dtype });
      const round = ROUND[dtype];
      const ref = executePlanReference(plan, { x: Float64Array.from(x), shape, model: (xin) => xin.map((v) => 0.5 * round(Math.fround(v))) });
      const res = await m.execute(plan, { x, shape, ...EAGER });
      const d = maxAbs(res.data, ref.x);
      record(`dtype ${dtype} (exact model)`, d.rel < 1e-4, `relative error ${d.rel.toExponential(2)} (budget 1e-4: only float32 arithmetic and 16-bit rounding ties differ)`);
      m.dispose();
    });
  }
  if (!cpuDryRun) await guard('dtype bfloat16 (GMM)', async () => {
    const g = JSON.parse(fs.readFileSync(path.join(FIX, 'golden', 'scire_discrete.json'), 'utf8'));
    const xg = Float32Array.from(flatten(g.x_T));
    const bf = await modelOn(devModels, DEVICE, 'gmm_D16_discrete', 'bfloat16');
    const f32 = await modelOn(devModels, DEVICE, 'gmm_D16_discrete', 'float32');
    const a = await bf.execute(plan, { x: xg, shape, ...EAGER });
    const b = await f32.execute(plan, { x: xg, shape, ...EAGER });
    const e = relRms(a.data, b.data);
    record('dtype bfloat16 (GMM)', Number.isFinite(e) && e < 0.1, `relative RMS error vs the float32 run ${e.toExponential(2)} (budget 0.1: the whole GMM computes in bfloat16)`);
  });

  // -------------------------------------------------------------- progress and abort
  console.log('\n[progress] onStep and abort');
  await guard('progress', async () => {
    const m = await modelOn(devModels, DEVICE, 'gmm_D16_discrete');
    const events = [];
    const res = await m.execute(plan, { x, shape, onStep: (e) => events.push(e.nfe), ...EAGER });
    const ok = events.length === plan.nfe && events.every((n, i) => n === i + 1) && res.nfe === plan.nfe;
    record('progress', ok, `${events.length} onStep calls for ${plan.nfe} evaluations`);
  });
  await guard('abort', async () => {
    const slow = await binding.loadModel(path.join(MODELS, 'slow_model.pt'), { device: DEVICE });
    // 200 evaluations: long enough on a GPU too for the abort to land mid-run
    const long = compilePlan({ schedule: goldenSchedule('discrete'), steps: 200 });
    const controller = new AbortController();
    let seen = 0;
    let err;
    try {
      await slow.execute(long, { x, shape, signal: controller.signal, onStep: (e) => { seen = e.nfe; if (e.nfe === 2) controller.abort(); }, ...EAGER });
    } catch (e) {
      err = e;
    }
    const again = await slow.execute(long, { x, shape, ...EAGER });
    const ref = executePlanReference(long, { x: Float64Array.from(x), shape, model: (xin) => xin.map((v) => 0.5 * v) });
    const d = maxAbs(again.data, ref.x);
    record(
      'abort',
      !!err && err.name === 'AbortError' && again.nfe === long.nfe && d.rel < 1e-5,
      `rejected with ${err && err.name} after ${seen} of ${long.nfe} step events; next run relative error ${d.rel.toExponential(2)}`,
    );
    slow.dispose();
  });

  // -------------------------------------------------------------- classifier-free guidance
  console.log('\n[cfg] classifier-free guidance (cfg_model.pt, test/fixtures/make_executor_models.py)');
  await guard('cfg', async () => {
    const B = 3, D = 6, C = 4;
    const W = Array.from({ length: C }, (_, i) => Array.from({ length: D }, (_, j) => Math.sin(1 + i * D + j) / 2));
    const f = (xin, t, cond) => {
      const out = new Float64Array(xin.length);
      for (let b = 0; b < B; b++) for (let j = 0; j < D; j++) {
        let s = 0;
        for (let i = 0; i < C; i++) s += cond[b * C + i] * W[i][j];
        out[b * D + j] = 0.5 * Math.tanh(xin[b * D + j]) + (t / 1000) * s;
      }
      return out;
    };
    const xs = Float32Array.from({ length: B * D }, (_, i) => Math.sin(0.7 * (i + 1)));
    const cond = Float32Array.from({ length: B * C }, (_, i) => Math.sin(1.3 * (i + 1)));
    const uncond = new Float32Array(B * C);
    const m = await binding.loadModel(path.join(MODELS, 'cfg_model.pt'), { device: DEVICE });
    const p = compilePlan({ schedule: goldenSchedule('discrete'), steps: 10 });
    let worst = 0;
    for (const g of [0, 1, 3.5]) {
      const ref = executePlanReference(p, { x: Float64Array.from(xs), shape: [B, D], model: (xin, _s, t) => { const u = f(xin, t, uncond); const c = f(xin, t, cond); return u.map((v, i) => v + g * (c[i] - v)); } });
      const res = await m.execute(p, { x: xs, shape: [B, D], cond, condShape: [B, C], uncond, guidanceScale: g, ...EAGER });
      worst = Math.max(worst, maxAbs(res.data, ref.x).rel);
    }
    record('cfg', worst < 1e-5, `guidance 0, 1, 3.5: worst relative error ${worst.toExponential(2)} (budget 1e-5)`);
    m.dispose();
  });

  await guard('device errors', async () => {
    let msg = '';
    try {
      await binding.loadModel(path.join(MODELS, 'cfg_model.pt'), { device: 'cuda:99' });
    } catch (e) {
      msg = e.message;
    }
    record('device errors', /cuda:99|not available|does not exist/.test(msg), `loadModel('cuda:99') -> ${msg.split('\n')[0].slice(0, 160)}`);
  });

  for (const m of [...cpuModels.values(), ...devModels.values()]) m.dispose();
  const failed = results.filter((r) => !r.ok);
  console.log(`\ngpu-check.js: ${results.length - failed.length}/${results.length} checks passed (${totalCases} golden cases on ${DEVICE})`);
  for (const r of failed) console.log(`  FAILED ${r.check}: ${r.detail}`);
  console.log(failed.length === 0 ? 'GPU CHECK PASSED' : 'GPU CHECK FAILED');
  process.exitCode = failed.length === 0 ? 0 : 1;
}

main().catch((e) => {
  console.error('gpu-check.js crashed:', e);
  process.exitCode = 1;
});
