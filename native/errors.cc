#include "errors.h"

#include <c10/util/Exception.h>

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
  return error;
}

Failure CaptureCurrentException(const std::string& where) {
  Failure f;
  try {
    throw;
  } catch (const ScireError& e) {
    f.kind = e.kind();
    f.code = e.code();
    f.message = Prefixed(where, e.what());
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

ScireError TypeErrorFor(const std::string& where, const std::string& field, const std::string& expected) {
  return ScireError(ErrorKind::kTypeError, where + ": " + field + " must be " + expected,
                    "ERR_INVALID_ARG_TYPE");
}

ScireError RangeErrorFor(const std::string& where, const std::string& field, const std::string& problem) {
  return ScireError(ErrorKind::kRangeError, where + ": " + field + " " + problem, "ERR_OUT_OF_RANGE");
}

}  // namespace scire
