// One way to turn C++ failures into JS errors.
//
//  - Native code that detects bad input or an unusable setup throws scire::ScireError with
//    the JS class it should become (Error, TypeError, RangeError) and an optional `code`.
//    It may be thrown on any thread (worker threads included).
//  - c10::Error (LibTorch), std::exception (TorchScript runtime errors are std::exception,
//    not c10::Error) and anything else become a plain JS Error with the native message.
//  - On the JS thread, wrap code in GuardJs(env, "where", [&] { ... }) (synchronous
//    functions) or GuardPromise(...) (functions that return a Promise: failures reject).
//    Work on a model's thread is a Request (model_runtime.h), whose Run() may throw: the
//    exception is captured there and the promise rejected with the right JS class; work on
//    a libuv pool thread (loadModel) derives from PromiseWorker (promise_worker.h) likewise.
#pragma once

#include <ATen/core/Tensor.h>
#include <napi.h>

#include <stdexcept>
#include <string>

namespace scire {

enum class ErrorKind { kError, kTypeError, kRangeError };

class ScireError : public std::runtime_error {
 public:
  ScireError(ErrorKind kind, const std::string& message, std::string code = "", std::string details = "")
      : std::runtime_error(message), kind_(kind), code_(std::move(code)), details_(std::move(details)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& code() const { return code_; }
  // The full native text behind a shortened message (becomes error.details in JS); may be empty.
  const std::string& details() const { return details_; }

 private:
  ErrorKind kind_;
  std::string code_;
  std::string details_;
};

// A failure captured from a C++ exception, safe to carry across threads.
struct Failure {
  ErrorKind kind = ErrorKind::kError;
  std::string message;
  std::string code;     // empty: none
  std::string details;  // empty: none; else set as error.details (the full native text)

  // Build the JS error object (JS thread only).
  Napi::Error ToJs(Napi::Env env) const;
};

// Describe the exception being handled; call only inside a catch block.
// `where` prefixes the message (e.g. "loadModel").
Failure CaptureCurrentException(const std::string& where);

// What the plan loop knows about a network call, for ModelCallError.
struct ModelCallContext {
  int evaluation = 0;  // 1-based index of the evaluation (0: a single forward outside a plan)
  int total = 0;       // evaluations of the plan (0: unknown)
  double t = 0;        // model input time
  std::string inputs;  // e.g. "x float32 [4, 16] on cpu, t float32 [4]" (DescribeModelInputs)
};

// "x float32 [4, 16] on cpu, t float32 [4], cond float32 [4, 3]" (cond may be null).
std::string DescribeModelInputs(const at::Tensor& x, const at::Tensor& t, const at::Tensor* cond);

// The last meaningful line of a TorchScript / LibTorch error text: the exception line
// ("RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x16 and 8x8)") without the
// interpreter's traceback and C++ backtrace; the whole trimmed text when there is no such line.
std::string ModelErrorCause(const std::string& text);

// The op the TorchScript traceback points at (the code underlined by "<--- HERE" in its
// innermost frame, preferring the original source over the serialized code) with its file
// and line: "F.linear (.../linear.py, line 114)"; empty when the text has no traceback.
std::string ModelErrorOp(const std::string& text);

// Call inside a catch block around the network call: rethrows the current exception as a
// ScireError whose message starts with the cause a user can act on, followed by where it
// happened (op, evaluation index and time, input shapes); the full native text goes to
// details. ScireErrors of the package (e.g. a wrongly shaped output) keep their message and
// code and get the same context appended.
[[noreturn]] void RethrowModelCallError(const ModelCallContext& context);

// Error helpers that name the offending field and what is allowed, e.g.
//   TypeErrorFor("forward", "x", "a Float32Array")  ->  "forward: x must be a Float32Array"
ScireError TypeErrorFor(const std::string& where, const std::string& field, const std::string& expected);
ScireError RangeErrorFor(const std::string& where, const std::string& field, const std::string& problem);

// Run fn on the JS thread; Napi::Error passes through, every other exception becomes a JS
// error (the class chosen as above) thrown into JS.
template <typename F>
auto GuardJs(Napi::Env env, const std::string& where, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw CaptureCurrentException(where).ToJs(env);
  }
}

// For functions that return a Promise: any exception thrown by fn (bad arguments included)
// becomes a rejected promise instead of a synchronous throw, as in an async JS function.
template <typename F>
Napi::Value GuardPromise(Napi::Env env, const std::string& where, F&& fn) {
  Napi::Value rejection;
  try {
    return fn();
  } catch (const Napi::Error& e) {
    rejection = e.Value();
  } catch (...) {
    rejection = CaptureCurrentException(where).ToJs(env).Value();
  }
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(rejection);
  return deferred.Promise();
}

}  // namespace scire
