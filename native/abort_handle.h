// A cancellation flag shared between JS and a running plan.
//
// JS:  const h = createAbortHandle();  h.abort();  h.aborted  -> boolean
// C++: AbortFlagPtr f = AbortFlagFromValue(value, "opts.abortHandle");  f->IsSet()
// lib/execute.ts connects an AbortSignal to h.abort(); the executor checks the flag between
// network evaluations and then rejects with an Error named 'AbortError'.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

namespace scire {

struct AbortFlag {
  std::atomic<bool> requested{false};
  bool IsSet() const { return requested.load(std::memory_order_relaxed); }
  void Set() { requested.store(true, std::memory_order_relaxed); }

  // JS thread only: callbacks run by the handle's abort() after the flag is set, so a
  // request still queued is rejected at once (model_runtime.h) instead of when its turn comes.
  uint64_t AddListener(std::function<void()> fn) {
    listeners[++lastId] = std::move(fn);
    return lastId;
  }
  void RemoveListener(uint64_t id) { listeners.erase(id); }
  void Fire() {
    auto copy = listeners;  // a listener may remove itself
    for (auto& entry : copy) entry.second();
  }
  std::map<uint64_t, std::function<void()>> listeners;
  uint64_t lastId = 0;
};
using AbortFlagPtr = std::shared_ptr<AbortFlag>;

/** createAbortHandle() -> { abort(): void, readonly aborted: boolean } */
Napi::Value CreateAbortHandle(const Napi::CallbackInfo& info);

/** The flag behind a value made by createAbortHandle(); TypeError naming `field` otherwise. */
AbortFlagPtr AbortFlagFromValue(const Napi::Value& value, const char* field);

/** The Error a run rejects with when it was aborted: name 'AbortError', code 'ABORT_ERR'. */
Napi::Error MakeAbortError(Napi::Env env);

}  // namespace scire
