// JsChannel: a way back to the JS thread from a model's owner thread, safe across dispose(),
// worker.terminate() and process exit.
//
// One thread-safe function (napi_threadsafe_function) per model. The owner thread Post()s
// closures; they run on the JS thread in FIFO order (step events before the completion of the
// same request). Only the JS thread opens, refs/unrefs and closes the channel.
//
// Why not a bare thread-safe function: when its environment is torn down (a worker
// terminated), Node deletes the thread-safe function even if a thread still holds it, and a
// later napi_call_threadsafe_function from that thread would use freed memory. Here every
// call goes through a mutex-guarded pointer that Close() (and the finalizer) clear first, so a
// thread that returns from a long forward after the environment is gone finds the channel
// closed and drops its message.
//
// A closure that is dropped (channel closed, or Node empties the queue at teardown with no
// environment) is destroyed without being called: closures must not own Napi references
// (requests keep theirs in their JS-thread state, released by the request table, see
// model_runtime.h).
#pragma once

#include <node_api.h>

#include <functional>
#include <memory>
#include <mutex>

namespace scire {

class JsChannel {
 public:
  using Task = std::function<void(napi_env env)>;

  /** Creates the thread-safe function (JS thread). It starts unref'd: an idle model does not
   *  keep the event loop alive. Throws ScireError on failure. */
  static std::shared_ptr<JsChannel> Open(napi_env env, const char* name);
  ~JsChannel();

  /** Queues `task` for the JS thread; false (task dropped) when the channel is closed. Any thread. */
  bool Post(Task task);

  /** Keep the event loop alive while requests are pending (JS thread; counted). */
  void Ref();
  void Unref();

  /** Releases the thread-safe function; queued tasks still run unless `abort`. JS thread. */
  void Close(bool abort);
  bool Closed() const;

 private:
  JsChannel() = default;
  static void CallJs(napi_env env, napi_value, void* context, void* data);
  static void Finalize(napi_env env, void* data, void* hint);

  struct State {
    std::mutex mutex;
    napi_threadsafe_function tsfn = nullptr;  // null once closed or finalized
  };
  std::shared_ptr<State> state_;  // shared with the finalizer
  napi_env env_ = nullptr;
  int refs_ = 0;  // JS thread only
};
using JsChannelPtr = std::shared_ptr<JsChannel>;

}  // namespace scire
