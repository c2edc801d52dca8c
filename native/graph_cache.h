// The policy of the CUDA-graph cache (cuda_graph.cc), free of CUDA so that it is tested on the
// CPU (the testing addon drives it with fake entries, test/graph-cache.test.ts).
//
//  - Keys: the model, the plan's fingerprint, the per-sample shapes, the batch BUCKET (not the
//    batch), guidance and the device. The executor pads a batch up to its bucket and slices
//    the result, so dynamic batching (any batch from 1 to maxBatchSize) needs at most
//    log2(maxBatchSize) + 1 graphs instead of one per batch size.
//  - Bounded: at most `maxEntries` graphs and `maxBytes` bytes of graph memory (pools, static
//    inputs and outputs); inserting past a bound evicts the least recently used entries. An
//    entry larger than maxBytes on its own is not kept (the run still used it once).
//  - Failures: a capture that failed for a reason that will not change (the model
//    synchronises with the host, an unsupported op) is remembered, so the next run goes
//    eager at once; a transient failure (out of memory) is not: the next run after a backoff
//    (1 s, doubling up to 60 s) tries again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace scire {

/** The batch a graph is captured for: the next power of two up to 256, then the next multiple of 256. */
int64_t BatchBucket(int64_t batch);

/** True for a capture failure that may pass (out of memory): retried later, not cached. */
bool IsTransientCaptureFailure(const std::string& message);

struct GraphCacheKey;
/**
 * The key of a run: `xShape` is the caller's [batch, ...] and `condShape` its cond shape
 * ([2 * batch, ...] when guided, empty without cond); both get the batch's bucket.
 */
GraphCacheKey MakeGraphCacheKey(uintptr_t owner, uint64_t plan, std::vector<int64_t> xShape,
                                std::vector<int64_t> condShape, bool guided, double guidanceScale, int deviceIndex);

struct GraphCacheKey {
  uintptr_t owner = 0;           // the ModelHandle
  uint64_t plan = 0;             // PlanFingerprint
  std::vector<int64_t> xShape;   // with shape[0] = the bucket
  std::vector<int64_t> condShape;
  bool guided = false;
  double guidanceScale = 1.0;    // baked into the captured coefficients
  int deviceIndex = 0;
  bool operator==(const GraphCacheKey& o) const;
};

/** What the cache keeps per key; `Payload` is the captured graph (cuda_graph.cc) or a test's fake. */
struct GraphSlotBase {
  virtual ~GraphSlotBase() = default;
  size_t bytes = 0;         // graph memory held while cached
  std::string failure;      // non-empty: the capture failed for good, run eagerly
};
using GraphSlotPtr = std::shared_ptr<GraphSlotBase>;

class GraphCachePolicy {
 public:
  struct Limits {
    size_t maxEntries = 32;
    size_t maxBytes = size_t(4) << 30;  // 4 GiB
  };
  explicit GraphCachePolicy(Limits limits) : limits_(limits) {}

  enum class Verdict { kHit, kCapture, kEagerFailed, kEagerBackoff };
  struct LookupResult {
    Verdict verdict = Verdict::kCapture;
    GraphSlotPtr slot;       // kHit: the graph; kEagerFailed: the failure record
    std::string reason;      // kEagerBackoff / kEagerFailed: why the run is eager
  };
  /** kHit (most recently used now), kCapture (capture it), or an eager verdict. `nowMs`: a
   *  monotonic clock in milliseconds. */
  LookupResult Lookup(const GraphCacheKey& key, double nowMs);

  /** Keeps a captured graph (or a permanent failure: bytes 0) and returns the entries evicted
   *  to stay within the limits (the caller frees them after the device is idle). */
  std::vector<GraphSlotPtr> Insert(const GraphCacheKey& key, GraphSlotPtr slot);

  /** Records a transient capture failure: no entry; the key is retried after the backoff. */
  void RecordTransientFailure(const GraphCacheKey& key, const std::string& reason, double nowMs);

  /** Removes the entries of `owner` (0: all) and their backoff records; returns them. */
  std::vector<GraphSlotPtr> EraseOwner(uintptr_t owner);
  /** Removes the entries whose slot matches (e.g. their model was released); returns them. */
  std::vector<GraphSlotPtr> EraseIf(const std::function<bool(const GraphSlotBase&)>& match);

  size_t Count() const { return entries_.size(); }
  size_t Bytes() const { return bytes_; }
  const Limits& limits() const { return limits_; }
  void SetLimits(Limits limits) { limits_ = limits; }
  /** Backoff records (transient failures waiting for their retry). */
  size_t Backoffs() const { return backoffs_.size(); }

  static double BackoffMs(int failures);

 private:
  struct Entry {
    GraphCacheKey key;
    GraphSlotPtr slot;
  };
  struct Backoff {
    GraphCacheKey key;
    int failures = 0;
    double retryAtMs = 0;
    std::string reason;
  };
  std::vector<GraphSlotPtr> EvictToLimits();

  Limits limits_;
  std::list<Entry> entries_;  // front: most recently used
  std::list<Backoff> backoffs_;
  size_t bytes_ = 0;
};

}  // namespace scire
