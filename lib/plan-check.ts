/**
 * checkPlan: structural validation of a Plan before it is executed (by the TS reference
 * executor or handed to the native executor). Throws a TypeError/RangeError naming the op
 * and field; returns the plan unchanged.
 *
 * Checked: format tag; numRegs (at most MAX_PLAN_REGISTERS); at most MAX_PLAN_OPS ops (the
 * native validator, native/plan.cc, has the same limits); every register index an integer in [0, numRegs); every
 * coefficient, scale and time finite; lincomb with 1..MAX_LINCOMB_TERMS terms; threshold
 * ratio in (0, 1] and maxVal > 0; no register read before it is written (R0 is written by
 * the initialisation); nfe equal to the number of eval ops; final.src written. With
 * `intermediates` the marks that mode reads (plan.states for 'x', the eval ops' x0 terms for
 * 'x0') follow the same rules: 1 to 4 finite [coefficient, register] terms of registers
 * written by then (x0: after the eval op; a state: after its first `after` ops), states in
 * non-decreasing `after` order. Inpainting (lib/inpaint.ts): an 'inpaint' op reads and writes
 * a written register; its `a` and `s`, and those of a lincomb's or the final's optional
 * `inpaint: { a, s }`, are finite numbers of at most MAX_INPAINT_COEF in magnitude (float32
 * range, so that the native float32 executor stays finite). Without it the marks are not read, so a plan whose ops were
 * edited (and whose marks went stale) still runs.
 *
 * An eval op's gradCoef (classifier guidance) is optional; when present it must be finite, and
 * with `needs.gradCoef` (a run given a classifier) every eval op must have one.
 */
import { MAX_INPAINT_COEF, MAX_LINCOMB_TERMS, MAX_PLAN_OPS, MAX_PLAN_REGISTERS, type Plan } from './plan';
import { expectFiniteNumber, expectInteger, expectObject, expectOneOf, invalidType, outOfRange } from './validate';

export function checkPlan(plan: Plan, intermediates?: 'x' | 'x0', needs: { gradCoef?: boolean } = {}): Plan {
  const p = expectObject('plan', plan);
  expectOneOf('plan.format', ['scire-plan-v1'], p.format);
  const numRegs = expectInteger('plan.numRegs', p.numRegs, { min: 1, max: MAX_PLAN_REGISTERS });
  expectFiniteNumber('plan.initScale', p.initScale);
  if (!Array.isArray(p.ops)) throw invalidType('plan.ops', 'an array of ops', p.ops);
  if (p.ops.length > MAX_PLAN_OPS) throw outOfRange('plan.ops.length', `at most ${MAX_PLAN_OPS}`, p.ops.length);
  const written = new Array<boolean>(numRegs).fill(false);
  written[0] = true;
  const regField = (field: string, value: unknown): number => expectInteger(field, value, { min: 0, max: numRegs - 1 });
  const readReg = (field: string, value: unknown): void => {
    const r = regField(field, value);
    if (!written[r]) throw outOfRange(field, 'a register written by an earlier op', r);
  };
  const checkTerms = (f: string, terms: unknown): void => {
    if (!Array.isArray(terms) || terms.length < 1 || terms.length > MAX_LINCOMB_TERMS) {
      throw invalidType(f, `an array of 1 to ${MAX_LINCOMB_TERMS} [coefficient, register] pairs`, terms);
    }
    terms.forEach((term: unknown, k: number) => {
      if (!Array.isArray(term) || term.length !== 2) throw invalidType(`${f}[${k}]`, 'a [coefficient, register] pair', term);
      expectFiniteNumber(`${f}[${k}][0]`, term[0]);
      readReg(`${f}[${k}][1]`, term[1]);
    });
  };
  // plan.states (optional), checked against the registers written after their `after` ops.
  let states: Array<Record<string, unknown>> = [];
  if (intermediates === 'x' && p.states !== undefined) {
    if (!Array.isArray(p.states)) throw invalidType('plan.states', 'an array of states', p.states);
    let last = 0;
    states = (p.states as unknown[]).map((raw, j) => {
      const s = expectObject(`plan.states[${j}]`, raw);
      const after = expectInteger(`plan.states[${j}].after`, s.after, { min: last, max: (p.ops as unknown[]).length });
      last = after;
      expectFiniteNumber(`plan.states[${j}].t`, s.t);
      expectFiniteNumber(`plan.states[${j}].tCont`, s.tCont);
      return s;
    });
  }
  let nextState = 0;
  const checkStatesAt = (done: number): void => {
    while (nextState < states.length && states[nextState].after === done) {
      checkTerms(`plan.states[${nextState}].terms`, states[nextState].terms);
      nextState++;
    }
  };
  checkStatesAt(0);
  const checkCorrection = (f: string, value: unknown): void => {
    const c = expectObject(f, value);
    for (const k of ['a', 's']) expectFiniteNumber(`${f}.${k}`, c[k], { min: -MAX_INPAINT_COEF, max: MAX_INPAINT_COEF });
  };
  let evals = 0;
  (p.ops as unknown[]).forEach((raw, i) => {
    const f = `plan.ops[${i}]`;
    const op = expectObject(f, raw);
    const kind = expectOneOf(`${f}.op`, ['eval', 'lincomb', 'threshold', 'inpaint'] as const, op.op);
    if (kind === 'eval') {
      readReg(`${f}.src`, op.src);
      for (const k of ['t', 'tCont', 'inScale', 'outX', 'outM']) expectFiniteNumber(`${f}.${k}`, op[k]);
      if (op.gradCoef !== undefined) expectFiniteNumber(`${f}.gradCoef`, op.gradCoef);
      else if (needs.gradCoef) {
        throw invalidType(`${f}.gradCoef`, 'a finite number (classifier guidance needs it on every eval op; compile the plan with compilePlan)', op.gradCoef);
      }
      written[regField(`${f}.dst`, op.dst)] = true;
      if (intermediates === 'x0' && op.x0 !== undefined) checkTerms(`${f}.x0`, op.x0);
      evals++;
    } else if (kind === 'lincomb') {
      const terms = op.terms;
      if (!Array.isArray(terms) || terms.length < 1 || terms.length > MAX_LINCOMB_TERMS) {
        throw invalidType(`${f}.terms`, `an array of 1 to ${MAX_LINCOMB_TERMS} [coefficient, register] pairs`, terms);
      }
      terms.forEach((term: unknown, k: number) => {
        if (!Array.isArray(term) || term.length !== 2) throw invalidType(`${f}.terms[${k}]`, 'a [coefficient, register] pair', term);
        expectFiniteNumber(`${f}.terms[${k}][0]`, term[0]);
        readReg(`${f}.terms[${k}][1]`, term[1]);
      });
      if (op.inpaint !== undefined) checkCorrection(`${f}.inpaint`, op.inpaint);
      written[regField(`${f}.dst`, op.dst)] = true;
    } else if (kind === 'inpaint') {
      readReg(`${f}.reg`, op.reg);
      checkCorrection(f, op);
    } else {
      readReg(`${f}.reg`, op.reg);
      expectFiniteNumber(`${f}.ratio`, op.ratio, { above: 0, max: 1 });
      expectFiniteNumber(`${f}.maxVal`, op.maxVal, { above: 0 });
    }
    checkStatesAt(i + 1);
  });
  const final = expectObject('plan.final', p.final);
  readReg('plan.final.src', final.src);
  expectFiniteNumber('plan.final.scale', final.scale);
  if (final.inpaint !== undefined) checkCorrection('plan.final.inpaint', final.inpaint);
  expectInteger('plan.nfe', p.nfe, { min: 0 });
  if (p.nfe !== evals) throw outOfRange('plan.nfe', `the number of eval ops (${evals})`, p.nfe);
  return plan;
}
