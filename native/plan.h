// A Plan (the contract in lib/plan.ts) copied out of its JS object into plain C++ values
// on the JS thread, so the model's thread never touches a JS value.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/lincomb.h"

namespace scire {

/** One op of a plan; `kind` says which fields are meaningful. */
struct PlanStep {
  enum class Kind { Eval, Lincomb, Threshold, Inpaint };
  Kind kind = Kind::Eval;
  // eval: x_in = inScale * R[src]; raw = model(x_in, t); R[dst] = outX * x_in + outM * raw
  double t = 0, tCont = 0, inScale = 1, outX = 0, outM = 1;
  int src = 0;
  // eval, classifier guidance only: R[dst] += s * gradCoef * grad (lib/plan.ts); optional.
  double gradCoef = 0;
  bool hasGradCoef = false;
  // eval and lincomb
  int dst = 0;
  // lincomb: R[dst] = sum_k coef[k] * R[reg[k]], k < terms
  int terms = 0;
  double coef[kernels::kMaxTerms] = {};
  int reg[kernels::kMaxTerms] = {};
  // threshold (reg[0] is the register)
  double ratio = 0, maxVal = 0;
  // inpainting (lib/inpaint.ts): a lincomb with `inpaint` (inpaint = true) blends its result
  // with the known region, R[dst] = (1 - m) sum + m (inpaintA x0 + inpaintS z); an Inpaint op
  // does the same to reg[0] in place (one term: 1 * R[reg[0]]).
  bool inpaint = false;
  double inpaintA = 0, inpaintS = 0;
};

/** An intermediate read during a run (lib/intermediates.ts): sum_k coef[k] * R[reg[k]] after
 *  the first `after` ops, reported with model time t and continuous time tCont. */
struct PlanSnapshot {
  int after = 0;
  int terms = 0;
  double coef[kernels::kMaxTerms] = {};
  int reg[kernels::kMaxTerms] = {};
  double t = 0, tCont = 0;
};

struct PlanSpec {
  int numRegs = 1;
  double initScale = 1;
  std::vector<PlanStep> steps;
  int finalSrc = 0;
  double finalScale = 1;
  // plan.final.inpaint: result = (1 - m) finalScale R[finalSrc] + m (finalA x0 + finalS z)
  bool finalInpaint = false;
  double finalA = 0, finalS = 0;
  // Any inpainting correction: the run needs opts.inpaint { x0, mask, noise }.
  bool usesInpaint = false;
  int nfe = 0;
  // Optional marks for intermediates: plan.states ('x'), and the eval ops' x0 terms ('x0'; only
  // when every eval op has them, else hasX0 is false).
  std::vector<PlanSnapshot> states;
  std::vector<PlanSnapshot> x0;
  bool hasX0 = false;
};

/** Limits of a plan, equal to lib/plan.ts MAX_PLAN_REGISTERS / MAX_PLAN_OPS (checkPlan):
 *  solvers use fewer than 10 registers and fewer than 10 ops per step of at most 10 000 steps. */
constexpr int kMaxRegisters = 64;
constexpr uint32_t kMaxOps = 200000;
/** Largest |a|, |s| of an inpainting correction (lib/plan.ts MAX_INPAINT_COEF: float32's range). */
constexpr double kMaxInpaintCoef = 3.4e38;

/**
 * Reads and validates a Plan object. Throws Napi::TypeError for a field of the wrong type
 * and Napi::RangeError for a bad value, each message naming the field path, e.g.
 * "plan.ops[3].terms[1][1] must be an integer register in [0, 5) but received 7".
 * Also checks that no op reads a register before it is written, that nfe equals the number
 * of eval ops, and the limits above. The rules are those of lib/plan-check.ts (checkPlan).
 */
/** Which intermediates marks ParsePlan reads (only those are validated; see lib/plan-check.ts). */
enum class PlanMarks { kNone, kStates, kX0 };

PlanSpec ParsePlan(const Napi::Value& value, PlanMarks marks = PlanMarks::kNone);

}  // namespace scire
