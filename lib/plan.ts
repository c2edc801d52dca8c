/**
 * The Plan: what a solver compiles to and what an executor runs.
 *
 * Between two network evaluations every training-free solver of the SciRE / DPM-Solver
 * family is a linear combination of tensors with scalar coefficients that depend only on
 * the noise schedule and the step grid. A Plan lists those combinations as ops over
 * numbered tensor registers R[0..numRegs-1], all of the same shape as the sample.
 * Every coefficient is a precomputed float64 number; executors never see the schedule.
 *
 * Execution contract (shared by the TS reference executor and the native executor):
 *
 *   R[0] = initScale * x_T                      (the other registers start undefined)
 *   for op of ops:
 *     eval:      x_in = inScale * R[src]
 *                raw  = model(x_in, tInput)      (one network evaluation, NFE += 1)
 *                R[dst] = outX * x_in + outM * raw
 *                with classifier guidance (a run given a classifier, labels y and a scale s):
 *                  g = grad_{x_in} sum_b log softmax(classifier(x_in, tInput))[b, y_b]
 *                  R[dst] += s * gradCoef * g            (the same fused pass)
 *     lincomb:   R[dst] = sum_k coef_k * R[reg_k]   (1..4 terms; dst may equal a source)
 *                with `inpaint: { a, s }` (lib/inpaint.ts), in the same pass:
 *                R[dst] = (1 - m) * sum_k coef_k R[reg_k] + m * (a * x0 + s * z)
 *     inpaint:   R[reg] = (1 - m) * R[reg] + m * (a * x0 + s * z)
 *                (m: the mask, x0: the known data, z: the run's starting noise; inputs of the run)
 *     threshold: per batch element b (the leading dimension),
 *                s_b = quantile(|R[reg]_b|, ratio)  (linear interpolation, as torch.quantile)
 *                s_b = max(s_b, maxVal)
 *                R[reg]_b = clamp(R[reg]_b, -s_b, s_b) / s_b
 *                (dynamic thresholding exactly as DPM-Solver's dynamic_thresholding_fn)
 *   result = final.scale * R[final.src]
 *   (with final.inpaint: result = (1 - m) * final.scale * R[final.src] + m * (a * x0 + s * z))
 *
 * Classifier-free guidance is applied by the executor to `raw` (one batched forward over
 * [uncond; cond], raw = uncond + g * (cond - uncond)) before the output conversion.
 *
 * Classifier guidance (the authors' model_wrapper(guidance_type="classifier")) shifts the noise
 * prediction,  eps' = eps - s * sigma_t * grad_x log p(y | x_t, tInput),  with sigma_t at the
 * evaluation's continuous time. Whatever the model type, R[dst] is affine in eps, so the shift
 * enters R[dst] as  gradCoef * s * grad  with  gradCoef = d(R[dst])/d(eps) * (-sigma_t):
 * -sigma_t for a noise prediction, sigma_t^2 / alpha_t for a data prediction
 * (x0 = (x - sigma_t eps) / alpha_t). The compiler writes it on every eval op (float64).
 */

/** One network evaluation with its input scaling and output conversion fused around it. */
export interface EvalOp {
  op: 'eval';
  /** Model input time passed to the network (e.g. 1000 * (t - 1/N) for discrete DDPM models). */
  t: number;
  /** The solver's continuous time of this evaluation (for progress reports and tests). */
  tCont: number;
  src: number;
  inScale: number;
  dst: number;
  outX: number;
  outM: number;
  /**
   * Optional: the data prediction x0 of this evaluation as a combination of registers, read
   * right after this op (and after the 'threshold' op that may follow it). Only read when a
   * run asks for intermediates 'x0' (lib/intermediates.ts); executors ignore it otherwise.
   */
  x0?: Array<[number, number]>;
  /**
   * Classifier guidance: the coefficient with which s * grad_x log p(y | x_in, t) enters
   * R[dst] (d(R[dst])/d(eps) * (-sigma_t), see the contract above). Written by compilePlan on
   * every eval op; only read by a run with a classifier, which refuses a plan without it.
   */
  gradCoef?: number;
}

/** R[dst] = sum coef * R[reg]: one fused pass, each input read once, the output written once. */
export interface LincombOp {
  op: 'lincomb';
  dst: number;
  /** 1 to 4 [coefficient, register] pairs. */
  terms: Array<[number, number]>;
  /** Optional: the inpainting correction fused into this pass (see the contract above). */
  inpaint?: InpaintCorrection;
}

/**
 * The inpainting correction of a register that holds the solver state x_t as scale * R:
 * R <- (1 - m) R + m (a x0 + s z) with a = alpha_t / scale, s = sigma_t / scale, so that the
 * known region (m = 1) is put on alpha_t x0 + sigma_t z (lib/inpaint.ts).
 */
export interface InpaintCorrection {
  a: number;
  s: number;
}

/** The inpainting correction of a register on its own (where no lincomb writes the state). */
export interface InpaintOp {
  op: 'inpaint';
  reg: number;
  a: number;
  s: number;
}

/** Dynamic thresholding of a data prediction held in a register (see the contract above). */
export interface ThresholdOp {
  op: 'threshold';
  reg: number;
  ratio: number;
  maxVal: number;
}

/** One recorded solver state (Plan.states). */
export interface PlanState {
  /** Number of ops run before the state is read (0: x_T before any op). */
  after: number;
  terms: Array<[number, number]>;
  /** Model input time and the solver's continuous time of the state. */
  t: number;
  tCont: number;
}

export type PlanOp = EvalOp | LincombOp | ThresholdOp | InpaintOp;

export interface Plan {
  /** Format tag, so a serialized plan can be checked before it is executed. */
  format: 'scire-plan-v1';
  /** Number of registers the ops use (all indices are < numRegs). */
  numRegs: number;
  /** R[0] = initScale * x_T. */
  initScale: number;
  ops: PlanOp[];
  /** result = scale * R[src] (with inpaint: corrected as in the contract above). */
  final: { src: number; scale: number; inpaint?: InpaintCorrection };
  /** Number of network evaluations (number of eval ops). */
  nfe: number;
  /**
   * Optional: where the solver state x_t appears (the states the authors' sample(...,
   * return_intermediate=True) records): x_t = sum coef * R[reg], read after the first
   * `after` ops. Only read when a run asks for intermediates 'x' (lib/intermediates.ts).
   */
  states?: PlanState[];
  /** Human-readable description of the solve (solver, order, steps, skip, ...). */
  meta: Record<string, unknown>;
}

/** Maximum number of terms in one lincomb op (the fused kernels are specialised up to this). */
export const MAX_LINCOMB_TERMS = 4;

/**
 * Limits of a plan, the same in checkPlan and in the native validator (native/plan.h
 * kMaxRegisters / kMaxOps): solvers use fewer than 10 registers, and the 10 000 steps a
 * solve may have at most take fewer than 10 ops per step (singlestep order 3 with
 * thresholding: 3 evals, 2 thresholds, 3 lincombs).
 */
export const MAX_PLAN_REGISTERS = 64;
export const MAX_PLAN_OPS = 200_000;

/**
 * Largest magnitude of an inpainting coefficient a or s (float32's largest finite value): the
 * native executor computes in float32. Solvers give |a|, |s| < 1e4 (a = alpha_t / scale).
 */
export const MAX_INPAINT_COEF = 3.4e38;
