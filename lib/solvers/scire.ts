/**
 * SciRE-Solver (Li, Chen, Zeng, arXiv 2308.07896) compiled to a Plan.
 *
 *   v1: state y = x/alpha_t, integration variable NSR_t, noise prediction
 *   v2: state y = x/sigma_t, integration variable 1/NSR_t, data prediction
 *
 * Plan layout:
 *   R0 = y_T = x_T / alpha_{tStart}  (v1)   or   x_T / sigma_{tStart}  (v2)      (initScale)
 *   ... multistep or singlestep updates (scire-multistep.ts / scire-singlestep.ts) ...
 *   x_0 = alpha_{tEnd} y  (v1)   or   sigma_{tEnd} y  (v2)                          (final.scale)
 *   corrector (multistep only): every step but the last is corrected with the evaluation the next
 *     step needs anyway (scire-multistep.ts correctorIncrement, docs/math.md section 9).
 *   denoiseToZero: one more evaluation, the data prediction at tEnd of x_0 (NFE + 1).
 */
import type { Plan } from '../plan';
import type { SolverContext } from './context';
import { emitScireMultistep } from './scire-multistep';
import { emitScireSinglestep } from './scire-singlestep';
import { scireVariable } from './scire-variable';

export function compileScire(ctx: SolverContext): Plan {
  const { algorithm, method, tStart, tEnd, denoiseToZero } = ctx.options;
  if (algorithm === null) throw new Error('internal: compileScire needs an algorithm');
  const variable = scireVariable(ctx.schedule, algorithm);
  const initScale = 1 / variable.stateScale(tStart);
  const { state, spare } =
    method === 'multistep' ? emitScireMultistep(ctx, variable) : { state: ctx.builder.x, ...emitScireSinglestep(ctx, variable) };
  const endScale = variable.stateScale(tEnd);
  const meta = ctx.options.corrector === 'none' ? {} : { corrector: ctx.options.corrector };
  if (!denoiseToZero) return ctx.finish(initScale, { src: state, scale: endScale }, meta);
  // x0 = data prediction at tEnd of x = endScale * y
  ctx.evaluate({ src: state, inScale: endScale, t: tEnd, target: 'data', dst: spare });
  ctx.markState(spare, 1, tEnd); // the authors record the denoised x too
  return ctx.finish(initScale, { src: spare, scale: 1 }, meta);
}
