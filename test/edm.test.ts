/**
 * EDM / variance-exploding schedule (alpha = 1, sigma = t) checked by equivalence with the VP
 * discrete schedule (no golden vectors exist for EDM).
 *
 * With y = x / alpha_t the VP process x_t = alpha_t x_0 + sigma_t eps becomes
 * y = x_0 + NSR_t eps: a VE process with sigma = NSR_t. So the mixture model rewritten for
 * the VE parametrisation,
 *     eps_VE(y, sigma) = eps_VP(alpha y, t),   sigma = NSR_t,  alpha = 1 / sqrt(1 + sigma^2),
 * and sampled between the same NSR endpoints (sigmaMax = NSR_T, sigmaMin = NSR_eps) on a grid
 * defined through NSR (nsr, logsnr, karras steps) must give the VP result:
 *     x_VP(final) = alpha(sigmaMin) * y_VE(final),   y_VE(start) = x_T / alpha_T.
 * SciRE-Solver only sees NSR (v1 integrates NSR, v2 1/NSR) and DPM-Solver only lambda =
 * -log NSR, so the two runs differ by rounding only. Tolerance: relative error
 * max_i |dx_i| / max_i |x_i| < 1e-9 (observed ~1e-14).
 */
import { afterAll, describe, expect, test } from 'vitest';
import { compilePlan } from '../lib/compile';
import type { CompileOptions } from '../lib/options';
import { executePlanReference } from '../lib/reference';
import { NoiseSchedule } from '../lib/schedule';
import { flatten, goldenSchedule, loadGolden, loadGoldenModel } from './support/golden';

const golden = loadGolden('dpmsolver_discrete');
const vp = goldenSchedule('discrete');
const gmm = loadGoldenModel(golden);
const xT = Float64Array.from(flatten(golden.x_T));
const shape = golden.x_T_shape;

const sigmaMax = vp.nsr(vp.T);
const sigmaMin = vp.nsr(vp.eps);
const ve = NoiseSchedule.edm({ sigmaMin, sigmaMax });

/** eps_VE(y, sigma) = eps_VP(alpha y) with log alpha = -1/2 log(1 + sigma^2); the model time is sigma. */
function veModel(y: Float64Array, _shape: number[], sigma: number): Float64Array {
  const logAlpha = -0.5 * Math.log1p(sigma * sigma);
  const alpha = Math.exp(logAlpha);
  return gmm.noiseAtLogAlpha(
    y.map((v) => alpha * v),
    logAlpha,
  );
}

function relError(a: Float64Array, b: Float64Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

type Solve = Omit<CompileOptions, 'schedule'>;

const worst = { scire: 0, dpm: 0 };
afterAll(() => console.log(`EDM equivalence: worst relative error SciRE ${worst.scire.toExponential(2)}, DDIM/DPM-Solver++ ${worst.dpm.toExponential(2)}`));

function equivalence(options: Solve): { rel: number; nfe: number } {
  const vpRun = executePlanReference(compilePlan({ schedule: vp, ...options }), { x: xT, shape, model: gmm.asModel() });
  const alphaT = vp.alpha(vp.T);
  const alpha0 = vp.alpha(vp.eps);
  const yT = xT.map((v) => v / alphaT);
  const vePlan = compilePlan({ schedule: ve, ...options });
  const veRun = executePlanReference(vePlan, { x: yT, shape, model: veModel });
  expect(veRun.nfe).toBe(vpRun.nfe);
  // The VE model times are the sigmas = NSRs of the VP evaluations.
  const vpNsr = (compilePlan({ schedule: vp, ...options }).ops.filter((op) => op.op === 'eval') as Array<{ tCont: number }>).map((op) =>
    vp.nsr(op.tCont),
  );
  veRun.evalTimes.forEach((sigma, i) => expect(Math.abs(sigma / vpNsr[i] - 1)).toBeLessThan(1e-9));
  return { rel: relError(veRun.x.map((v) => alpha0 * v), vpRun.x), nfe: veRun.nfe };
}

describe('EDM (alpha = 1, sigma = t) reproduces the VP result through eps_VE(y, sigma) = eps_VP(alpha y, t)', () => {
  test('the endpoints are the VP NSR endpoints', () => {
    expect(ve.T).toBe(sigmaMax);
    expect(ve.eps).toBe(sigmaMin);
    expect(sigmaMax).toBeGreaterThan(150);
    expect(sigmaMin).toBeLessThan(0.02);
  });

  const scireCases: Solve[] = [];
  for (const algorithm of ['v1', 'v2'] as const) {
    for (const order of [2, 3]) {
      for (const steps of [6, 12, 20]) scireCases.push({ solver: 'scire', algorithm, method: 'multistep', order, steps, skip: 'nsr' });
      scireCases.push({ solver: 'scire', algorithm, method: 'multistep', order, steps: 12, skip: 'nsr', rde: 'consistent' });
      scireCases.push({ solver: 'scire', algorithm, method: 'multistep', order, steps: 12, skip: 'logsnr' });
      scireCases.push({ solver: 'scire', algorithm, method: 'multistep', order, steps: 10, skip: 'karras' });
    }
  }
  const label = (o: Solve) => Object.values(o).join(' ');

  test.each(scireCases.map((o) => [label(o), o] as const))('SciRE multistep %s', (_l, o) => {
    const { rel, nfe } = equivalence(o);
    worst.scire = Math.max(worst.scire, rel);
    expect(nfe).toBe(o.steps);
    expect(rel).toBeLessThan(1e-9);
  });

  const dpmCases: Solve[] = [
    { solver: 'ddim', steps: 12, skip: 'logsnr' },
    { solver: 'dpmpp', order: 2, steps: 12, skip: 'logsnr' },
    { solver: 'dpmpp', order: 3, steps: 12, skip: 'logsnr' },
    { solver: 'dpmpp', order: 3, steps: 12, skip: 'nsr' },
    { solver: 'dpmpp', order: 3, method: 'singlestep_agile', steps: 11, skip: 'logsnr' },
  ];
  test.each(dpmCases.map((o) => [label(o), o] as const))('DDIM / DPM-Solver++ %s', (_l, o) => {
    const { rel } = equivalence(o);
    worst.dpm = Math.max(worst.dpm, rel);
    expect(rel).toBeLessThan(1e-9);
  });

  test('the check can fail: a VE run on a different NSR range does not match', () => {
    const shifted = NoiseSchedule.edm({ sigmaMin: sigmaMin * 1.01, sigmaMax });
    const options: Solve = { solver: 'scire', algorithm: 'v1', order: 3, steps: 12, skip: 'nsr' };
    const vpRun = executePlanReference(compilePlan({ schedule: vp, ...options }), { x: xT, shape, model: gmm.asModel() });
    const yT = xT.map((v) => v / vp.alpha(vp.T));
    const veRun = executePlanReference(compilePlan({ schedule: shifted, ...options }), { x: yT, shape, model: veModel });
    expect(relError(veRun.x.map((v) => vp.alpha(vp.eps) * v), vpRun.x)).toBeGreaterThan(1e-6);
  });
});
