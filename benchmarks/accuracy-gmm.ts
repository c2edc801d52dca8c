/**
 * Accuracy per model evaluation on the analytic Gaussian-mixture model (exact noise
 * prediction, seed-0 GMM D = 16, batch 8, the x_T of the golden files): RMS error of x_0
 * against a fine RK4 solution of the probability-flow ODE, for DDIM, DPM-Solver++ and
 * SciRE-Solver (faithful and consistent RDE) at NFE 5 ... 50, on the discrete and linear VP
 * schedules. Everything runs in float64 through compilePlan + executePlanReference.
 *
 *   npx vite-node benchmarks/accuracy-gmm.ts            (markdown tables on stdout)
 *
 * Rows with a counterpart in the official runs (test/fixtures/reference-accuracy.json) also
 * report the largest relative deviation from the official error.
 */
import { compilePlan } from '../lib/compile';
import type { CompileOptions } from '../lib/options';
import { executePlanReference } from '../lib/reference';
import { flatten, goldenSchedule, loadGolden, loadGoldenModel } from '../test/support/golden';
import { groundTruth, rmsError } from '../test/support/ground-truth';
import { referenceError } from '../test/support/reference-accuracy';

const NFES = [5, 6, 8, 10, 12, 15, 20, 50];

const SOLVERS: Array<[string, Omit<CompileOptions, 'schedule' | 'steps'>]> = [
  ['DDIM (logsnr)', { solver: 'ddim', skip: 'logsnr' }],
  ['DPM-Solver++ 2M (logsnr)', { solver: 'dpmpp', order: 2 }],
  ['DPM-Solver++ 3M (logsnr)', { solver: 'dpmpp', order: 3 }],
  ['DPM-Solver++ 2S (logsnr)', { solver: 'dpmpp', order: 2, method: 'singlestep_agile' }],
  ['DPM-Solver++ 3S (logsnr)', { solver: 'dpmpp', order: 3, method: 'singlestep_agile' }],
  ['SciRE v1 2M faithful (nsr)', { algorithm: 'v1', order: 2 }],
  ['SciRE v1 3M faithful (nsr)', { algorithm: 'v1', order: 3 }],
  ['SciRE v2 2M faithful (nsr)', { algorithm: 'v2', order: 2 }],
  ['SciRE v2 3M faithful (nsr)', { algorithm: 'v2', order: 3 }],
  ['SciRE v1 2M consistent (nsr)', { algorithm: 'v1', order: 2, rde: 'consistent' }],
  ['SciRE v1 3M consistent (nsr)', { algorithm: 'v1', order: 3, rde: 'consistent' }],
  ['SciRE v2 2M consistent (nsr)', { algorithm: 'v2', order: 2, rde: 'consistent' }],
  ['SciRE v2 3M consistent (nsr)', { algorithm: 'v2', order: 3, rde: 'consistent' }],
];

function family(name: string): string {
  if (name.includes('faithful')) return 'SciRE faithful';
  if (name.includes('consistent')) return 'SciRE consistent';
  if (name.startsWith('DPM')) return 'DPM-Solver++';
  return 'DDIM';
}

for (const scheduleName of ['discrete', 'linear'] as const) {
  const golden = loadGolden(`dpmsolver_${scheduleName}`);
  const schedule = goldenSchedule(scheduleName);
  const gmm = loadGoldenModel(golden);
  const xT = Float64Array.from(flatten(golden.x_T));
  const shape = golden.x_T_shape;
  const gt = groundTruth({
    xT,
    nsrStart: schedule.nsr(schedule.T),
    nsrEnd: schedule.nsr(schedule.eps),
    eps: (x, alpha) => gmm.noiseAtLogAlpha(x, Math.log(alpha)),
    steps: 2000,
  });

  const errors = new Map<string, number[]>();
  const lines: string[] = [
    `## schedule = ${scheduleName}`,
    '',
    `RMS error of x_0 vs RK4 (doubling check ${gt.doublingMaxAbs.toExponential(1)}). NFE = steps for every row.`,
    '',
    `| solver | ${NFES.map((n) => `NFE ${n}`).join(' | ')} | vs official |`,
    `|---|${NFES.map(() => '---').join('|')}|---|`,
  ];
  for (const [name, options] of SOLVERS) {
    const errs: number[] = [];
    let official = 0;
    let worstDev = 0;
    for (const steps of NFES) {
      const plan = compilePlan({ schedule, steps, ...options });
      if (plan.nfe !== steps) throw new Error(`${name}: NFE ${plan.nfe} for steps ${steps}`);
      const res = executePlanReference(plan, { x: xT, shape, model: gmm.asModel() });
      const err = rmsError(res.x, gt.x0);
      errs.push(err);
      const ref = referenceError(scheduleName, { ...options, steps });
      if (ref !== undefined) {
        official++;
        worstDev = Math.max(worstDev, Math.abs(err / ref - 1));
      }
    }
    errors.set(name, errs);
    lines.push(`| ${name} | ${errs.map((e) => e.toExponential(2)).join(' | ')} | ${official ? `${official}/${NFES.length}, ${worstDev.toExponential(1)}` : '-'} |`);
  }
  // The most accurate solver per NFE, overall and per family.
  const best = (names: string[], i: number) => names.reduce((a, b) => (errors.get(b)![i] < errors.get(a)![i] ? b : a));
  const all = [...errors.keys()];
  lines.push(`| **best** | ${NFES.map((_, i) => best(all, i).replace(/ \((nsr|logsnr)\)/, '')).join(' | ')} | |`);
  lines.push('');
  lines.push(`| family: best error | ${NFES.map((n) => `NFE ${n}`).join(' | ')} |`);
  lines.push(`|---|${NFES.map(() => '---').join('|')}|`);
  for (const fam of ['DDIM', 'DPM-Solver++', 'SciRE faithful', 'SciRE consistent']) {
    const members = all.filter((n) => family(n) === fam);
    lines.push(`| ${fam} | ${NFES.map((_, i) => errors.get(best(members, i))![i].toExponential(2)).join(' | ')} |`);
  }
  lines.push('');
  console.log(lines.join('\n'));
}
