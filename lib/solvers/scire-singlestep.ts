/**
 * Singlestep SciRE-Solver (official singlestep_scire_solver_*_update and the singlestep loop;
 * docs/math.md section 4).
 *
 * One outer step from s to t with h = v_t - v_s (v = NSR for v1, 1/NSR for v2), intermediate
 * variable values v_s1 = v_s + r1 h, v_s2 = v_s + r2 h, times s_i = t(v_si), m = model output:
 *
 * Order 1 (DDIM):  y_t = y + h m_s
 * Order 2:         y_s1 = y + r1 h m_s
 *                  y_t  = y + h m_s + h/(2 r1 phi) (m_s1 - m_s)
 * Order 3:         y_s1 = y + r1 h m_s
 *                  y_s2 = y + r2 h m_s + c2 h (m_s1 - m_s)
 *                  y_t  = y + h m_s + h/(2 r2 phi) (m_s2 - m_s)
 *   faithful:   c2 = r2/(2 r1 phi)   (the official coefficient)
 *   consistent: c2 = r2^2/(2 r1)     (Taylor: y(v_s + r2 h) = y + r2 h m + (r2 h)^2/2 m',
 *                                     m' ~ (m_s1 - m_s)/(r1 h)), phi = 1
 *
 * r1, r2, faithful (quirk 5): on 'discrete' schedules from an inner grid of `order` intervals
 * over [s, t] built with the same skip rule, r_i = (NSR_inner[i] - NSR_inner[0]) / (NSR_inner[-1]
 * - NSR_inner[0]) (ratios of NSR differences, also for v2); on every continuous schedule the
 * official defaults r1 = 1/2 (order 2), r1 = 1/3, r2 = 2/3 (order 3). (The official code does
 * nothing at all for 'cosine', quirk 1; we treat it like 'linear'.)
 * r1, r2, consistent: always 1/2 and 1/3, 2/3 (Heun's third-order nodes, for which the final
 * combination above is third order).
 *
 * Every update is written as docs/math.md section 4 writes it (one term per line, the
 * differences D1 = m_s1 - m_s, D2 = m_s2 - m_s as named linear expressions over the registers,
 * lib/solvers/linear-expr.ts), emitted as one fused lincomb.
 *
 * phi per outer step: see phi.ts (singlestepPhi, K = steps // order).
 * Outer grid: singlestep_fixed: K = steps // order steps of order `order` on the K-interval
 * grid (NFE = K * order); singlestep_agile: the official order list (below) on the
 * `steps`-interval grid at the cumulative sums of the orders (NFE = steps).
 */
import { emit, reg, scale, sub, sum } from './linear-expr';
import { seriesPhi, singlestepPhi } from './phi';
import type { SolverContext } from './context';
import type { ScireVariable } from './scire-variable';
import { singlestepOrders } from './singlestep-orders';

/** The official get_orders_and_timesteps_for_singlestep_solver order list (sums to steps). */
export { singlestepOrders as agileOrders };

/** Outer times and per-step orders of a singlestep solve. */
export function singlestepPlan(ctx: SolverContext): { outer: number[]; orders: number[] } {
  const { method, steps, order } = ctx.options;
  if (method === 'singlestep_fixed') {
    const K = Math.floor(steps / order);
    return { outer: ctx.timeSteps(K), orders: Array<number>(K).fill(order) };
  }
  const orders = singlestepOrders(steps, order);
  const grid = ctx.timeSteps(steps);
  const outer = [grid[0]];
  let sum = 0;
  for (const o of orders) {
    sum += o;
    outer.push(grid[sum]);
  }
  return { outer, orders };
}

/** The intermediate fractions r1 (order >= 2) and r2 (order 3) of one outer step s -> t. */
export function intermediateRatios(ctx: SolverContext, s: number, t: number, order: number, faithful: boolean): number[] {
  if (order === 1) return [];
  if (faithful && ctx.schedule.kind === 'discrete') {
    // r_i = (NSR_inner[i] - NSR_inner[0]) / (NSR_inner[order] - NSR_inner[0])
    const nsrInner = ctx.timeStepsBetween(s, t, order).map((ti) => ctx.schedule.nsr(ti));
    const hInner = nsrInner[order] - nsrInner[0];
    const r = [(nsrInner[1] - nsrInner[0]) / hInner];
    if (order === 3) r.push((nsrInner[2] - nsrInner[0]) / hInner);
    return r;
  }
  return order === 2 ? [0.5] : [1 / 3, 2 / 3];
}

/** Emits the singlestep solve on state register ctx.builder.x; returns a register free at the end. */
export function emitScireSinglestep(ctx: SolverContext, variable: ScireVariable): { spare: number } {
  const { steps, order, rde } = ctx.options;
  const faithful = rde !== 'consistent';
  const b = ctx.builder;
  const y = b.x;
  const { outer, orders } = singlestepPlan(ctx);
  const K = Math.floor(steps / order);
  const phis = seriesPhi(K);
  const mS = b.reg();
  const maxOrder = Math.max(...orders);
  const mS1 = maxOrder >= 2 ? b.reg() : -1;
  const mS2 = maxOrder >= 3 ? b.reg() : -1;
  const tmp = maxOrder >= 2 ? b.reg() : -1;
  const evalInto = (src: number, t: number, dst: number): void =>
    ctx.evaluate({ src, inScale: variable.stateScale(t), t, target: variable.target, dst });

  // States as the authors' singlestep sample(..., return_intermediate=True) records them: x
  // after every outer step (not x_T).
  orders.forEach((o, step) => {
    const s = outer[step];
    const t = outer[step + 1];
    emitOuterStep(o, step, s, t);
    ctx.markState(y, variable.stateScale(t), t);
  });
  return { spare: mS };

  function emitOuterStep(o: number, step: number, s: number, t: number): void {
    const phi = faithful && o > 1 ? singlestepPhi(phis, step, K) : 1;
    const vS = variable.at(s);
    const h = variable.at(t) - vS;
    const m_s = reg(mS);
    evalInto(y, s, mS);
    if (o === 1) {
      // y_t = y + h m_s   (DDIM)
      emit(b, y, sum(reg(y), scale(h, m_s)));
      return;
    }
    const [r1, r2] = intermediateRatios(ctx, s, t, o, faithful);
    // y_s1 = y + r1 h m_s
    emit(b, tmp, sum(reg(y), scale(r1 * h, m_s)));
    evalInto(tmp, variable.timeAt(vS + r1 * h), mS1);
    const D1 = sub(reg(mS1), m_s);
    if (o === 2) {
      // y_t = y + h m_s + h/(2 r1 phi) D1
      emit(
        b,
        y,
        sum(
          reg(y),
          scale(h, m_s),
          scale(h / (2 * r1 * phi), D1),
        ),
      );
      return;
    }
    // y_s2 = y + r2 h m_s + c2 h D1,  c2 = r2/(2 r1 phi) (faithful) or r2^2/(2 r1) (consistent)
    const c2 = faithful ? r2 / (2 * r1 * phi) : (r2 * r2) / (2 * r1);
    emit(
      b,
      tmp,
      sum(
        reg(y),
        scale(r2 * h, m_s),
        scale(c2 * h, D1),
      ),
    );
    evalInto(tmp, variable.timeAt(vS + r2 * h), mS2);
    const D2 = sub(reg(mS2), m_s);
    // y_t = y + h m_s + h/(2 r2 phi) D2
    emit(
      b,
      y,
      sum(
        reg(y),
        scale(h, m_s),
        scale(h / (2 * r2 * phi), D2),
      ),
    );
  }
}
