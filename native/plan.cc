#include "plan.h"

#include <cmath>
#include <sstream>

namespace scire {
namespace {

std::string Describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) {
    std::ostringstream s;
    s << v.As<Napi::Number>().DoubleValue() << " of type number";
    return s.str();
  }
  if (v.IsString()) return "'" + v.As<Napi::String>().Utf8Value() + "' of type string";
  if (v.IsBoolean()) return std::string(v.As<Napi::Boolean>().Value() ? "true" : "false") + " of type boolean";
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  if (v.IsObject()) return "an object";
  return "a value of another type";
}

[[noreturn]] void Type(const Napi::Value& v, const std::string& path, const std::string& expected) {
  throw Napi::TypeError::New(v.Env(), "Expected " + expected + " for " + path + " but received " + Describe(v));
}

[[noreturn]] void Range(const Napi::Value& v, const std::string& path, const std::string& expected) {
  throw Napi::RangeError::New(v.Env(), "Expected " + expected + " for " + path + " but received " + Describe(v));
}

Napi::Object ObjectAt(const Napi::Value& v, const std::string& path) {
  if (!v.IsObject() || v.IsArray() || v.IsFunction()) Type(v, path, "an object");
  return v.As<Napi::Object>();
}

Napi::Array ArrayAt(const Napi::Value& v, const std::string& path) {
  if (!v.IsArray()) Type(v, path, "an array");
  return v.As<Napi::Array>();
}

double FiniteAt(const Napi::Value& v, const std::string& path) {
  if (!v.IsNumber()) Type(v, path, "a finite number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) Range(v, path, "a finite number");
  return d;
}

int IntegerAt(const Napi::Value& v, const std::string& path, int lo, int hi, const std::string& expected) {
  if (!v.IsNumber()) Type(v, path, expected);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d < hi) || std::floor(d) != d) Range(v, path, expected);
  return static_cast<int>(d);
}

struct RegisterTracker {
  std::vector<bool> written;
  int numRegs;

  int Read(const Napi::Value& v, const std::string& path) {
    const int r = Index(v, path);
    if (!written[r]) {
      throw Napi::RangeError::New(v.Env(), path + " reads register " + std::to_string(r) +
                                               " before any op writes it (only R[0] is set at the start)");
    }
    return r;
  }
  int Write(const Napi::Value& v, const std::string& path) {
    const int r = Index(v, path);
    written[r] = true;
    return r;
  }
  int Index(const Napi::Value& v, const std::string& path) const {
    return IntegerAt(v, path, 0, numRegs, "an integer register in [0, " + std::to_string(numRegs) + ")");
  }
};

// 1 to kMaxTerms [coefficient, register] pairs of registers already written.
int ParseTerms(const Napi::Value& v, const std::string& path, RegisterTracker& regs, double* coef, int* reg) {
  const Napi::Array terms = ArrayAt(v, path);
  const uint32_t n = terms.Length();
  if (n < 1 || n > static_cast<uint32_t>(kernels::kMaxTerms)) {
    throw Napi::RangeError::New(v.Env(), "Expected 1 to 4 terms for " + path + " but received " + std::to_string(n) +
                                             " terms");
  }
  for (uint32_t k = 0; k < n; ++k) {
    const std::string tp = path + "[" + std::to_string(k) + "]";
    const Napi::Array pair = ArrayAt(terms.Get(k), tp);
    if (pair.Length() != 2) {
      throw Napi::TypeError::New(v.Env(), "Expected a [coefficient, register] pair for " + tp +
                                              " but received an array of length " + std::to_string(pair.Length()));
    }
    coef[k] = FiniteAt(pair.Get(0u), tp + "[0]");
    reg[k] = regs.Read(pair.Get(1u), tp + "[1]");
  }
  return static_cast<int>(n);
}

// An inpainting correction { a, s } (lib/inpaint.ts): finite, within float32's range.
void ParseCorrection(const Napi::Object& o, const std::string& path, double* a, double* s) {
  const Napi::Value av = o.Get("a");
  const Napi::Value sv = o.Get("s");
  *a = FiniteAt(av, path + ".a");
  if (!(std::fabs(*a) <= kMaxInpaintCoef)) Range(av, path + ".a", "a number of magnitude at most 3.4e38");
  *s = FiniteAt(sv, path + ".s");
  if (!(std::fabs(*s) <= kMaxInpaintCoef)) Range(sv, path + ".s", "a number of magnitude at most 3.4e38");
}

PlanStep ParseEval(const Napi::Object& o, const std::string& path, RegisterTracker& regs) {
  PlanStep s;
  s.kind = PlanStep::Kind::Eval;
  s.t = FiniteAt(o.Get("t"), path + ".t");
  s.tCont = FiniteAt(o.Get("tCont"), path + ".tCont");
  s.src = regs.Read(o.Get("src"), path + ".src");
  s.inScale = FiniteAt(o.Get("inScale"), path + ".inScale");
  s.outX = FiniteAt(o.Get("outX"), path + ".outX");
  s.outM = FiniteAt(o.Get("outM"), path + ".outM");
  const Napi::Value gradCoef = o.Get("gradCoef");
  if (!gradCoef.IsUndefined()) {
    s.gradCoef = FiniteAt(gradCoef, path + ".gradCoef");
    s.hasGradCoef = true;
  }
  s.dst = regs.Write(o.Get("dst"), path + ".dst");
  return s;
}

PlanStep ParseLincomb(const Napi::Object& o, const std::string& path, RegisterTracker& regs) {
  PlanStep s;
  s.kind = PlanStep::Kind::Lincomb;
  s.terms = ParseTerms(o.Get("terms"), path + ".terms", regs, s.coef, s.reg);
  const Napi::Value inpaint = o.Get("inpaint");
  if (!inpaint.IsUndefined()) {
    s.inpaint = true;
    ParseCorrection(ObjectAt(inpaint, path + ".inpaint"), path + ".inpaint", &s.inpaintA, &s.inpaintS);
  }
  s.dst = regs.Write(o.Get("dst"), path + ".dst");
  return s;
}

PlanStep ParseInpaint(const Napi::Object& o, const std::string& path, RegisterTracker& regs) {
  PlanStep s;
  s.kind = PlanStep::Kind::Inpaint;
  s.reg[0] = regs.Read(o.Get("reg"), path + ".reg");
  s.inpaint = true;
  ParseCorrection(o, path, &s.inpaintA, &s.inpaintS);
  return s;
}

PlanStep ParseThreshold(const Napi::Object& o, const std::string& path, RegisterTracker& regs) {
  PlanStep s;
  s.kind = PlanStep::Kind::Threshold;
  s.reg[0] = regs.Read(o.Get("reg"), path + ".reg");
  const Napi::Value ratio = o.Get("ratio");
  s.ratio = FiniteAt(ratio, path + ".ratio");
  if (!(s.ratio > 0 && s.ratio <= 1)) Range(ratio, path + ".ratio", "a number in (0, 1]");
  const Napi::Value maxVal = o.Get("maxVal");
  s.maxVal = FiniteAt(maxVal, path + ".maxVal");
  if (!(s.maxVal > 0)) Range(maxVal, path + ".maxVal", "a positive number");
  return s;
}

}  // namespace

PlanSpec ParsePlan(const Napi::Value& value, PlanMarks marks) {
  const Napi::Object plan = ObjectAt(value, "plan");
  const Napi::Value format = plan.Get("format");
  if (!format.IsString() || format.As<Napi::String>().Utf8Value() != "scire-plan-v1") {
    Type(format, "plan.format", "'scire-plan-v1'");
  }
  PlanSpec spec;
  spec.numRegs = IntegerAt(plan.Get("numRegs"), "plan.numRegs", 1, kMaxRegisters + 1,
                           "an integer in [1, " + std::to_string(kMaxRegisters) + "]");
  spec.initScale = FiniteAt(plan.Get("initScale"), "plan.initScale");

  RegisterTracker regs{std::vector<bool>(spec.numRegs, false), spec.numRegs};
  regs.written[0] = true;
  const Napi::Array ops = ArrayAt(plan.Get("ops"), "plan.ops");
  if (ops.Length() > kMaxOps) {
    throw Napi::RangeError::New(plan.Env(), "Expected at most " + std::to_string(kMaxOps) +
                                                " ops for plan.ops but received " + std::to_string(ops.Length()));
  }
  spec.steps.reserve(ops.Length());

  // plan.states (optional): `after` non-decreasing in [0, ops]; each state's terms are checked
  // against the registers written once its `after` ops have run.
  std::vector<Napi::Object> stateObjs;
  const Napi::Value statesValue = plan.Get("states");
  if (marks == PlanMarks::kStates && !statesValue.IsUndefined()) {
    const Napi::Array states = ArrayAt(statesValue, "plan.states");
    int last = 0;
    for (uint32_t j = 0; j < states.Length(); ++j) {
      const std::string path = "plan.states[" + std::to_string(j) + "]";
      const Napi::Object so = ObjectAt(states.Get(j), path);
      PlanSnapshot snap;
      snap.after = IntegerAt(so.Get("after"), path + ".after", last, static_cast<int>(ops.Length()) + 1,
                             "an integer in [" + std::to_string(last) + ", " + std::to_string(ops.Length()) +
                                 "] (non-decreasing)");
      last = snap.after;
      snap.t = FiniteAt(so.Get("t"), path + ".t");
      snap.tCont = FiniteAt(so.Get("tCont"), path + ".tCont");
      spec.states.push_back(snap);
      stateObjs.push_back(so);
    }
  }
  size_t nextState = 0;
  auto statesAt = [&](int done) {
    for (; nextState < spec.states.size() && spec.states[nextState].after == done; ++nextState) {
      PlanSnapshot& snap = spec.states[nextState];
      snap.terms = ParseTerms(stateObjs[nextState].Get("terms"), "plan.states[" + std::to_string(nextState) + "].terms",
                              regs, snap.coef, snap.reg);
    }
  };
  statesAt(0);

  int evals = 0;
  int evalsWithX0 = 0;
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    const std::string path = "plan.ops[" + std::to_string(i) + "]";
    const Napi::Object o = ObjectAt(ops.Get(i), path);
    const Napi::Value kind = o.Get("op");
    const std::string name = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : std::string();
    if (name == "eval") {
      spec.steps.push_back(ParseEval(o, path, regs));
      ++evals;
      const Napi::Value x0 = marks == PlanMarks::kX0 ? o.Get("x0") : Napi::Value();
      if (marks == PlanMarks::kX0 && !x0.IsUndefined()) {
        PlanSnapshot snap;
        snap.after = static_cast<int>(i) + 1;  // moved past a following threshold below
        snap.terms = ParseTerms(x0, path + ".x0", regs, snap.coef, snap.reg);
        snap.t = spec.steps.back().t;
        snap.tCont = spec.steps.back().tCont;
        spec.x0.push_back(snap);
        ++evalsWithX0;
      }
    } else if (name == "lincomb") {
      spec.steps.push_back(ParseLincomb(o, path, regs));
    } else if (name == "threshold") {
      spec.steps.push_back(ParseThreshold(o, path, regs));
    } else if (name == "inpaint") {
      spec.steps.push_back(ParseInpaint(o, path, regs));
    } else {
      Type(kind, path + ".op", "one of 'eval', 'lincomb', 'threshold', 'inpaint'");
    }
    spec.usesInpaint = spec.usesInpaint || spec.steps.back().inpaint;
    statesAt(static_cast<int>(i) + 1);
  }
  // An evaluation's data prediction is read after the threshold op that may follow it.
  for (PlanSnapshot& snap : spec.x0) {
    const PlanStep& evalOp = spec.steps[snap.after - 1];
    if (snap.after < static_cast<int>(spec.steps.size()) && spec.steps[snap.after].kind == PlanStep::Kind::Threshold &&
        spec.steps[snap.after].reg[0] == evalOp.dst) {
      ++snap.after;
    }
  }
  spec.hasX0 = evals > 0 && evalsWithX0 == evals;
  const Napi::Object fin = ObjectAt(plan.Get("final"), "plan.final");
  spec.finalSrc = regs.Read(fin.Get("src"), "plan.final.src");
  spec.finalScale = FiniteAt(fin.Get("scale"), "plan.final.scale");
  const Napi::Value finalInpaint = fin.Get("inpaint");
  if (!finalInpaint.IsUndefined()) {
    spec.finalInpaint = true;
    ParseCorrection(ObjectAt(finalInpaint, "plan.final.inpaint"), "plan.final.inpaint", &spec.finalA, &spec.finalS);
    spec.usesInpaint = true;
  }
  const Napi::Value nfe = plan.Get("nfe");
  spec.nfe = IntegerAt(nfe, "plan.nfe", 0, 1 << 30, "a non-negative integer");
  if (spec.nfe != evals) {
    Range(nfe, "plan.nfe", "the number of eval ops (" + std::to_string(evals) + ")");
  }
  return spec;
}

}  // namespace scire
