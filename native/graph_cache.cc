#include "graph_cache.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace scire {

int64_t BatchBucket(int64_t batch) {
  if (batch <= 1) return 1;
  if (batch <= 256) {
    int64_t b = 1;
    while (b < batch) b <<= 1;
    return b;
  }
  return (batch + 255) / 256 * 256;
}

bool IsTransientCaptureFailure(const std::string& message) {
  std::string m(message);
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return m.find("out of memory") != std::string::npos || m.find("cudaerrormemoryallocation") != std::string::npos;
}

GraphCacheKey MakeGraphCacheKey(uintptr_t owner, uint64_t plan, std::vector<int64_t> xShape,
                                std::vector<int64_t> condShape, bool guided, double guidanceScale, int deviceIndex) {
  GraphCacheKey key;
  key.owner = owner;
  key.plan = plan;
  if (!xShape.empty()) {
    const int64_t bucket = BatchBucket(xShape[0]);
    xShape[0] = bucket;
    if (!condShape.empty()) condShape[0] = guided ? 2 * bucket : bucket;
  }
  key.xShape = std::move(xShape);
  key.condShape = std::move(condShape);
  key.guided = guided;
  key.guidanceScale = guidanceScale;
  key.deviceIndex = deviceIndex;
  return key;
}

bool GraphCacheKey::operator==(const GraphCacheKey& o) const {
  return owner == o.owner && plan == o.plan && xShape == o.xShape && condShape == o.condShape && guided == o.guided &&
         guidanceScale == o.guidanceScale && deviceIndex == o.deviceIndex;
}

double GraphCachePolicy::BackoffMs(int failures) {
  return std::min(60000.0, 1000.0 * std::pow(2.0, std::max(0, failures - 1)));
}

GraphCachePolicy::LookupResult GraphCachePolicy::Lookup(const GraphCacheKey& key, double nowMs) {
  LookupResult out;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->key == key) {
      entries_.splice(entries_.begin(), entries_, it);  // most recently used
      out.slot = entries_.front().slot;
      if (!out.slot->failure.empty()) {
        out.verdict = Verdict::kEagerFailed;
        out.reason = out.slot->failure;
      } else {
        out.verdict = Verdict::kHit;
      }
      return out;
    }
  }
  for (const Backoff& b : backoffs_) {
    if (b.key == key && nowMs < b.retryAtMs) {
      out.verdict = Verdict::kEagerBackoff;
      out.reason = b.reason + " (transient; capture retried in " +
                   std::to_string(static_cast<long long>(std::ceil(b.retryAtMs - nowMs))) + " ms)";
      return out;
    }
  }
  out.verdict = Verdict::kCapture;
  return out;
}

std::vector<GraphSlotPtr> GraphCachePolicy::Insert(const GraphCacheKey& key, GraphSlotPtr slot) {
  backoffs_.remove_if([&](const Backoff& b) { return b.key == key; });
  std::vector<GraphSlotPtr> evicted;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->key == key) {  // replaced (two captures of one key cannot race: one thread per model)
      bytes_ -= it->slot->bytes;
      evicted.push_back(it->slot);
      entries_.erase(it);
      break;
    }
  }
  if (slot->bytes > limits_.maxBytes) {
    evicted.push_back(std::move(slot));  // alone above the budget: not kept
    return evicted;
  }
  bytes_ += slot->bytes;
  entries_.push_front(Entry{key, std::move(slot)});
  std::vector<GraphSlotPtr> more = EvictToLimits();
  evicted.insert(evicted.end(), more.begin(), more.end());
  return evicted;
}

std::vector<GraphSlotPtr> GraphCachePolicy::EvictToLimits() {
  std::vector<GraphSlotPtr> evicted;
  while (!entries_.empty() && (entries_.size() > limits_.maxEntries || bytes_ > limits_.maxBytes)) {
    bytes_ -= entries_.back().slot->bytes;
    evicted.push_back(std::move(entries_.back().slot));
    entries_.pop_back();
  }
  return evicted;
}

void GraphCachePolicy::RecordTransientFailure(const GraphCacheKey& key, const std::string& reason, double nowMs) {
  for (Backoff& b : backoffs_) {
    if (b.key == key) {
      ++b.failures;
      b.retryAtMs = nowMs + BackoffMs(b.failures);
      b.reason = reason;
      return;
    }
  }
  backoffs_.push_back(Backoff{key, 1, nowMs + BackoffMs(1), reason});
}

std::vector<GraphSlotPtr> GraphCachePolicy::EraseOwner(uintptr_t owner) {
  std::vector<GraphSlotPtr> erased;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (owner == 0 || it->key.owner == owner) {
      bytes_ -= it->slot->bytes;
      erased.push_back(std::move(it->slot));
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  backoffs_.remove_if([&](const Backoff& b) { return owner == 0 || b.key.owner == owner; });
  return erased;
}

std::vector<GraphSlotPtr> GraphCachePolicy::EraseIf(const std::function<bool(const GraphSlotBase&)>& match) {
  std::vector<GraphSlotPtr> erased;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (match(*it->slot)) {
      bytes_ -= it->slot->bytes;
      erased.push_back(std::move(it->slot));
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return erased;
}

}  // namespace scire
