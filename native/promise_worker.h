// PromiseWorker: an AsyncWorker that settles a Promise.
//
// Run() executes on a libuv worker thread (no JS / Napi calls there) and may throw anything;
// the exception is captured (errors.h) and the promise is rejected with the matching JS
// error class. Resolve() runs back on the JS thread and builds the result value.
//
//   auto* w = new MyWorker(env, ...);   Napi::Promise p = w->Promise();   w->Queue();
#pragma once

#include <napi.h>

#include <string>

#include "errors.h"

namespace scire {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), where_(name), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Resolve(Napi::Env env) = 0;

 private:
  void Execute() final {
    try {
      Run();
    } catch (...) {
      failure_ = CaptureCurrentException(where_);
      SetError(failure_.message);
    }
  }
  void OnOK() final {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Resolve(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(CaptureCurrentException(where_).ToJs(env).Value());
    }
  }
  void OnError(const Napi::Error&) final { deferred_.Reject(failure_.ToJs(Env()).Value()); }

  std::string where_;
  Napi::Promise::Deferred deferred_;
  Failure failure_;
};

}  // namespace scire
