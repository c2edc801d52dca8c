// The CUDA-graph cache policy (graph_cache.h) driven from JS with fake entries, so that its
// eviction, bucketing and retry rules are tested on the CPU (test/graph-cache.test.ts):
//
//   const p = graphCachePolicyProbe({ maxEntries, maxBytes });
//   p.lookup(key, nowMs)        -> { verdict: 'hit'|'capture'|'eager-failed'|'eager-backoff', id?, reason? }
//   p.insert(key, { id, bytes, failure? })  -> ids evicted (least recently used first)
//   p.recordTransientFailure(key, reason, nowMs)
//   p.eraseOwner(owner)         -> ids erased (owner 0: all)
//   p.count(), p.bytes(), p.backoffs()
//   p.isTransient(message)      -> whether a capture failure would be retried
// with key = { owner, plan, shape: number[], condShape?: number[], guided?, guidanceScale?, device? }
// (shape[0] is the caller's batch; the key holds its bucket, as the executor's does).
//
//   batchBucket(n)       -> the batch a graph for n samples is captured for
//   cudaGraphCacheState() -> { entries, bytes, maxEntries, maxBytes } of the process-wide cache
#include <memory>
#include <string>
#include <vector>

#include "cuda_graph.h"
#include "errors.h"
#include "graph_cache.h"
#include "shape.h"
#include "testing.h"

namespace scire {
namespace {

constexpr const char* kWhere = "graphCachePolicyProbe";

struct FakeSlot : GraphSlotBase {
  double id = 0;
};

double NumberAt(const Napi::Value& v, const std::string& field) {
  if (!v.IsNumber()) throw TypeErrorFor(kWhere, field, "a number");
  return v.As<Napi::Number>().DoubleValue();
}

GraphCacheKey KeyFrom(const Napi::Value& value) {
  if (!value.IsObject()) throw TypeErrorFor(kWhere, "key", "an object { owner, plan, shape, condShape?, guided?, guidanceScale?, device? }");
  const Napi::Object o = value.As<Napi::Object>();
  const Napi::Value cond = o.Get("condShape");
  const Napi::Value guided = o.Get("guided");
  const Napi::Value scale = o.Get("guidanceScale");
  const Napi::Value device = o.Get("device");
  return MakeGraphCacheKey(static_cast<uintptr_t>(NumberAt(o.Get("owner"), "key.owner")),
                           static_cast<uint64_t>(NumberAt(o.Get("plan"), "key.plan")),
                           ParseShape(o.Get("shape"), kWhere, "key.shape"),
                           cond.IsUndefined() ? std::vector<int64_t>{} : ParseShape(cond, kWhere, "key.condShape"),
                           guided.ToBoolean().Value(), scale.IsUndefined() ? 1.0 : NumberAt(scale, "key.guidanceScale"),
                           device.IsUndefined() ? 0 : static_cast<int>(NumberAt(device, "key.device")));
}

Napi::Array Ids(Napi::Env env, const std::vector<GraphSlotPtr>& slots) {
  Napi::Array out = Napi::Array::New(env, slots.size());
  for (uint32_t i = 0; i < slots.size(); ++i) out.Set(i, static_cast<const FakeSlot&>(*slots[i]).id);
  return out;
}

const char* VerdictName(GraphCachePolicy::Verdict v) {
  switch (v) {
    case GraphCachePolicy::Verdict::kHit: return "hit";
    case GraphCachePolicy::Verdict::kCapture: return "capture";
    case GraphCachePolicy::Verdict::kEagerFailed: return "eager-failed";
    case GraphCachePolicy::Verdict::kEagerBackoff: return "eager-backoff";
  }
  return "?";
}

template <typename F>
Napi::Function Method(Napi::Env env, const char* name, F&& fn) {
  return Napi::Function::New(
      env, [fn](const Napi::CallbackInfo& info) -> Napi::Value { return GuardJs(info.Env(), kWhere, [&] { return fn(info); }); },
      name);
}

}  // namespace

Napi::Value GraphCachePolicyProbeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return GuardJs(env, kWhere, [&]() -> Napi::Value {
    GraphCachePolicy::Limits limits;
    if (info.Length() > 0 && info[0].IsObject()) {
      const Napi::Object o = info[0].As<Napi::Object>();
      if (!o.Get("maxEntries").IsUndefined()) limits.maxEntries = static_cast<size_t>(NumberAt(o.Get("maxEntries"), "maxEntries"));
      if (!o.Get("maxBytes").IsUndefined()) limits.maxBytes = static_cast<size_t>(NumberAt(o.Get("maxBytes"), "maxBytes"));
    }
    auto policy = std::make_shared<GraphCachePolicy>(limits);
    Napi::Object p = Napi::Object::New(env);
    p.Set("lookup", Method(env, "lookup", [policy](const Napi::CallbackInfo& i) -> Napi::Value {
      const auto r = policy->Lookup(KeyFrom(i[0]), NumberAt(i[1], "nowMs"));
      Napi::Object o = Napi::Object::New(i.Env());
      o.Set("verdict", VerdictName(r.verdict));
      if (r.slot) o.Set("id", static_cast<const FakeSlot&>(*r.slot).id);
      if (!r.reason.empty()) o.Set("reason", r.reason);
      return o;
    }));
    p.Set("insert", Method(env, "insert", [policy](const Napi::CallbackInfo& i) -> Napi::Value {
      if (!i[1].IsObject()) throw TypeErrorFor(kWhere, "slot", "an object { id, bytes, failure? }");
      const Napi::Object o = i[1].As<Napi::Object>();
      auto slot = std::make_shared<FakeSlot>();
      slot->id = NumberAt(o.Get("id"), "slot.id");
      slot->bytes = static_cast<size_t>(NumberAt(o.Get("bytes"), "slot.bytes"));
      if (o.Get("failure").IsString()) slot->failure = o.Get("failure").As<Napi::String>().Utf8Value();
      return Ids(i.Env(), policy->Insert(KeyFrom(i[0]), slot));
    }));
    p.Set("recordTransientFailure", Method(env, "recordTransientFailure", [policy](const Napi::CallbackInfo& i) -> Napi::Value {
      if (!i[1].IsString()) throw TypeErrorFor(kWhere, "reason", "a string");
      policy->RecordTransientFailure(KeyFrom(i[0]), i[1].As<Napi::String>().Utf8Value(), NumberAt(i[2], "nowMs"));
      return i.Env().Undefined();
    }));
    p.Set("eraseOwner", Method(env, "eraseOwner", [policy](const Napi::CallbackInfo& i) -> Napi::Value {
      return Ids(i.Env(), policy->EraseOwner(static_cast<uintptr_t>(NumberAt(i[0], "owner"))));
    }));
    p.Set("count", Method(env, "count", [policy](const Napi::CallbackInfo& i) -> Napi::Value {
      return Napi::Number::New(i.Env(), static_cast<double>(policy->Count()));
    }));
    p.Set("bytes", Method(env, "bytes", [policy](const Napi::CallbackInfo& i) -> Napi::Value {
      return Napi::Number::New(i.Env(), static_cast<double>(policy->Bytes()));
    }));
    p.Set("backoffs", Method(env, "backoffs", [policy](const Napi::CallbackInfo& i) -> Napi::Value {
      return Napi::Number::New(i.Env(), static_cast<double>(policy->Backoffs()));
    }));
    p.Set("isTransient", Method(env, "isTransient", [](const Napi::CallbackInfo& i) -> Napi::Value {
      if (!i[0].IsString()) throw TypeErrorFor(kWhere, "message", "a string");
      return Napi::Boolean::New(i.Env(), IsTransientCaptureFailure(i[0].As<Napi::String>().Utf8Value()));
    }));
    return p;
  });
}

Napi::Value BatchBucketJs(const Napi::CallbackInfo& info) {
  return GuardJs(info.Env(), "batchBucket", [&]() -> Napi::Value {
    const double n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    if (!(n >= 1 && n <= 1e9)) throw RangeErrorFor("batchBucket", "n", "must be a batch size in [1, 1e9]");
    return Napi::Number::New(info.Env(), static_cast<double>(BatchBucket(static_cast<int64_t>(n))));
  });
}

Napi::Value CudaGraphCacheStateJs(const Napi::CallbackInfo& info) {
  const GraphCacheStats s = GraphCacheState();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("entries", static_cast<double>(s.entries));
  o.Set("bytes", static_cast<double>(s.bytes));
  o.Set("maxEntries", static_cast<double>(s.maxEntries));
  o.Set("maxBytes", static_cast<double>(s.maxBytes));
  return o;
}

}  // namespace scire
