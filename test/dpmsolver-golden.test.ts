/**
 * DDIM and DPM-Solver++ against the official DPM-Solver code (dpm_solver_pytorch.py of
 * LuChengTHU/dpm-solver at 52bc3fbc), run on the analytic Gaussian-mixture model:
 *   - test/fixtures/golden/dpmsolver_{discrete,linear}.json (copied from ../shared/reference):
 *     DPM-Solver++ multistep 2M/3M and DDIM (DPM-Solver-1), logSNR and time_uniform steps,
 *     6/12/20 steps: 18 cases per schedule;
 *   - test/fixtures/dpmsolver_extra.json (made by test/support/generate_dpmsolver_extra.py
 *     from the same official file, sha256 recorded in the file): DPM-Solver++ singlestep
 *     (agile = DPM-Solver's 'singlestep', and 'singlestep_fixed') orders 1-3 with every
 *     order split, time_quadratic steps, denoise_to_zero and dynamic thresholding.
 *
 * Tolerances: relative error max_i |x_i - x_i^ref| / max_i |x_i^ref| < 1e-9 (float64 both
 * sides; observed ~1e-14), NFE equal, and each model input time within 1e-9 (times in [0, 999]).
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { afterAll, describe, expect, test } from 'vitest';
import { compilePlan } from '../lib/compile';
import type { CompileOptions } from '../lib/options';
import { executePlanReference } from '../lib/reference';
import { GaussianMixtureNoiseModel, type GmmParams } from '../lib/testing/gmm';
import { FIXTURES, flatten, goldenSchedule, loadGolden } from './support/golden';
import { diffToReference, expectEvalTimes } from './support/golden-checks';
import { goldenCaseOptions } from '../lib/testing/golden-cases';

interface DpmCase {
  id: string;
  schedule: 'discrete' | 'linear';
  algorithm_type: 'dpmsolver' | 'dpmsolver++';
  method: 'multistep' | 'singlestep' | 'singlestep_fixed';
  order: number;
  skip_type: 'logSNR' | 'time_uniform' | 'time_quadratic';
  steps: number;
  denoise_to_zero: boolean;
  lower_order_final: boolean;
  thresholding?: { ratio: number; maxVal: number } | null;
  nfe: number;
  model_t_input: number[];
  x0: unknown[];
}

/** compilePlan options of an official DPM-Solver call: 'dpmsolver' order 1 is DDIM. */
function dpmCaseOptions(c: DpmCase): CompileOptions {
  if (c.algorithm_type === 'dpmsolver') expect(c.order).toBe(1);
  return goldenCaseOptions(c);
}

const models = new Map<string, GaussianMixtureNoiseModel>();
function gmmFor(schedule: string): GaussianMixtureNoiseModel {
  let m = models.get(schedule);
  if (!m) {
    const params = JSON.parse(readFileSync(join(FIXTURES, 'models', `gmm_D16_${schedule}.json`), 'utf8')) as GmmParams;
    m = new GaussianMixtureNoiseModel(params);
    models.set(schedule, m);
  }
  return m;
}

const summary: string[] = [];
afterAll(() => console.log(summary.join('\n')));

function checkCases(label: string, cases: DpmCase[], xT: number[], shape: number[]): void {
  let worstRel = 0;
  let worstTime = 0;
  test.each(cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const plan = compilePlan(dpmCaseOptions(c));
    expect(plan.nfe).toBe(c.nfe);
    const res = executePlanReference(plan, { x: xT, shape, model: gmmFor(c.schedule).asModel() });
    expect(res.nfe).toBe(c.nfe);
    worstTime = Math.max(worstTime, expectEvalTimes(res.evalTimes, c.model_t_input));
    const { maxAbs, maxRef } = diffToReference(res.x, flatten(c.x0));
    const rel = maxAbs / maxRef;
    worstRel = Math.max(worstRel, rel);
    expect(rel).toBeLessThan(1e-9);
  });
  afterAll(() => {
    summary.push(`${label}: ${cases.length} cases, worst relative error ${worstRel.toExponential(2)}, worst model-time deviation ${worstTime.toExponential(2)}`);
  });
}

for (const name of ['dpmsolver_discrete', 'dpmsolver_linear']) {
  describe(name, () => {
    const g = loadGolden(name);
    const cases = g.cases as unknown as DpmCase[];
    test('file covers DPM-Solver++ 2M/3M and DDIM, 18 cases', () => {
      expect(cases.length).toBe(18);
      expect(cases.filter((c) => c.algorithm_type === 'dpmsolver++' && c.order === 2).length).toBe(6);
      expect(cases.filter((c) => c.algorithm_type === 'dpmsolver++' && c.order === 3).length).toBe(6);
      expect(cases.filter((c) => c.algorithm_type === 'dpmsolver' && c.order === 1).length).toBe(6);
    });
    checkCases(name, cases, flatten(g.x_T), g.x_T_shape);
  });
}

describe('dpmsolver_extra (singlestep, time_quadratic, denoise_to_zero, thresholding)', () => {
  const extra = JSON.parse(readFileSync(join(FIXTURES, 'dpmsolver_extra.json'), 'utf8')) as {
    format: string;
    x_T_from: string;
    x_T_shape: number[];
    cases: DpmCase[];
  };
  const xT = flatten(loadGolden(extra.x_T_from.replace(/^golden\//, '').replace(/\.json$/, '')).x_T);
  test('file format', () => {
    expect(extra.format).toBe('dpmsolver-extra-v1');
    expect(extra.cases.length).toBe(92);
    expect(extra.cases.filter((c) => c.thresholding).length).toBe(4);
  });
  checkCases('dpmsolver_extra', extra.cases, xT, extra.x_T_shape);
});

describe('plan structure', () => {
  const schedule = goldenSchedule('discrete');
  test('DPM-Solver multistep lowers the final orders only when steps < 10', () => {
    const stepOrders = (steps: number, order: number, lowerOrderFinal = true) =>
      compilePlan({ schedule, solver: 'dpmpp', order, steps, lowerOrderFinal }).meta.stepOrders;
    expect(stepOrders(6, 3)).toEqual([1, 2, 3, 3, 2, 1]);
    expect(stepOrders(6, 3, false)).toEqual([1, 2, 3, 3, 3, 3]);
    expect(stepOrders(9, 2)).toEqual([1, 2, 2, 2, 2, 2, 2, 2, 1]);
    expect(stepOrders(10, 3)).toEqual([1, 2, 3, 3, 3, 3, 3, 3, 3, 3]);
  });
  test('singlestep order splitting (DPM-Solver-fast) uses exactly `steps` evaluations', () => {
    const split = (steps: number, order: number) => {
      const plan = compilePlan({ schedule, solver: 'dpmpp', method: 'singlestep_agile', order, steps });
      expect(plan.nfe).toBe(steps);
      return plan.meta.stepOrders;
    };
    expect(split(6, 3)).toEqual([3, 2, 1]);
    expect(split(7, 3)).toEqual([3, 3, 1]);
    expect(split(8, 3)).toEqual([3, 3, 2]);
    expect(split(7, 2)).toEqual([2, 2, 2, 1]);
    expect(split(3, 3)).toEqual([2, 1]);
    expect(compilePlan({ schedule, solver: 'dpmpp', method: 'singlestep_fixed', order: 3, steps: 8 }).nfe).toBe(6);
  });
  test('DDIM with thresholding switches to the data form and thresholds every data prediction', () => {
    const plain = compilePlan({ schedule, solver: 'ddim', steps: 5 });
    expect(plain.ops.filter((op) => op.op === 'threshold').length).toBe(0);
    const clipped = compilePlan({ schedule, solver: 'ddim', steps: 5, thresholding: { ratio: 0.9, maxVal: 1 } });
    expect(clipped.meta.form).toBe('data');
    expect(clipped.ops.filter((op) => op.op === 'threshold').length).toBe(5);
  });
  test('every lincomb fits one fused op (<= 4 terms)', () => {
    for (const method of ['multistep', 'singlestep_agile', 'singlestep_fixed'] as const) {
      for (const order of [1, 2, 3]) {
        const plan = compilePlan({ schedule, solver: 'dpmpp', method, order, steps: 12, denoiseToZero: true });
        for (const op of plan.ops) if (op.op === 'lincomb') expect(op.terms.length).toBeLessThanOrEqual(4);
      }
    }
  });
});
