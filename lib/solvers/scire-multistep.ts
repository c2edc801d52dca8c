/**
 * Multistep SciRE-Solver (official multistep_scire_solver_*_update and the multistep loop;
 * docs/math.md sections 4 and 5).
 *
 * Notation: v is the integration variable (rho = NSR for v1, tau = 1/NSR for v2, see
 * scire-variable.ts), y the state, m_i the model outputs (eps for v1, x0 for v2) at the
 * previous times t_{i} (m0 newest), NSR_i = NSR_{t_i}, and for the step to t:
 *   h = v_t - v_{t_0}
 *
 * Order 1 (DDIM):     y_t = y + h m0
 *
 * Order 2, faithful (official, quirk 3):
 *   r  = ( log(NSR_1/NSR_0) / log(NSR_0/NSR_t) )^(1/4)        (NSR values for v1 and v2)
 *   y_t = y + h m0 + (h / (2 phi)) (m0 - m1) / r
 * Order 2, consistent (second-order Adams-Bashforth in v; Taylor y + h m + h^2/2 m'):
 *   m'(v_0) ~ (m0 - m1)/h1,  h1 = v_0 - v_1
 *   y_t = y + h m0 + (h^2 / (2 h1)) (m0 - m1)
 *
 * Order 3, faithful (official, quirk 4; ratios in NSR for v1 and v2, phi enters twice):
 *   r0 = phi (NSR_0 - NSR_1)/(NSR_t - NSR_0),  r1 = phi/(1+phi) (NSR_1 - NSR_2)/(NSR_0 - NSR_1)
 *   D1 = m0 - m1,  D2 = m0 - 2 m1 + m2
 *   y_t = y + h m0 + h/(2 r0 phi) D1 + h/(6 r0 phi r1 phi) D2
 * Order 3, consistent (third-order Adams-Bashforth in v; Taylor y + h m + h^2/2 m' + h^3/6 m''):
 *   h1 = v_0 - v_1, h2 = v_1 - v_2,  f01 = (m0 - m1)/h1,  f12 = (m1 - m2)/h2,
 *   f012 = (f01 - f12)/(h1 + h2),   m'(v_0) ~ f01 + h1 f012,  m''(v_0) ~ 2 f012
 *   y_t = y + h m0 + h^2/2 f01 + (h^3/3 + h1 h^2/2) f012
 *
 * Every update below is written the way docs/math.md sections 4 and 5 write it: one term per
 * line, the differences D1, D2 (faithful) or the divided differences f01, f012 (consistent) as
 * named linear expressions over the model registers (lib/solvers/linear-expr.ts), emitted as
 * one fused lincomb.
 *
 * Loop (official): one evaluation at t_0; warm-up steps j = 1..order-1 use order j; then
 * order `order`, lowered at the end when lowerOrderFinal (faithful: always, quirk 8,
 * step_order = min(order, steps + 1 - j); consistent: only when steps < 10, as DPM-Solver);
 * no evaluation after the last step. NFE = steps.
 */
import { emit, reg, scale, sub, sum, type LinearExpr } from './linear-expr';
import { multistepPhi, seriesPhi } from './phi';
import type { SolverContext } from './context';
import type { ScireVariable } from './scire-variable';

interface Past {
  t: number;
  reg: number;
}

/**
 * The increment y_t - y of one multistep step as a linear expression over the model registers
 * m[0] (newest, at t_0), m[1], m[2]; pastTimes oldest first (t_{order-1}, ..., t_0).
 */
export function multistepIncrement(
  ctx: SolverContext,
  variable: ScireVariable,
  pastTimes: readonly number[],
  t: number,
  faithful: boolean,
  phi: number,
  m: readonly number[],
): LinearExpr {
  const ns = ctx.schedule;
  const order = pastTimes.length;
  const t0 = pastTimes[order - 1];
  const h = variable.at(t) - variable.at(t0);
  const m0 = reg(m[0]);
  if (order === 1) {
    // y_t = y + h m0   (DDIM)
    return scale(h, m0);
  }
  const m1 = reg(m[1]);
  const t1 = pastTimes[order - 2];
  if (order === 2) {
    if (faithful) {
      // docs/math.md section 4, official quirk 3: the fourth root of the log-NSR step ratio
      const r = Math.pow(Math.log(ns.nsr(t1) / ns.nsr(t0)) / Math.log(ns.nsr(t0) / ns.nsr(t)), 0.25);
      const D1 = scale(1 / r, sub(m0, m1));
      return sum(
        scale(h, m0),
        scale(h / (2 * phi), D1),
      );
    }
    // docs/math.md section 5: Adams-Bashforth 2 in v
    const h1 = variable.at(t0) - variable.at(t1);
    const f01 = scale(1 / h1, sub(m0, m1));
    return sum(
      scale(h, m0),
      scale((h * h) / 2, f01),
    );
  }
  const m2 = reg(m[2]);
  const t2 = pastTimes[0];
  if (faithful) {
    // docs/math.md section 4, official quirk 4: NSR ratios for v1 and v2, phi enters twice
    const [nsr2, nsr1, nsr0, nsrT] = [ns.nsr(t2), ns.nsr(t1), ns.nsr(t0), ns.nsr(t)];
    const r0 = (phi * (nsr0 - nsr1)) / (nsrT - nsr0);
    const r1 = ((phi / (1 + phi)) * (nsr1 - nsr2)) / (nsr0 - nsr1);
    const D1 = sub(m0, m1);
    const D2 = sum(m0, scale(-2, m1), m2);
    return sum(
      scale(h, m0),
      scale(h / (2 * r0 * phi), D1),
      scale(h / (6 * r0 * phi * r1 * phi), D2),
    );
  }
  // docs/math.md section 5: Adams-Bashforth 3 in v (Taylor y + h m + h^2/2 m' + h^3/6 m'',
  // m' ~ f01 + h1 f012, m'' ~ 2 f012)
  const h1 = variable.at(t0) - variable.at(t1);
  const h2 = variable.at(t1) - variable.at(t2);
  const f01 = scale(1 / h1, sub(m0, m1));
  const f12 = scale(1 / h2, sub(m1, m2));
  const f012 = scale(1 / (h1 + h2), sub(f01, f12));
  return sum(
    scale(h, m0),
    scale((h * h) / 2, f01),
    scale((h * h * h) / 3 + (h1 * h * h) / 2, f012),
  );
}

/** Coefficients [c0, c1, c2] of m0, m1, m2 in y_t = y + c0 m0 + c1 m1 + c2 m2 (for tests). */
export function multistepCoefficients(
  ctx: SolverContext,
  variable: ScireVariable,
  pastTimes: readonly number[], // oldest first, newest last (t_{order-1}, ..., t_0)
  t: number,
  faithful: boolean,
  phi: number,
): number[] {
  const inc = multistepIncrement(ctx, variable, pastTimes, t, faithful, phi, [0, 1, 2]);
  return pastTimes.map((_, i) => inc.get(i) ?? 0);
}

/**
 * The corrector's increment y_t - y (docs/math.md section 9): the UniC idea applied to the
 * recursive differences. m_t = m(y_t^pred, t) is the evaluation the next step needs anyway;
 * the corrector integrates the polynomial through (v_t, m_t), (v_0, m0), ..., (v_{p-1}, m_{p-1})
 * (p = the step's predictor order) from v_0 to v_t, written as a Taylor series at v_0 whose
 * k-th derivative estimate carries the RDE factor 1/phi^k with the official phi of the step
 * (corrector 'faithful', whatever rde is) or none (phi = 1, 'consistent'):
 *
 *   D1_t = m_t - m0                                           (forward difference)
 *   f0t  = D1_t / h,  f10 = (m0 - m1)/h1,  f21 = (m1 - m2)/h2
 *   f10t = (f0t - f10)/(h + h1),  f210 = (f10 - f21)/(h1 + h2),  f210t = (f10t - f210)/(h + h1 + h2)
 *   p = 1:  y_t = y + h m0 + h/(2 phi) D1_t
 *   p = 2:  ... - h^3/(6 phi^2) f10t
 *   p = 3:  ... - (h^4/12 + h1 h^3/6)/phi^3 f210t
 * With phi = 1 these are the Adams-Moulton formulas in v (orders 2, 3, 4).
 */
export function correctorIncrement(
  variable: ScireVariable,
  pastTimes: readonly number[],
  t: number,
  phi: number,
  m: readonly number[],
  mT: number,
): LinearExpr {
  const order = pastTimes.length;
  const v = pastTimes.map((pt) => variable.at(pt)).reverse(); // v[0] = v_0 (newest)
  const h = variable.at(t) - v[0];
  const m0 = reg(m[0]);
  const D1_t = sub(reg(mT), m0);
  const terms: LinearExpr[] = [
    scale(h, m0),
    scale(h / (2 * phi), D1_t),
  ];
  if (order >= 2) {
    const h1 = v[0] - v[1];
    const f0t = scale(1 / h, D1_t);
    const f10 = scale(1 / h1, sub(m0, reg(m[1])));
    const f10t = scale(1 / (h + h1), sub(f0t, f10));
    terms.push(scale(-(h * h * h) / (6 * phi * phi), f10t));
    if (order === 3) {
      const h2 = v[1] - v[2];
      const f21 = scale(1 / h2, sub(reg(m[1]), reg(m[2])));
      const f210 = scale(1 / (h1 + h2), sub(f10, f21));
      const f210t = scale(1 / (h + h1 + h2), sub(f10t, f210));
      terms.push(scale(-((h * h * h * h) / 12 + (h1 * h * h * h) / 6) / (phi * phi * phi), f210t));
    }
  }
  return sum(...terms);
}

/**
 * Emits the multistep solve starting from the state in ctx.builder.x; returns the register
 * that holds the final state and one that is free at the end.
 */
export function emitScireMultistep(ctx: SolverContext, variable: ScireVariable): { state: number; spare: number } {
  const { order, steps, lowerOrderFinal, rde, corrector } = ctx.options;
  const faithful = rde !== 'consistent';
  const b = ctx.builder;
  const grid = ctx.timeSteps(steps);
  // With the corrector the newest evaluation is taken before the oldest is dropped: one more register.
  const regs = Array.from({ length: corrector === 'none' ? order : order + 1 }, () => b.reg());
  const free = regs.slice();
  // y: the state; yp: the predicted state the corrector's evaluation is taken at (they alternate).
  let y = b.x;
  let yp = corrector === 'none' ? -1 : b.reg();
  const evalInto = (src: number, t: number, dst: number): void =>
    ctx.evaluate({ src, inScale: variable.stateScale(t), t, target: variable.target, dst });
  const past: Past[] = [];
  const record = (t: number, r: number): void => {
    past.push({ t, reg: r });
    if (past.length > order) free.push((past.shift() as Past).reg);
  };

  // States as the authors' sample(..., return_intermediate=True) records them: x_T, then
  // x after every step (after the corrector when there is one).
  const mark = (r: number, t: number): void => ctx.markState(r, variable.stateScale(t), t);
  mark(y, grid[0]);
  const first = free.shift() as number;
  evalInto(y, grid[0], first);
  record(grid[0], first);
  const phis = seriesPhi(steps + 1);
  const lowerAtEnd = lowerOrderFinal && (faithful || steps < 10);

  for (let step = 1; step <= steps; step++) {
    const t = grid[step];
    let stepOrder: number;
    if (step < order) stepOrder = step; // warm-up with lower orders
    else stepOrder = lowerAtEnd ? Math.min(order, steps + 1 - step) : order;
    const phi = faithful ? multistepPhi(phis, step, steps, order) : 1;
    const used = past.slice(past.length - stepOrder);
    const usedTimes = used.map((p) => p.t);
    const m = used.map((p) => p.reg).reverse(); // newest first
    const increment = multistepIncrement(ctx, variable, usedTimes, t, faithful, phi, m);
    if (step === steps) {
      // y_t = y + increment  (no evaluation after the last step, so no corrector either)
      emit(b, y, sum(reg(y), increment));
      mark(y, t);
      break;
    }
    if (corrector === 'none') {
      emit(b, y, sum(reg(y), increment));
      mark(y, t);
      // The oldest value is not needed any more: its register takes the new evaluation.
      if (past.length === order) free.push((past.shift() as Past).reg);
      const mT = free.shift() as number;
      evalInto(y, t, mT);
      record(t, mT);
    } else {
      const mT = free.shift() as number;
      // predictor: y_t^pred = y + increment;  m_t = m(y_t^pred, t);  corrector: y_t = y + correction
      emit(b, yp, sum(reg(y), increment));
      evalInto(yp, t, mT);
      // faithful: the official phi of this step (also when the predictor is 'consistent')
      const phiC = corrector === 'faithful' ? multistepPhi(phis, step, steps, order) : 1;
      emit(b, yp, sum(reg(y), correctorIncrement(variable, usedTimes, t, phiC, m, mT)));
      [y, yp] = [yp, y];
      mark(y, t);
      record(t, mT);
    }
  }
  // After the last update no model output is needed any more: every model register is free.
  return { state: y, spare: regs[0] };
}
