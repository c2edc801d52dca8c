/**
 * UniPC against the authors' implementation: every case of test/fixtures/unipc_*.json (made by
 * test/support/generate_unipc_golden.py, which runs github.com/wl-zhao/UniPC's uni_pc.py on the
 * golden Gaussian-mixture model in float64: bh1/bh2, orders 1-3, logSNR/time-uniform/
 * time-quadratic steps, 5-20 steps, with and without lowerOrderFinal, with the final corrector,
 * denoiseToZero and dynamic thresholding) is compiled with compilePlan and run by
 * executePlanReference.
 *
 * Tolerances: relative error max_i |x_i - x_i^golden| / max_i |x_i^golden| < 1e-9 per case;
 * NFE equal; model input times within 1e-9 each. The worst error per file is printed.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { compilePlan } from '../lib/compile';
import { MAX_LINCOMB_TERMS } from '../lib/plan';
import { executePlanReference } from '../lib/reference';
import { flatten } from './support/golden';
import { diffToReference, expectEvalTimes } from './support/golden-checks';
import { loadUniPcGolden, UNIPC_FILES, uniPcCaseOptions, uniPcModel, uniPcXT } from './support/unipc-golden';

const summary: string[] = [];
afterAll(() => console.log(summary.join('\n')));

for (const name of UNIPC_FILES) {
  describe(name, () => {
    const g = loadUniPcGolden(name);
    const gmm = uniPcModel(g);
    const { x, shape } = uniPcXT(g);
    let worstRel = 0;
    let worstTime = 0;
    let checked = 0;

    test('file sanity', () => {
      expect(g.format).toBe('unipc-golden-v1');
      expect(g.cases.length).toBeGreaterThan(90);
      // Both variants, all orders, the final corrector and no lower-order final steps are covered.
      for (const v of ['bh1', 'bh2']) for (const o of [1, 2, 3]) expect(g.cases.some((c) => c.variant === v && c.order === o)).toBe(true);
      expect(g.cases.filter((c) => c.final_corrector).length).toBeGreaterThan(5);
      expect(g.cases.filter((c) => !c.lower_order_final).length).toBeGreaterThan(5);
    });

    test.each(g.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
      const plan = compilePlan(uniPcCaseOptions(c));
      expect(plan.nfe).toBe(c.nfe);
      for (const op of plan.ops) if (op.op === 'lincomb') expect(op.terms.length).toBeLessThanOrEqual(MAX_LINCOMB_TERMS);
      const res = executePlanReference(plan, { x, shape, model: gmm.asModel() });
      expect(res.nfe).toBe(c.nfe);
      worstTime = Math.max(worstTime, expectEvalTimes(res.evalTimes, c.model_t_input));
      const { maxAbs, maxRef } = diffToReference(res.x, flatten(c.x0));
      worstRel = Math.max(worstRel, maxAbs / maxRef);
      checked++;
      expect(maxAbs / maxRef).toBeLessThan(1e-9);
    });

    test('summary', () => {
      expect(checked).toBe(g.cases.length);
      summary.push(`${name}: ${checked} cases, worst relative error ${worstRel.toExponential(2)}, worst |d t_input| ${worstTime.toExponential(2)}`);
    });
  });
}
