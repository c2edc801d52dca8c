// ModelRuntime: the serving side of one loaded model. It owns the model's thread
// (model_thread.h), its channel back to JS (js_channel.h) and the table of requests that are
// queued or running, and settles each request's Promise exactly once on the JS thread.
//
//   JS thread                                  owner thread
//   ---------                                  ------------
//   Submit(request) -> Promise    ---post--->  TryStart(); Run()   (skipped when cancelled)
//   step events, completion       <--channel-  PostToJs(...) / completion
//   Cancel(request): still queued? reject now with an AbortError; it never runs
//   Dispose(): reject every pending request (ERR_SCIRE_DISPOSED), stop the running one at its
//              next evaluation, join the idle thread or detach the busy one
//   TeardownEnv(): the environment is going away (worker.terminate()): drop every JS
//              reference without calling JS, abort the channel, join or detach the thread
//
// A request is a Request subclass (executor.cc: ExecuteRequest, model.cc: ForwardRequest).
// Its JS objects (promise, callbacks, signal listener) live in its JS-thread state and are
// released in ReleaseJs(), called exactly once on the JS thread when it leaves the table;
// everything else in it is plain C++, so it may be destroyed on any thread.
//
// Keep-alive: the channel is ref'd while requests are pending, so a pending Promise keeps the
// process alive and an idle model does not.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "abort_handle.h"
#include "errors.h"
#include "js_channel.h"
#include "model_thread.h"

namespace scire {

class ModelRuntime;

/** Thrown by a request's Run() when it sees its stop flag: the request rejects with an AbortError. */
struct AbortedRun {};

class Request : public ThreadJob, public std::enable_shared_from_this<Request> {
 public:
  /** JS thread. `where` prefixes failure messages ("execute", "forward"). */
  Request(Napi::Env env, std::string where);
  ~Request() override = default;

  const std::string& where() const { return where_; }

  /** JS thread: the run was aborted (AbortSignal / abort handle). A request that has not
   *  started is rejected at once and never runs; a running one stops at its next check. */
  void AbortFromJs();

 protected:
  /** Owner thread: the work. Throw to fail (errors.h), throw AbortedRun{} when StopRequested(). */
  virtual void Run() = 0;
  /** JS thread, after Run() returned: the value to resolve with (a throw rejects instead). */
  virtual Napi::Value Result(Napi::Env env) = 0;
  /** JS thread: an error to reject with instead of the run's outcome (e.g. what a progress
   *  callback threw); an empty Value when none. */
  virtual Napi::Value OverrideError(Napi::Env env) { return Napi::Value(); }
  /** JS thread, exactly once: drop every Napi reference. `canCallJs` is false at environment
   *  teardown: then only references are deleted, no JS function is called. */
  virtual void ReleaseJs(bool canCallJs) {}
  /** Owner thread: free the inputs once the run is over. */
  virtual void ReleaseInputs() {}

  /** Owner thread: stop requested (aborted, disposed, a callback failed). */
  bool StopRequested() const { return stop_.IsSet() || (userAbort_ && userAbort_->IsSet()); }
  /** Any thread: a flag that also stops the run (e.g. what a callback failure sets). */
  void RequestStop() { stop_.Set(); }
  /** The handle from opts.abortHandle, checked like the stop flag (set before Submit). */
  void SetUserAbort(AbortFlagPtr flag) { userAbort_ = std::move(flag); }

  /** Owner thread -> JS thread: runs `fn` there in FIFO order unless the request was
   *  settled by then. `fn` must own no Napi reference. */
  void PostToJs(std::function<void(Napi::Env)> fn);

 private:
  friend class ModelRuntime;
  void RunOnOwner() noexcept final;

  std::string where_;
  Napi::Promise::Deferred deferred_;  // JS thread
  bool settled_ = false;              // JS thread
  AbortFlag stop_;
  AbortFlagPtr userAbort_;
  // Outcome of Run(), read on the JS thread after the completion task arrives.
  bool aborted_ = false;
  bool failed_ = false;
  Failure failure_;
  std::weak_ptr<ModelRuntime> runtime_;
  JsChannelPtr channel_;
};
using RequestPtr = std::shared_ptr<Request>;

class ModelRuntime : public std::enable_shared_from_this<ModelRuntime> {
 public:
  /** JS thread: starts the owner thread and the channel, and registers for environment
   *  teardown. `label` names the thread (e.g. the model file's name). */
  static std::shared_ptr<ModelRuntime> Start(Napi::Env env, const std::string& label);
  ~ModelRuntime();

  /** JS thread: queues `request` and returns its Promise (rejected at once after Dispose()). */
  Napi::Promise Submit(const RequestPtr& request);

  /** JS thread: rejects every pending request with ERR_SCIRE_DISPOSED and shuts the thread
   *  down (joined when idle, detached when a forward is running). Idempotent. */
  void Dispose(Napi::Env env);
  /** JS thread: the Model object was garbage-collected: shut down once nothing is pending. */
  void OwnerGone();
  /** Environment cleanup: no JS may run. Drops the JS state of every request. */
  void TeardownEnv();

  bool Disposed() const { return closed_; }
  /** Requests queued or running (JS-thread view). */
  size_t Pending() const { return pending_.size(); }

 private:
  ModelRuntime() = default;
  friend class Request;
  void Complete(Napi::Env env, const RequestPtr& request);            // completion task
  void Settle(Napi::Env env, const RequestPtr& request, bool ok, Napi::Value value);
  void Cancel(Napi::Env env, const RequestPtr& request);               // AbortFromJs
  void Shutdown(bool abortChannel);

  std::unique_ptr<ModelThread> thread_;
  JsChannelPtr channel_;
  std::vector<RequestPtr> pending_;  // JS thread
  bool closed_ = false;              // JS thread: Dispose() / teardown
  bool ownerGone_ = false;
  bool shutDown_ = false;
  napi_env env_ = nullptr;
};
using ModelRuntimePtr = std::shared_ptr<ModelRuntime>;

/** Throws a RangeError (ScireError) when SCIRE_INTRA_OP_THREADS is set but not an integer in
 *  [1, 1024]. When valid it sets LibTorch's intra-op threads of every model thread. */
void CheckIntraOpThreadsEnv();

/** JS thread: the Error of a request refused or dropped by dispose(), code ERR_SCIRE_DISPOSED. */
Napi::Error MakeDisposedError(Napi::Env env, const std::string& where, bool wasRunning);

}  // namespace scire
