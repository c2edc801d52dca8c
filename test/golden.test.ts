/**
 * SciRE-Solver against the official implementation: every float64 case of the golden files
 * (test/fixtures/golden/scire_*.json, made by the authors' scire_solver.py on the analytic
 * Gaussian-mixture model) is compiled with compilePlan and run by executePlanReference.
 *
 * Tolerances (stated per check):
 *   - x0: for each case, max_i |x_i - x_i^golden| <= 1e-9 + 1e3 * probe, where probe is the
 *     case's float64_rounding_probe_max_abs (the reference README's suggestion, section 6),
 *     and the relative error max_i |x_i - x_i^golden| / max_i |x_i^golden| < 1e-9.
 *   - nfe: equal.
 *   - model input times: |t - t^golden| <= 1e-9 each (times are in [0, 999]).
 *   - float32 cases: |x - x^float32| <= 1e-4 + 10 * max_abs_dev_vs_float64 (README section 6);
 *     this checks our float64 result against the official float32 run.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { compilePlan } from '../lib/compile';
import { executePlanReference } from '../lib/reference';
import { flatten, goldenSchedule, loadGolden, loadGoldenModel, scireCaseOptions, type GoldenCase } from './support/golden';
import { diffToReference, expectEvalTimes } from './support/golden-checks';

const FILES = ['scire_discrete', 'scire_linear', 'scire_cosine', 'scire_image_discrete', 'scire_image_linear'];
const summary: string[] = [];

afterAll(() => {
  // One line per file: the worst errors observed (visible with --reporter=verbose or in CI logs).
  console.log(summary.join('\n'));
});

for (const name of FILES) {
  describe(name, () => {
    const g = loadGolden(name);
    const schedule = goldenSchedule(g.schedule);
    const gmm = loadGoldenModel(g);
    const xT = flatten(g.x_T);
    const shape = g.x_T_shape;
    let worstAbs = 0;
    let worstRel = 0;
    let worstRatio = 0; // |dx| / (1e-9 + 1e3 probe)
    let worstTime = 0;
    let checked = 0;

    const run = (c: GoldenCase) => executePlanReference(compilePlan(scireCaseOptions(schedule, c)), { x: xT, shape, model: gmm.asModel() });

    test('file sanity', () => {
      expect(g.format).toBe('scire-golden-v1');
      expect(g.cases.length).toBeGreaterThan(20);
      expect(schedule.T).toBe(g.t_start_used);
      expect(schedule.eps).toBe(g.t_end_used);
    });

    test.each(g.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
      expect(c.dtype).toBe('float64');
      const res = run(c);
      expect(res.nfe).toBe(c.nfe);
      worstTime = Math.max(worstTime, expectEvalTimes(res.evalTimes, c.model_t_input));
      const { maxAbs, maxRef } = diffToReference(res.x, flatten(c.x0));
      const probe = c.float64_rounding_probe_max_abs ?? 0;
      const bound = 1e-9 + 1e3 * probe;
      worstAbs = Math.max(worstAbs, maxAbs);
      worstRel = Math.max(worstRel, maxAbs / maxRef);
      worstRatio = Math.max(worstRatio, maxAbs / bound);
      checked++;
      expect(maxAbs).toBeLessThanOrEqual(bound);
      expect(maxAbs / maxRef).toBeLessThan(1e-9);
    });

    test.each(g.cases_float32.map((c) => [c.id, c] as const))('float32 %s within the recorded float32 deviation', (_id, c) => {
      const res = run(c);
      expect(res.nfe).toBe(c.nfe);
      const ref = flatten(c.x0);
      const dev = c.max_abs_dev_vs_float64 as number;
      let maxAbs = 0;
      for (let i = 0; i < ref.length; i++) maxAbs = Math.max(maxAbs, Math.abs(res.x[i] - ref[i]));
      expect(maxAbs).toBeLessThanOrEqual(1e-4 + 10 * dev);
    });

    test('summary', () => {
      expect(checked).toBe(g.cases.length);
      summary.push(
        `${name}: ${checked} float64 cases, worst max|dx| = ${worstAbs.toExponential(2)}, worst relative = ${worstRel.toExponential(2)}, ` +
          `worst |dx|/(1e-9+1e3*probe) = ${worstRatio.toExponential(2)}, worst |d t_input| = ${worstTime.toExponential(2)}`,
      );
    });
  });
}
