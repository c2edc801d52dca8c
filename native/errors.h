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

#include <napi.h>

#include <stdexcept>
#include <string>

namespace scire {

enum class ErrorKind { kError, kTypeError, kRangeError };

class ScireError : public std::runtime_error {
 public:
  ScireError(ErrorKind kind, const std::string& message, std::string code = "")
      : std::runtime_error(message), kind_(kind), code_(std::move(code)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& code() const { return code_; }

 private:
  ErrorKind kind_;
  std::string code_;
};

// A failure captured from a C++ exception, safe to carry across threads.
struct Failure {
  ErrorKind kind = ErrorKind::kError;
  std::string message;
  std::string code;  // empty: none

  // Build the JS error object (JS thread only).
  Napi::Error ToJs(Napi::Env env) const;
};

// Describe the exception being handled; call only inside a catch block.
// `where` prefixes the message (e.g. "loadModel").
Failure CaptureCurrentException(const std::string& where);

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
