#include "model_runtime.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "addon_data.h"

namespace scire {

// ------------------------------------------------------------------ Request

Request::Request(Napi::Env env, std::string where)
    : where_(std::move(where)), deferred_(Napi::Promise::Deferred::New(env)) {}

void Request::RunOnOwner() noexcept {
  try {
    Run();
  } catch (const AbortedRun&) {
    aborted_ = true;
  } catch (...) {
    failed_ = true;
    failure_ = CaptureCurrentException(where_);
  }
  try {
    ReleaseInputs();
  } catch (...) {
  }
  RequestPtr self = shared_from_this();
  // Dropped when the channel is closed (dispose() settled this request already, or the
  // environment is gone): nothing to deliver then.
  channel_->Post([self](napi_env env) {
    if (ModelRuntimePtr runtime = self->runtime_.lock()) runtime->Complete(Napi::Env(env), self);
  });
}

void Request::PostToJs(std::function<void(Napi::Env)> fn) {
  RequestPtr self = shared_from_this();
  channel_->Post([self, fn = std::move(fn)](napi_env env) {
    if (!self->settled_) fn(Napi::Env(env));
  });
}

void Request::AbortFromJs() {
  stop_.Set();
  if (ModelRuntimePtr runtime = runtime_.lock()) runtime->Cancel(deferred_.Env(), shared_from_this());
}

// ------------------------------------------------------------------ ModelRuntime

namespace {

RuntimeRegistry& Registry(Napi::Env env) { return GetAddonData(env).runtimes; }

void TeardownAll(void* arg) {
  auto* registry = static_cast<RuntimeRegistry*>(arg);
  std::vector<ModelRuntimePtr> runtimes;
  runtimes.swap(registry->runtimes);
  for (const ModelRuntimePtr& runtime : runtimes) runtime->TeardownEnv();
}

// The intra-op threads of LibTorch on a model's thread: SCIRE_INTRA_OP_THREADS when set (a
// positive integer), else LibTorch's default (its thread count of the process, i.e. the
// physical cores or OMP_NUM_THREADS). With OpenMP every thread that runs ops gets its own team,
// so M models busy at once use M x that many threads: on a small machine serving several CPU
// models, set it to cores / models.
// 0: not set. Invalid values are refused by loadModel (CheckIntraOpThreadsEnv).
int IntraOpThreadsFromEnv(bool* valid) {
  *valid = true;
  const char* v = std::getenv("SCIRE_INTRA_OP_THREADS");
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  *valid = end != nullptr && *end == '\0' && n >= 1 && n <= 1024;
  return *valid ? static_cast<int>(n) : 0;
}

void ApplyIntraOpThreads() {
  bool valid;
  const int n = IntraOpThreadsFromEnv(&valid);
  if (n > 0) at::set_num_threads(n);
}

}  // namespace

void CheckIntraOpThreadsEnv() {
  bool valid;
  IntraOpThreadsFromEnv(&valid);
  if (!valid) {
    throw ScireError(ErrorKind::kRangeError,
                     std::string("loadModel: the environment variable SCIRE_INTRA_OP_THREADS must be an integer in [1, 1024] "
                                 "(LibTorch's intra-op threads per model thread) but is '") +
                         std::getenv("SCIRE_INTRA_OP_THREADS") + "'",
                     "ERR_OUT_OF_RANGE");
  }
}

Napi::Error MakeDisposedError(Napi::Env env, const std::string& where, bool wasRunning) {
  Napi::Error error = Napi::Error::New(
      env, where + (wasRunning ? ": the model was disposed while this request was running (its result is discarded)"
                               : ": the model was disposed before this request ran"));
  error.Set("code", Napi::String::New(env, "ERR_SCIRE_DISPOSED"));
  return error;
}

ModelRuntimePtr ModelRuntime::Start(Napi::Env env, const std::string& label) {
  ModelRuntimePtr runtime(new ModelRuntime());
  runtime->env_ = env;
  runtime->channel_ = JsChannel::Open(env, "scire.model");
  runtime->thread_ = std::make_unique<ModelThread>("scire:" + label, &ApplyIntraOpThreads);
  RuntimeRegistry& registry = Registry(env);
  if (!registry.hooked) {
    // Runs before the environment's Node-API state is torn down (hooks run in reverse order
    // of registration and Node-API registered its own when this addon was loaded).
    if (napi_add_env_cleanup_hook(env, &TeardownAll, &registry) != napi_ok) {
      throw ScireError(ErrorKind::kError, "loadModel: could not register the environment cleanup hook");
    }
    registry.hooked = true;
  }
  registry.runtimes.push_back(runtime);
  return runtime;
}

ModelRuntime::~ModelRuntime() {
  // Normally shut down already; otherwise the thread is detached by ~ModelThread and the
  // channel is only forgotten (no Node-API call: this may run during teardown).
}

Napi::Promise ModelRuntime::Submit(const RequestPtr& request) {
  Napi::Env env = request->deferred_.Env();
  request->runtime_ = weak_from_this();
  request->channel_ = channel_;
  const Napi::Promise promise = request->deferred_.Promise();
  if (closed_) {
    request->settled_ = true;
    request->deferred_.Reject(MakeDisposedError(env, request->where(), false).Value());
    request->ReleaseJs(true);
    return promise;
  }
  pending_.push_back(request);
  channel_->Ref();
  if (!thread_->Post(request)) Settle(env, request, false, MakeDisposedError(env, request->where(), false).Value());
  return promise;
}

void ModelRuntime::Complete(Napi::Env env, const RequestPtr& request) {
  if (request->settled_) return;
  Napi::HandleScope scope(env);
  const Napi::Value override = request->OverrideError(env);
  if (!override.IsEmpty()) return Settle(env, request, false, override);
  if (request->aborted_) return Settle(env, request, false, MakeAbortError(env).Value());
  if (request->failed_) return Settle(env, request, false, request->failure_.ToJs(env).Value());
  Napi::Value result;
  try {
    result = request->Result(env);
  } catch (const Napi::Error& e) {
    return Settle(env, request, false, e.Value());
  } catch (...) {
    return Settle(env, request, false, CaptureCurrentException(request->where()).ToJs(env).Value());
  }
  Settle(env, request, true, result);
}

void ModelRuntime::Settle(Napi::Env env, const RequestPtr& request, bool ok, Napi::Value value) {
  if (request->settled_) return;
  request->settled_ = true;
  ModelRuntimePtr keep = shared_from_this();  // the registry may drop this runtime below
  auto it = std::find(pending_.begin(), pending_.end(), request);
  if (it != pending_.end()) {
    pending_.erase(it);
    channel_->Unref();
  }
  try {
    request->ReleaseJs(true);
  } catch (...) {
  }
  try {
    if (ok) {
      request->deferred_.Resolve(value);
    } else {
      request->deferred_.Reject(value);
    }
  } catch (...) {
    // the environment is stopping: nobody is left to see the outcome
  }
  if (pending_.empty() && (closed_ || ownerGone_)) Shutdown(false);
}

void ModelRuntime::Cancel(Napi::Env env, const RequestPtr& request) {
  if (request->settled_ || !request->TryCancel()) return;  // running: it stops at its next check
  Napi::HandleScope scope(env);
  Settle(env, request, false, MakeAbortError(env).Value());
}

void ModelRuntime::Dispose(Napi::Env env) {
  if (closed_) return;
  closed_ = true;
  ModelRuntimePtr keep = shared_from_this();
  Napi::HandleScope scope(env);
  std::vector<RequestPtr> pending = pending_;
  for (const RequestPtr& request : pending) {
    const bool running = !request->TryCancel();  // claims the queued ones: they never run
    request->RequestStop();                      // the running one stops at its next evaluation
    Settle(env, request, false, MakeDisposedError(env, request->where(), running).Value());
  }
  Shutdown(false);
}

void ModelRuntime::OwnerGone() {
  ownerGone_ = true;
  if (pending_.empty() && !shutDown_) Shutdown(false);
}

void ModelRuntime::TeardownEnv() {
  closed_ = true;
  std::vector<RequestPtr> pending;
  pending.swap(pending_);
  for (const RequestPtr& request : pending) {
    request->TryCancel();
    request->RequestStop();
    request->settled_ = true;  // its Promise dies with the environment
    try {
      request->ReleaseJs(false);
    } catch (...) {
    }
  }
  Shutdown(true);
}

void ModelRuntime::Shutdown(bool abortChannel) {
  closed_ = true;
  shutDown_ = true;
  if (thread_) {
    std::vector<ThreadJobPtr> notStarted;  // none left: every pending request was settled
    thread_->Shutdown(&notStarted);
  }
  if (channel_) channel_->Close(abortChannel);
  // Leave the environment's registry (JS thread; not during teardown, which emptied it).
  if (!abortChannel) {
    auto& runtimes = Registry(Napi::Env(env_)).runtimes;
    auto it = std::find_if(runtimes.begin(), runtimes.end(), [this](const ModelRuntimePtr& r) { return r.get() == this; });
    if (it != runtimes.end()) {
      ModelRuntimePtr keep = std::move(*it);  // destroyed after erase returns
      runtimes.erase(it);
    }
  }
}

}  // namespace scire
