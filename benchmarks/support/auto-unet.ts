/**
 * Second stage of the `preset: 'auto'` table (benchmarks/auto-preset.ts): the mixture ranks the
 * candidates, a real network picks among the best of them.
 *
 * For one 'discrete' row (NFE n):
 *   1. the bar is the mixture acceptance of issue 14: the best median error of the reference
 *      configurations (official SciRE, DPM-Solver++ 2M/3M, UniPC; auto-measure.ts referenceBest)
 *      on the table's mixture noise;
 *   2. admitted = the candidates whose mixture error is <= that bar, in mixture order; the first
 *      `top` of them that are distinct solvers on the UNet's schedule are run on the bundled
 *      Fashion-MNIST UNet (native executor, float32) from x_T = randn([batch, 1, 28, 28], seed)
 *      and scored by the median over the samples of the per-sample RMS error of x_0 against a fine
 *      solution (DPM-Solver++ 3M, logSNR steps, fineNfe evaluations; checked by halving): the
 *      mixture's metric, and the acceptance's (benchmarks/fmnist-acceptance.ts: a few samples of a
 *      batch near a boundary between two outcomes would dominate an RMS over all pixels);
 *   3. the pick: the UNet cannot tell apart candidates whose errors differ by less than its noise
 *      (16 samples: the seed-to-seed spread of a median ratio reaches 0.1-0.2, benchmarks/results/
 *      accuracy-fmnist-issue14-acceptance.md), so every candidate within UNET_TIE (10 %) of the
 *      smallest UNet error counts as tied with it, and among those the better mixture error wins
 *      (the first in mixture order: the mixture's median over 200 exactly scored samples is the less
 *      noisy of the two).
 *      With nothing admitted the mixture's best stands (measured = []).
 * The noise seed differs from the acceptance seeds (0, 1) of benchmarks/accuracy.ts, so the pick
 * is not fitted to the samples it is judged on.
 */
import { compilePlan } from '../../lib/compile';
import type { AutoTableEntry, AutoUnetRow } from '../../lib/presets/auto';
import type { NoiseSchedule } from '../../lib/schedule';
import { rmsError } from '../../test/support/ground-truth';
import { rankCandidates, referenceBest, toPick, type AutoProblem } from './auto-measure';
import { medianSampleError } from './gmm-accuracy';
import type { FmnistProblem } from './fmnist-accuracy';
import { canonicalPlanText } from './solve-cache';

export const UNET_FINE = { solver: 'dpmpp', order: 3, skip: 'logsnr' } as const;

/** Relative UNet error difference below which two candidates count as tied (file comment, step 3). */
export const UNET_TIE = 0.1;

/** The pick among UNet-measured candidates (in mixture order): the first within UNET_TIE of the smallest UNet error. */
export function unetPickIndex(measured: ReadonlyArray<{ unetError: number }>): number {
  const min = Math.min(...measured.map((m) => m.unetError));
  return measured.findIndex((m) => m.unetError <= (1 + UNET_TIE) * min);
}

export interface UnetFine {
  x: Float32Array;
  doubling: number;
}

export async function unetFine(u: FmnistProblem, fineNfe: number): Promise<UnetFine> {
  const fine = await u.solve({ schedule: u.schedule, steps: fineNfe, ...UNET_FINE });
  const half = await u.solve({ schedule: u.schedule, steps: fineNfe / 2, ...UNET_FINE });
  return { x: fine.x, doubling: rmsError(fine.x, half.x) };
}

/**
 * The mixture half of the second stage: the ranking, the acceptance bar, the admitted candidates
 * and the first `top` of them that are distinct solvers on `schedule` (the UNet's), in mixture order.
 */
export function unetShortlist(p: AutoProblem, schedule: NoiseSchedule, nfe: number, top: number) {
  const ranked = rankCandidates(p, nfe);
  const bar = referenceBest(p, nfe);
  const admitted = ranked.filter((s) => s.error <= bar.error);
  // Distinct solvers only: the same plan up to register allocation (canonicalPlanText), or the same
  // evaluation times with a mixture error equal to 1e-9 (the same arithmetic up to the rounding of
  // the coefficients).
  const chosen: typeof admitted = [];
  const seen: Array<{ key: string; times: string; error: number }> = [];
  for (const s of admitted) {
    if (chosen.length >= top) break;
    const c = p.candidates[s.i];
    const plan = compilePlan({ schedule, steps: nfe + c.stepsOffset, ...c.config });
    const key = canonicalPlanText(plan);
    const times = JSON.stringify(plan.ops.flatMap((op) => (op.op === 'eval' ? [op.t] : [])));
    if (seen.some((o) => o.key === key || (o.times === times && Math.abs(o.error - s.error) <= 1e-9 * o.error))) continue;
    seen.push({ key, times, error: s.error });
    chosen.push(s);
  }
  return { ranked, bar, admitted, chosen };
}

/** One table row with both stages (see the file comment). */
export async function measureRowWithUnet(
  p: AutoProblem,
  u: FmnistProblem,
  fine: UnetFine,
  nfe: number,
  top: number,
  log: (line: string) => void = () => {},
): Promise<AutoTableEntry> {
  const { ranked, bar, admitted, chosen } = unetShortlist(p, u.schedule, nfe, top);
  const measured: AutoUnetRow['measured'] = [];
  for (const s of chosen) {
    const c = p.candidates[s.i];
    const r = await u.solve({ schedule: u.schedule, steps: nfe + c.stepsOffset, ...c.config });
    if (r.nfe !== nfe) throw new Error(`${c.name}: NFE ${r.nfe} != ${nfe}`);
    const unetError = medianSampleError(r.x, fine.x, r.x.length / u.shape[0]);
    measured.push({ name: c.name, mixtureError: s.error, unetError: Number.isFinite(unetError) ? unetError : Infinity });
    log(`  discrete NFE ${nfe}: ${c.name} mixture ${s.error.toExponential(2)} UNet ${unetError.toExponential(2)}${r.cached ? ' (cached)' : ''}`);
  }
  const pickAt = unetPickIndex(measured);
  const mixtureBest = toPick(p, ranked[0]);
  const best = chosen.length ? toPick(p, chosen[pickAt]) : mixtureBest;
  const bestData = ranked.find((s) => p.candidates[s.i].dataPrediction) as { i: number; error: number };
  return {
    nfe,
    best,
    bestData: toPick(p, bestData),
    runnersUp: ranked.slice(1, 4).map((s) => toPick(p, s)),
    unet: { mixtureBest, referenceBest: bar, admitted: admitted.length, measured },
  };
}
