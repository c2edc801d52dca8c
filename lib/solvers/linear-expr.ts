/**
 * Linear expressions over tensor registers, so an update can be written the way the paper
 * writes it (one term per line, differences D1_0 = (m0 - m1) / r0 as named values) and then
 * emitted as a single fused lincomb op with one coefficient per register.
 *
 *   const D1_0 = scale(1 / r0, sub(reg(m0), reg(m1)));
 *   emit(builder, x, sum(scale(sigma_t / sigma_s, reg(x)), scale(-alpha_t * phi_1, reg(m0)), ...));
 *
 * Expanding the combination costs rounding of order 1e-16 relative per coefficient; it is
 * what lets one pass over memory do the whole update.
 */
import type { PlanBuilder } from '../plan-builder';

/** sum_k coef_k * R[reg_k], one entry per register (insertion order kept for readable plans). */
export type LinearExpr = ReadonlyMap<number, number>;

/** The register itself: 1 * R[r]. */
export function reg(r: number): LinearExpr {
  return new Map([[r, 1]]);
}

/** c * e. */
export function scale(c: number, e: LinearExpr): LinearExpr {
  const out = new Map<number, number>();
  for (const [r, k] of e) out.set(r, c * k);
  return out;
}

/** e_1 + e_2 + ... (coefficients of the same register add up). */
export function sum(...es: LinearExpr[]): LinearExpr {
  const out = new Map<number, number>();
  for (const e of es) for (const [r, k] of e) out.set(r, (out.get(r) ?? 0) + k);
  return out;
}

/** a - b. */
export function sub(a: LinearExpr, b: LinearExpr): LinearExpr {
  return sum(a, scale(-1, b));
}

/** Emits R[dst] = e as one lincomb op (dst may appear in e). */
export function emit(builder: PlanBuilder, dst: number, e: LinearExpr): void {
  builder.lincomb(dst, [...e].map(([r, k]): [number, number] => [k, r]));
}
