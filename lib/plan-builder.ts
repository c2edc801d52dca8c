/**
 * PlanBuilder: the small assembler every solver uses to emit a Plan.
 *
 * Solvers think in named tensors (the state x, model outputs m0, m1, ...); the builder
 * hands out register numbers and records ops. Coefficients are plain float64 numbers.
 */
import { MAX_LINCOMB_TERMS, type EvalOp, type Plan, type PlanOp, type PlanState } from './plan';

/** What the network output is (the `modelType` option). */
export type ModelType = 'noise' | 'x_start' | 'v' | 'score';
/** What the solver wants an evaluation converted to. */
export type Prediction = 'noise' | 'data';

/**
 * Coefficients (outX, outM) with  target = outX * x_in + outM * raw,  where x_in is the
 * network input at a time with marginal coefficients alpha_t, sigma_t
 * (x_t = alpha_t x_0 + sigma_t eps). The relations, as in DPM-Solver's model_wrapper:
 *   noise:   eps = raw
 *   x_start: eps = (x - alpha x0) / sigma
 *   v:       eps = alpha v + sigma x            (v = alpha eps - sigma x0, alpha^2 + sigma^2 = 1)
 *   score:   eps = -sigma score                 (score = grad log p_t(x))
 * and the data prediction x0 = (x - sigma eps) / alpha.
 * For EDM-style schedules (alpha = 1) 'v' is rejected upstream: it needs alpha^2+sigma^2 = 1.
 */
export function outputConversion(
  modelType: ModelType,
  target: Prediction,
  alpha: number,
  sigma: number,
): { outX: number; outM: number } {
  // First express eps = eX * x + eM * raw.
  let eX: number;
  let eM: number;
  switch (modelType) {
    case 'noise':
      eX = 0;
      eM = 1;
      break;
    case 'x_start':
      eX = 1 / sigma;
      eM = -alpha / sigma;
      break;
    case 'v':
      eX = sigma;
      eM = alpha;
      break;
    case 'score':
      eX = 0;
      eM = -sigma;
      break;
  }
  if (target === 'noise') return { outX: eX, outM: eM };
  // x0 = (x - sigma eps) / alpha; for an x_start model keep it exact: x0 = raw.
  if (modelType === 'x_start') return { outX: 0, outM: 1 };
  return { outX: (1 - sigma * eX) / alpha, outM: (-sigma * eM) / alpha };
}

export class PlanBuilder {
  private readonly ops: PlanOp[] = [];
  private nRegs = 1; // R[0] is the state x
  private nfe = 0;
  private readonly states: PlanState[] = [];

  /** Register 0 holds the (scaled) initial state. */
  readonly x = 0;

  /** A fresh register. */
  reg(): number {
    return this.nRegs++;
  }

  /** One network evaluation: R[dst] = outX * (inScale R[src]) + outM * model(inScale R[src], t). */
  evaluate(args: {
    src: number;
    dst: number;
    t: number;
    tCont: number;
    inScale: number;
    outX: number;
    outM: number;
    gradCoef?: number;
    x0?: Array<[number, number]>;
  }): void {
    const { x0, gradCoef, ...scalars } = args;
    for (const [k, v] of Object.entries(scalars)) {
      if (!Number.isFinite(v)) throw new Error(`internal: non-finite ${k} (${v}) in eval op at t=${args.tCont}`);
    }
    const op: EvalOp = { op: 'eval', ...scalars };
    if (gradCoef !== undefined && Number.isFinite(gradCoef)) op.gradCoef = gradCoef;
    if (x0 && x0.every(([c]) => Number.isFinite(c))) op.x0 = x0;
    this.ops.push(op);
    this.nfe++;
  }

  /** R[dst] = sum coef * R[reg]. Zero coefficients are dropped; more than 4 terms are chained. */
  lincomb(dst: number, terms: Array<[number, number]>): void {
    for (const [c] of terms) {
      if (!Number.isFinite(c)) throw new Error(`internal: non-finite lincomb coefficient ${c}`);
    }
    let live = terms.filter(([c]) => c !== 0);
    if (live.length === 0) live = [[0, terms.length ? terms[0][1] : dst]];
    // Chain long combinations: the first op writes dst, each later op folds dst back in.
    // Only safe when dst is not read by a later chunk; solvers never need more than 4 terms
    // in practice, so this path exists for robustness and is checked.
    if (live.length <= MAX_LINCOMB_TERMS) {
      this.ops.push({ op: 'lincomb', dst, terms: live });
      return;
    }
    if (live.some(([, r]) => r === dst)) {
      throw new Error('internal: a lincomb of more than 4 terms may not read its destination');
    }
    this.ops.push({ op: 'lincomb', dst, terms: live.slice(0, MAX_LINCOMB_TERMS) });
    let rest = live.slice(MAX_LINCOMB_TERMS);
    while (rest.length) {
      const chunk = rest.slice(0, MAX_LINCOMB_TERMS - 1);
      rest = rest.slice(MAX_LINCOMB_TERMS - 1);
      this.ops.push({ op: 'lincomb', dst, terms: [[1, dst], ...chunk] });
    }
  }

  /** Dynamic thresholding of the data prediction in `reg`. */
  threshold(reg: number, ratio: number, maxVal: number): void {
    this.ops.push({ op: 'threshold', reg, ratio, maxVal });
  }

  /** Records that x_t = scale * R[reg] right now (after the ops emitted so far). */
  markState(reg: number, scale: number, t: number, tCont: number): void {
    if (!Number.isFinite(scale)) throw new Error(`internal: non-finite state scale ${scale} at t=${tCont}`);
    this.states.push({ after: this.ops.length, terms: [[scale, reg]], t, tCont });
  }

  build(initScale: number, final: { src: number; scale: number }, meta: Record<string, unknown>): Plan {
    return {
      format: 'scire-plan-v1',
      numRegs: this.nRegs,
      initScale,
      ops: this.ops.slice(),
      final,
      nfe: this.nfe,
      ...(this.states.length ? { states: this.states.slice() } : {}),
      meta,
    };
  }
}
