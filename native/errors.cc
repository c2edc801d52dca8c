#include "errors.h"

#include <c10/util/Exception.h>

#include <sstream>
#include <vector>

namespace scire {

namespace {

std::string Prefixed(const std::string& where, const std::string& message) {
  if (where.empty() || message.rfind(where + ":", 0) == 0) return message;
  return where + ": " + message;
}

}  // namespace

Napi::Error Failure::ToJs(Napi::Env env) const {
  Napi::Error error;
  switch (kind) {
    case ErrorKind::kTypeError:
      error = Napi::TypeError::New(env, message);
      break;
    case ErrorKind::kRangeError:
      error = Napi::RangeError::New(env, message);
      break;
    default:
      error = Napi::Error::New(env, message);
      break;
  }
  if (!code.empty()) error.Set("code", Napi::String::New(env, code));
  if (!details.empty()) error.Set("details", Napi::String::New(env, details));
  return error;
}

Failure CaptureCurrentException(const std::string& where) {
  Failure f;
  try {
    throw;
  } catch (const ScireError& e) {
    f.kind = e.kind();
    f.code = e.code();
    f.details = e.details();
    // An error from inside the network (it has details) starts with its cause: no prefix.
    f.message = e.details().empty() ? Prefixed(where, e.what()) : std::string(e.what());
  } catch (const c10::Error& e) {
    f.message = Prefixed(where, std::string("LibTorch error: ") + e.what_without_backtrace());
    f.code = "ERR_SCIRE_TORCH";
  } catch (const std::exception& e) {
    // TorchScript interpreter errors (e.g. a shape mismatch inside forward) land here.
    f.message = Prefixed(where, e.what());
    f.code = "ERR_SCIRE_NATIVE";
  } catch (...) {
    f.message = Prefixed(where, "unknown C++ exception");
    f.code = "ERR_SCIRE_NATIVE";
  }
  return f;
}

// ------------------------------------------------------------------ errors inside the network

namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Lines that are traceback scaffolding, not the error itself.
bool IsTracebackLine(const std::string& line) {
  const std::string t = Trim(line);
  return t.empty() || StartsWith(t, "File \"") || StartsWith(t, "Traceback of TorchScript") ||
         t.find("<--- HERE") != std::string::npos || StartsWith(t, "The following operation failed") ||
         StartsWith(t, "frame #") || StartsWith(t, "Exception raised from");
}

std::string FormatTime(double t) {
  std::ostringstream s;
  s.precision(6);
  s << t;
  return s.str();
}

std::string ShapeOf(const at::Tensor& v) {
  std::ostringstream s;
  s << '[';
  for (int64_t i = 0; i < v.dim(); ++i) s << (i ? ", " : "") << v.size(i);
  s << ']';
  return s.str();
}

// The package's dtype names (float32, float16, bfloat16), LibTorch's for the others.
std::string DTypeOf(const at::Tensor& v) {
  switch (v.scalar_type()) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kDouble: return "float64";
    default: return c10::toString(v.scalar_type());
  }
}

std::string DescribeTensor(const char* name, const at::Tensor& v) {
  if (!v.defined()) return std::string(name) + " undefined";
  return std::string(name) + " " + DTypeOf(v) + " " + ShapeOf(v);
}

}  // namespace

std::string DescribeModelInputs(const at::Tensor& x, const at::Tensor& t, const at::Tensor* cond) {
  std::string s = DescribeTensor("x", x);
  if (x.defined()) s += " on " + x.device().str();
  s += ", " + DescribeTensor("t", t);
  if (cond != nullptr) s += ", " + DescribeTensor("cond", *cond);
  return s;
}

std::string ModelErrorCause(const std::string& text) {
  // A C++ backtrace (c10::Error::what()) starts at "Exception raised from"; drop it.
  std::string body = text;
  const auto bt = body.find("Exception raised from");
  if (bt != std::string::npos) body.erase(bt);
  const std::vector<std::string> lines = Lines(body);
  std::string cause;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (!IsTracebackLine(*it)) {
      cause = Trim(*it);
      break;
    }
  }
  // Only traceback text (or nothing at all): keep what there is.
  if (cause.empty()) cause = Trim(body.empty() ? text : body);
  if (StartsWith(cause, "RuntimeError: ")) cause.erase(0, 14);  // the generic class adds nothing
  if (StartsWith(cause, "builtins.")) cause.erase(0, 9);         // "builtins.ValueError: ..." -> "ValueError: ..."
  return cause;
}

std::string ModelErrorOp(const std::string& text) {
  const std::vector<std::string> lines = Lines(text);
  // Innermost frame = the last "<--- HERE" of a section; prefer the original-code section
  // (the user's source names), which TorchScript prints after the serialized one.
  std::string op, where;
  std::string frame;  // the latest 'File "...", line N' seen
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string t = Trim(lines[i]);
    if (StartsWith(t, "File \"")) {
      const auto q = t.find('"', 6);
      const auto ln = t.find("line ");
      if (q != std::string::npos) {
        frame = t.substr(6, q - 6);
        if (ln != std::string::npos) {
          const auto end = t.find(',', ln);
          frame += ", " + t.substr(ln, end == std::string::npos ? std::string::npos : end - ln);
        }
      }
      continue;
    }
    const auto here = lines[i].find("<--- HERE");
    if (here == std::string::npos || i == 0) continue;
    // The underline (~~~) marks columns of the line above.
    const std::string& marks = lines[i];
    const std::string& code = lines[i - 1];
    // The underline is sometimes shorter than the expression: take the code from its start to
    // the end of the line ("torch.matmul(x, self.w)", "raise ValueError(...)").
    const auto b = marks.find('~');
    if (b == std::string::npos || b >= code.size()) continue;
    std::string underlined = code.substr(b);
    const auto comment = underlined.find("  #");  // a trailing Python comment
    if (comment != std::string::npos) underlined.erase(comment);
    underlined = Trim(underlined);
    if (underlined.size() > 80) underlined = underlined.substr(0, 77) + "...";
    op = underlined;
    where = frame;
  }
  if (op.empty()) return "";
  return where.empty() ? op : op + " (" + where + ")";
}

void RethrowModelCallError(const ModelCallContext& context) {
  std::string cause, details, code;
  ErrorKind kind = ErrorKind::kError;
  try {
    throw;
  } catch (const ScireError& e) {
    // The package's own check of the model's output: already a clear, complete message. A
    // single forward outside a plan keeps it as it is; in a plan it gets the context (and,
    // having no details, the usual "execute: " prefix).
    if (context.evaluation == 0) throw;
    cause = e.what();
    details = e.details();
    code = e.code();
    kind = e.kind();
  } catch (const c10::Error& e) {
    details = e.what_without_backtrace();
    cause = ModelErrorCause(details);
    code = "ERR_SCIRE_MODEL";
  } catch (const std::exception& e) {
    details = e.what();
    cause = ModelErrorCause(details);
    code = "ERR_SCIRE_MODEL";
  } catch (...) {
    details = "unknown C++ exception";
    cause = details;
    code = "ERR_SCIRE_MODEL";
  }
  std::ostringstream m;
  m << cause << " (in the model's forward";
  if (context.evaluation > 0) {
    m << " at evaluation " << context.evaluation;
    if (context.total > 0) m << " of " << context.total;
  }
  m << ", t = " << FormatTime(context.t);
  const std::string op = details.empty() ? "" : ModelErrorOp(details);
  if (!op.empty()) m << "; op " << op;
  if (!context.inputs.empty()) m << "; inputs " << context.inputs;
  m << ")";
  throw ScireError(kind, m.str(), code, details);
}

ScireError TypeErrorFor(const std::string& where, const std::string& field, const std::string& expected) {
  return ScireError(ErrorKind::kTypeError, where + ": " + field + " must be " + expected,
                    "ERR_INVALID_ARG_TYPE");
}

ScireError RangeErrorFor(const std::string& where, const std::string& field, const std::string& problem) {
  return ScireError(ErrorKind::kRangeError, where + ": " + field + " " + problem, "ERR_OUT_OF_RANGE");
}

}  // namespace scire
