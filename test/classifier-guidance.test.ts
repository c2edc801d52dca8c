/**
 * Classifier guidance (the authors' model_wrapper(guidance_type="classifier")) against their code.
 *
 * Golden data: test/fixtures/classifier_guidance.json (test/support/generate_classifier_golden.py):
 * SciRE-Solver and DPM-Solver++ multistep with classifier guidance on the analytic GMM, whose
 * classifier is the exact posterior of the mixture component (labels [0, 1, 2, 3, 0, 1, 2, 3],
 * scales 1, 2, 4). Tolerances, as the other golden tests: the reference executor (float64, the
 * analytic gradient of lib/testing/gmm.ts) relative error < 1e-9 (max |d| / max |want|); the
 * native executor (float32, the TorchScript classifier test/fixtures/models/gmm_D16_*_clf.pt
 * differentiated by LibTorch autograd) relative error < 1e-4, or, for a case that is
 * ill-conditioned in float32, |dx| <= 1e-4 + 10 * (the authors' own float32 run's deviation).
 */
import { readFileSync } from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { compilePlan } from '../lib/compile';
import { executePlanReference } from '../lib/reference';
import { goldenCaseOptions, goldenSchedule } from '../lib/testing/golden-cases';
import { GaussianMixtureNoiseModel, type GmmParams } from '../lib/testing/gmm';
import { FIXTURES, flatten } from './support/golden';
import { relativeError } from './support/native-gmm';

interface ClassifierCase {
  id: string;
  solver: string;
  schedule: 'discrete' | 'linear';
  algorithm_type: string;
  method: string;
  order: number;
  skip_type: string;
  steps: number;
  denoise_to_zero: boolean;
  lower_order_final: boolean;
  t_start: null;
  t_end: null;
  model_type: 'noise';
  classifier_scale: number;
  class_labels: number[];
  nfe: number;
  model_t_input: number[];
  float32_run_max_abs_dev: number;
  x0: unknown[];
}
interface ClassifierFile {
  format: string;
  x_T_from: Record<string, string>;
  cases: ClassifierCase[];
}

export const CLASSIFIER_GOLDEN = JSON.parse(readFileSync(path.join(FIXTURES, 'classifier_guidance.json'), 'utf8')) as ClassifierFile;
const REF_TOL = 1e-9;

function gmm(name: string): GaussianMixtureNoiseModel {
  return new GaussianMixtureNoiseModel(JSON.parse(readFileSync(path.join(FIXTURES, 'models', `gmm_D16_${name}.json`), 'utf8')) as GmmParams);
}
function xT(name: string): number[] {
  const g = JSON.parse(readFileSync(path.join(FIXTURES, CLASSIFIER_GOLDEN.x_T_from[name]), 'utf8')) as { x_T: unknown[] };
  return flatten(g.x_T);
}

describe('classifier guidance: reference executor vs the authors\' model_wrapper', () => {
  it('has the cases of the generator', () => {
    expect(CLASSIFIER_GOLDEN.format).toBe('scire-classifier-guidance-v1');
    expect(CLASSIFIER_GOLDEN.cases.length).toBe(22);
  });
  let worst = 0;
  for (const c of CLASSIFIER_GOLDEN.cases) {
    it(c.id, () => {
      const model = gmm(c.schedule);
      const plan = compilePlan(goldenCaseOptions(c, goldenSchedule(c.schedule)));
      const x = xT(c.schedule);
      const res = executePlanReference(plan, {
        x,
        shape: [8, 16],
        model: model.asModel(),
        classifier: model.asClassifier(),
        classLabels: c.class_labels,
        classifierScale: c.classifier_scale,
      });
      expect(res.nfe).toBe(c.nfe);
      expect(relativeError(res.evalTimes, c.model_t_input)).toBeLessThan(1e-12);
      const err = relativeError(res.x, flatten(c.x0));
      worst = Math.max(worst, err);
      expect(err).toBeLessThan(REF_TOL);
      // The guidance is not a no-op at this scale: the unguided solve differs by far more.
      const plain = executePlanReference(plan, { x, shape: [8, 16], model: model.asModel() });
      expect(relativeError(plain.x, flatten(c.x0))).toBeGreaterThan(1e-3);
    });
  }
  it('worst relative error', () => {
    console.log(`classifier guidance golden: reference executor worst relative error ${worst.toExponential(2)} (tolerance ${REF_TOL})`);
  });
});
