/**
 * compilePlan: options -> Plan. Validates the options (lib/options.ts), builds the
 * SolverContext and hands it to the solver's compiler:
 *   'scire' -> compileScire (lib/solvers/scire.ts)
 *   'ddim'  -> compileDdim  (lib/solvers/ddim.ts)
 *   'dpmpp' -> compileDpmpp (lib/solvers/dpmpp.ts)
 *   'unipc' -> compileUniPc (lib/solvers/unipc.ts)
 */
import type { Plan } from './plan';
import { resolveOptions, type CompileOptions, type ResolvedOptions } from './options';
import { createSolverContext } from './solvers/context';
import { addInpainting } from './inpaint';
import { expectBoolean, withCode } from './validate';
import { compileDdim } from './solvers/ddim';
import { compileDpmpp } from './solvers/dpmpp';
import { compileScire } from './solvers/scire';
import { compileUniPc } from './solvers/unipc';

function compileSolver(resolved: ResolvedOptions): Plan {
  const ctx = createSolverContext(resolved);
  switch (resolved.solver) {
    case 'scire':
      return compileScire(ctx);
    case 'ddim':
      return compileDdim(ctx);
    case 'dpmpp':
      return compileDpmpp(ctx);
    case 'unipc':
      return compileUniPc(ctx);
  }
}

export function compilePlan(options: CompileOptions): Plan {
  // `inpaint` is applied to the compiled plan (lib/inpaint.ts); the solvers never see it.
  const { inpaint, ...solverOptions } = (options ?? {}) as CompileOptions;
  const withInpaint = inpaint === undefined ? false : expectBoolean('inpaint', inpaint);
  const resolved = resolveOptions(options === null || typeof options !== 'object' ? options : (solverOptions as CompileOptions));
  let plan: Plan;
  try {
    plan = compileSolver(resolved);
  } catch (e) {
    // The factories' schedules are finite on their domain; a schedule object written by hand
    // may not be. The plan builder refuses a non-finite coefficient: name the schedule.
    if (e instanceof Error && /^internal: non-finite/.test(e.message)) {
      throw withCode(
        new RangeError(
          `Expected a schedule whose functions return finite numbers between tEnd (${resolved.tEnd}) and tStart ` +
            `(${resolved.tStart}) for schedule but received one that gives a non-finite plan coefficient (${e.message.slice(10)})`,
        ),
        'ERR_OUT_OF_RANGE',
      );
    }
    throw e;
  }
  if (resolved.thresholding && !plan.ops.some((op) => op.op === 'threshold')) {
    // Thresholding acts on data predictions only; refuse silently ignoring it.
    const hint =
      resolved.solver === 'scire'
        ? "use algorithm 'v2' (data prediction) or denoiseToZero: true"
        : "use solver 'dpmpp', 'unipc' or 'scire' with algorithm 'v2'";
    throw withCode(new TypeError(
      `Expected no thresholding for solver '${resolved.solver}'${resolved.algorithm ? ` with algorithm '${resolved.algorithm}'` : ''} ` +
        `but received thresholding: this configuration makes no data prediction to threshold (${hint})`,
    ), 'ERR_INVALID_ARG_VALUE');
  }
  return withInpaint ? addInpainting(plan, resolved.schedule) : plan;
}
