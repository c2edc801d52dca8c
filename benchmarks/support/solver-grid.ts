/**
 * The solver grid of the accuracy benchmarks (issue 6): every configuration measured the
 * same way, by name. NFE targets are passed as `steps`; singlestep_fixed spends
 * K·order evaluations with K = floor(steps / order), so its actual NFE can be lower than
 * the target (the tables print it next to the error when it differs).
 */
import type { CompileOptions } from '../../lib/options';

export type SolverConfig = Omit<CompileOptions, 'schedule' | 'steps'>;

export interface GridEntry {
  name: string;
  options: SolverConfig;
  /**
   * Family for the "best per family" summary: 'SciRE' = the official algorithm (faithful RDE, no
   * corrector); 'SciRE+' = this package's additions (consistent RDE, the corrector); 'auto' =
   * preset 'auto' (lib/presets/auto.ts).
   */
  family: 'DDIM' | 'DPM-Solver++' | 'UniPC' | 'SciRE' | 'SciRE+' | 'auto';
}

export const NFE_GRID = [5, 6, 8, 10, 12, 15, 20, 50];

/**
 * DDIM and DPM-Solver++ 2M/3M, SciRE v1/v2 x (multistep, singlestep_fixed) x order 2/3 x (NSR,
 * time-uniform), SciRE's additions (consistent, corrector), UniPC, and preset 'auto'.
 */
export function fullGrid(): GridEntry[] {
  const out: GridEntry[] = [
    { name: 'DDIM (logsnr)', options: { solver: 'ddim', skip: 'logsnr' }, family: 'DDIM' },
    { name: 'DPM-Solver++ 2M (logsnr)', options: { solver: 'dpmpp', order: 2, skip: 'logsnr' }, family: 'DPM-Solver++' },
    { name: 'DPM-Solver++ 3M (logsnr)', options: { solver: 'dpmpp', order: 3, skip: 'logsnr' }, family: 'DPM-Solver++' },
  ];
  for (const skip of ['nsr', 'time_uniform'] as const) {
    for (const algorithm of ['v1', 'v2'] as const) {
      for (const method of ['multistep', 'singlestep_fixed'] as const) {
        for (const order of [2, 3]) {
          const tag = method === 'multistep' ? `${order}M` : `${order}S-fixed`;
          out.push({
            name: `SciRE ${algorithm} ${tag} (${skip === 'nsr' ? 'nsr' : 'time-uniform'})`,
            options: { solver: 'scire', algorithm, method, order, skip },
            family: 'SciRE',
          });
        }
      }
    }
  }
  // The exact-Taylor variant of the package (docs/math.md section 5), for comparison.
  out.push({ name: 'SciRE v1 3M consistent (nsr)', options: { solver: 'scire', algorithm: 'v1', order: 3, skip: 'nsr', rde: 'consistent' }, family: 'SciRE+' });
  // The SciRE corrector (docs/math.md section 9).
  for (const order of [2, 3]) {
    out.push({ name: `SciRE v1 ${order}M + corrector (nsr)`, options: { solver: 'scire', algorithm: 'v1', order, skip: 'nsr', corrector: 'consistent' }, family: 'SciRE+' });
  }
  out.push({ name: 'SciRE v1 2M + corrector (time-quadratic)', options: { solver: 'scire', algorithm: 'v1', order: 2, skip: 'time_quadratic', corrector: 'consistent' }, family: 'SciRE+' });
  out.push({ name: 'SciRE v1 3M consistent + corrector (nsr)', options: { solver: 'scire', algorithm: 'v1', order: 3, skip: 'nsr', rde: 'consistent', corrector: 'consistent' }, family: 'SciRE+' });
  // UniPC as its authors run it (docs/math.md section 10): bh1/bh2, orders 2/3, logSNR and time-uniform steps.
  for (const skip of ['logsnr', 'time_uniform'] as const) {
    for (const variant of ['bh1', 'bh2'] as const) {
      for (const order of [2, 3]) {
        out.push({
          name: `UniPC ${variant} ${order}M (${skip === 'logsnr' ? 'logsnr' : 'time-uniform'})`,
          options: { solver: 'unipc', variant, order, skip },
          family: 'UniPC',
        });
      }
    }
  }
  out.push({ name: 'auto (preset)', options: { preset: 'auto' }, family: 'auto' });
  return out;
}

/** The reduced grid of the Fashion-MNIST runs (CPU time): the default, its 2M sibling and the baselines. */
export function fmnistGrid(): GridEntry[] {
  const keep = new Set([
    'SciRE v1 3M (nsr)',
    'SciRE v1 2M (nsr)',
    'SciRE v2 3M (nsr)',
    'SciRE v1 3S-fixed (nsr)',
    'SciRE v1 3M (time-uniform)',
    'DPM-Solver++ 2M (logsnr)',
    'DPM-Solver++ 3M (logsnr)',
    'DDIM (logsnr)',
    'UniPC bh1 3M (logsnr)',
    'UniPC bh2 2M (logsnr)',
    'SciRE v1 2M + corrector (time-quadratic)',
    'auto (preset)',
  ]);
  return fullGrid().filter((e) => keep.has(e.name));
}

export function gridByNames(names: string[]): GridEntry[] {
  const all = fullGrid();
  return names.map((n) => {
    const e = all.find((g) => g.name === n);
    if (!e) throw new RangeError(`unknown solver '${n}'; known: ${all.map((g) => g.name).join(', ')}`);
    return e;
  });
}
