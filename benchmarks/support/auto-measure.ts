/**
 * One row of the `preset: 'auto'` table (benchmarks/auto-preset.ts): every candidate of
 * lib/presets/auto-candidates.ts at one NFE on the analytic Gaussian mixture of one schedule,
 * ranked by the median per-sample RMS error against a fine RK4 solution. Shared by the
 * benchmark and test/auto-preset.test.ts (which re-derives rows of the committed table).
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { compilePlan } from '../../lib/compile';
import { autoCandidates, type AutoCandidate } from '../../lib/presets/auto-candidates';
import type { AutoPick, AutoTableEntry } from '../../lib/presets/auto';
import { randn } from '../../lib/randn';
import { executePlanReference } from '../../lib/reference';
import type { NoiseSchedule } from '../../lib/schedule';
import { GaussianMixtureNoiseModel, type GmmParams } from '../../lib/testing/gmm';
import { goldenSchedule } from '../../lib/testing/golden-cases';
import { groundTruth } from '../../test/support/ground-truth';
import { medianSampleError } from './gmm-accuracy';
import { isAcceptanceReference } from './report';
import { fullGrid } from './solver-grid';

export interface AutoProblem {
  kind: 'discrete' | 'linear' | 'cosine';
  schedule: NoiseSchedule;
  gmm: GaussianMixtureNoiseModel;
  D: number;
  xT: Float64Array;
  shape: number[];
  x0: Float64Array;
  candidates: AutoCandidate[];
}

export function autoProblem(kind: AutoProblem['kind'], s: { batch: number; seed: number; rk4Steps: number }): AutoProblem {
  const params = JSON.parse(readFileSync(join(__dirname, '..', '..', 'test', 'fixtures', 'models', `gmm_D16_${kind}.json`), 'utf8')) as GmmParams;
  const gmm = new GaussianMixtureNoiseModel(params);
  const schedule = goldenSchedule(kind);
  const xT = Float64Array.from(randn([s.batch, params.D], s.seed));
  const gt = groundTruth({
    xT,
    nsrStart: schedule.nsr(schedule.T),
    nsrEnd: schedule.nsr(schedule.eps),
    eps: (x, alpha) => gmm.noiseAtLogAlpha(x, Math.log(alpha)),
    steps: s.rk4Steps,
  });
  return { kind, schedule, gmm, D: params.D, xT, shape: [s.batch, params.D], x0: gt.x0, candidates: autoCandidates() };
}

/** Median per-sample error of one candidate at one NFE (Infinity when it cannot run or diverges). */
export function candidateError(p: AutoProblem, c: AutoCandidate, nfe: number): number {
  const steps = nfe + c.stepsOffset;
  let plan;
  try {
    plan = compilePlan({ schedule: p.schedule, steps, ...c.config });
  } catch {
    return Infinity; // steps < order at tiny NFE: not a candidate there
  }
  if (plan.nfe !== nfe) throw new Error(`${c.name}: NFE ${plan.nfe} != ${nfe}`);
  const res = executePlanReference(plan, { x: p.xT, shape: p.shape, model: p.gmm.asModel() });
  const e = medianSampleError(res.x, p.x0, p.D);
  return Number.isFinite(e) ? e : Infinity;
}

/** Every candidate's error at one NFE, best first (stable: equal errors keep the candidate order). */
export function rankCandidates(p: AutoProblem, nfe: number): Array<{ i: number; error: number }> {
  const scored = p.candidates.map((c, i) => ({ i, error: candidateError(p, c, nfe) }));
  scored.sort((a, b) => a.error - b.error || a.i - b.i);
  return scored;
}

export function toPick(p: AutoProblem, s: { i: number; error: number }): AutoPick {
  return { name: p.candidates[s.i].name, config: p.candidates[s.i].config, stepsOffset: p.candidates[s.i].stepsOffset, error: s.error };
}

/** The mixture stage of one table row: the best candidate, the best data-prediction one, the next three. */
export function measureRow(p: AutoProblem, nfe: number, ranked = rankCandidates(p, nfe)): AutoTableEntry {
  const bestData = ranked.find((s) => p.candidates[s.i].dataPrediction) as { i: number; error: number };
  return { nfe, best: toPick(p, ranked[0]), bestData: toPick(p, bestData), runnersUp: ranked.slice(1, 4).map((s) => toPick(p, s)) };
}

/**
 * The bar of the mixture acceptance (issue 14) at one NFE target: the smallest median error among
 * the reference configurations of benchmarks/accuracy.ts (every official SciRE configuration of
 * its grid, DPM-Solver++ 2M/3M, every UniPC configuration; isAcceptanceReference), measured on
 * this problem's noise. As in the accuracy tables, singlestep_fixed runs may spend fewer NFE.
 */
export function referenceBest(p: AutoProblem, nfe: number): { name: string; error: number } {
  let best = { name: '', error: Infinity };
  for (const entry of fullGrid().filter(isAcceptanceReference)) {
    let plan;
    try {
      plan = compilePlan({ schedule: p.schedule, steps: nfe, ...entry.options });
    } catch {
      continue;
    }
    const res = executePlanReference(plan, { x: p.xT, shape: p.shape, model: p.gmm.asModel() });
    const e = medianSampleError(res.x, p.x0, p.D);
    if (Number.isFinite(e) && e < best.error) best = { name: entry.name, error: e };
  }
  return best;
}
