/**
 * compilePlan: options -> Plan. Validates the options (lib/options.ts), builds the
 * SolverContext and hands it to the solver's compiler:
 *   'scire' -> compileScire (lib/solvers/scire.ts)
 *   'ddim'  -> compileDdim  (lib/solvers/ddim.ts)
 *   'dpmpp' -> compileDpmpp (lib/solvers/dpmpp.ts)
 */
import type { Plan } from './plan';
import { resolveOptions, type CompileOptions } from './options';
import { createSolverContext } from './solvers/context';
import { withCode } from './validate';
import { compileDdim } from './solvers/ddim';
import { compileDpmpp } from './solvers/dpmpp';
import { compileScire } from './solvers/scire';

export function compilePlan(options: CompileOptions): Plan {
  const resolved = resolveOptions(options);
  const ctx = createSolverContext(resolved);
  let plan: Plan;
  switch (resolved.solver) {
    case 'scire':
      plan = compileScire(ctx);
      break;
    case 'ddim':
      plan = compileDdim(ctx);
      break;
    case 'dpmpp':
      plan = compileDpmpp(ctx);
      break;
  }
  if (resolved.thresholding && !plan.ops.some((op) => op.op === 'threshold')) {
    // Thresholding acts on data predictions only; refuse silently ignoring it.
    const hint =
      resolved.solver === 'scire'
        ? "use algorithm 'v2' (data prediction) or denoiseToZero: true"
        : "use solver 'dpmpp' or 'scire' with algorithm 'v2'";
    throw withCode(new TypeError(
      `Expected no thresholding for solver '${resolved.solver}'${resolved.algorithm ? ` with algorithm '${resolved.algorithm}'` : ''} ` +
        `but received thresholding: this configuration makes no data prediction to threshold (${hint})`,
    ), 'ERR_INVALID_ARG_VALUE');
  }
  return plan;
}
