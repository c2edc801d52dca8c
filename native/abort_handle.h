// A cancellation flag shared between JS and a running plan.
//
// JS:  const h = createAbortHandle();  h.abort();  h.aborted  -> boolean
// C++: AbortFlagPtr f = AbortFlagFromValue(value, "opts.abortHandle");  f->IsSet()
// lib/execute.ts connects an AbortSignal to h.abort(); the executor checks the flag between
// network evaluations and then rejects with an Error named 'AbortError'.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

namespace scire {

struct AbortFlag {
  std::atomic<bool> requested{false};
  bool IsSet() const { return requested.load(std::memory_order_relaxed); }
  void Set() { requested.store(true, std::memory_order_relaxed); }
};
using AbortFlagPtr = std::shared_ptr<AbortFlag>;

/** createAbortHandle() -> { abort(): void, readonly aborted: boolean } */
Napi::Value CreateAbortHandle(const Napi::CallbackInfo& info);

/** The flag behind a value made by createAbortHandle(); TypeError naming `field` otherwise. */
AbortFlagPtr AbortFlagFromValue(const Napi::Value& value, const char* field);

/** The Error a run rejects with when it was aborted: name 'AbortError', code 'ABORT_ERR'. */
Napi::Error MakeAbortError(Napi::Env env);

}  // namespace scire
