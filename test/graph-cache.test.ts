/**
 * The CUDA-graph cache policy (native/graph_cache.{h,cc}), driven on the CPU with fake entries
 * through the testing addon's graphCachePolicyProbe: batch buckets, LRU eviction by count and
 * by bytes, failures remembered for good vs retried after a transient error (out of memory)
 * with a backoff, and the entries of one model erased (dispose / clearCudaGraphs).
 * The real graphs (capture, replay, memory) are checked on a GPU machine (test/cuda-graph.test.ts
 * and benchmarks/gpu.js, skipped here).
 */
import { describe, expect, it } from 'vitest';
import { testingBinding, type GraphCacheKeySpec } from './support/testing-addon';

const binding = testingBinding();
const MiB = 1 << 20;
const key = (batch: number, extra: Partial<GraphCacheKeySpec> = {}): GraphCacheKeySpec => ({ owner: 1, plan: 7, shape: [batch, 1, 28, 28], ...extra });

describe('graph cache policy', () => {
  it('maps a batch to its bucket: powers of two up to 256, then multiples of 256', () => {
    const buckets = [1, 2, 3, 4, 5, 8, 9, 31, 33, 64, 65, 200, 256, 257, 300, 512, 513, 1000].map((n) => binding.batchBucket(n));
    expect(buckets).toEqual([1, 2, 4, 4, 8, 8, 16, 32, 64, 64, 128, 256, 256, 512, 512, 512, 768, 1024]);
    // dynamic batching from 1 to 64 requests: 7 graphs, not 64
    expect(new Set(Array.from({ length: 64 }, (_, i) => binding.batchBucket(i + 1))).size).toBe(7);
  });

  it('keys by bucket: batches 5 to 8 share one graph, 9 needs another; guided cond halves follow', () => {
    const p = binding.graphCachePolicyProbe();
    expect(p.lookup(key(5), 0).verdict).toBe('capture');
    p.insert(key(5), { id: 1, bytes: MiB });
    for (const b of [5, 6, 7, 8]) expect(p.lookup(key(b), 0)).toMatchObject({ verdict: 'hit', id: 1 });
    expect(p.lookup(key(9), 0).verdict).toBe('capture');
    // the key's other fields: plan, owner, per-sample shape, guidance, device
    for (const other of [{ plan: 8 }, { owner: 2 }, { shape: [5, 3, 28, 28] }, { guidanceScale: 2 }, { device: 1 }]) {
      expect(p.lookup(key(5, other), 0).verdict).toBe('capture');
    }
    const guided = (b: number) => key(b, { condShape: [2 * b, 10], guided: true, guidanceScale: 3 });
    p.insert(guided(3), { id: 2, bytes: MiB });
    expect(p.lookup(guided(4), 0)).toMatchObject({ verdict: 'hit', id: 2 });
    expect(p.count()).toBe(2);
  });

  it('evicts the least recently used entries beyond maxEntries', () => {
    const p = binding.graphCachePolicyProbe({ maxEntries: 3, maxBytes: 1e12 });
    for (let i = 0; i < 3; i++) expect(p.insert(key(1, { plan: i }), { id: i, bytes: MiB })).toEqual([]);
    expect(p.lookup(key(1, { plan: 0 }), 0).verdict).toBe('hit'); // plan 0 is now the most recent
    expect(p.insert(key(1, { plan: 3 }), { id: 3, bytes: MiB })).toEqual([1]); // plan 1 was the least recent
    expect(p.insert(key(1, { plan: 4 }), { id: 4, bytes: MiB })).toEqual([2]);
    expect(p.count()).toBe(3);
    expect(p.bytes()).toBe(3 * MiB);
    expect(p.lookup(key(1, { plan: 1 }), 0).verdict).toBe('capture');
  });

  it('evicts by bytes, and does not keep an entry larger than the whole budget', () => {
    const p = binding.graphCachePolicyProbe({ maxEntries: 100, maxBytes: 10 * MiB });
    expect(p.insert(key(1), { id: 1, bytes: 4 * MiB })).toEqual([]);
    expect(p.insert(key(2), { id: 2, bytes: 4 * MiB })).toEqual([]);
    expect(p.insert(key(4), { id: 3, bytes: 4 * MiB })).toEqual([1]); // 12 MiB > 10 MiB: the oldest goes
    expect(p.bytes()).toBe(8 * MiB);
    expect(p.insert(key(8), { id: 4, bytes: 11 * MiB })).toEqual([4]); // alone above the budget
    expect(p.count()).toBe(2);
    expect(p.bytes()).toBe(8 * MiB);
    // 20 distinct batch sizes under a 3-entry bound: never more than 3 entries or 3 x 1 MiB
    const q = binding.graphCachePolicyProbe({ maxEntries: 3, maxBytes: 1e12 });
    for (let b = 1; b <= 20; b++) {
      if (q.lookup(key(b * 13), 0).verdict === 'capture') q.insert(key(b * 13), { id: b, bytes: MiB });
      expect(q.count()).toBeLessThanOrEqual(3);
    }
  });

  it('remembers a permanent capture failure; retries a transient one after a backoff', () => {
    const p = binding.graphCachePolicyProbe();
    expect(p.isTransient('capture failed: CUDA out of memory. Tried to allocate 2.00 GiB')).toBe(true);
    expect(p.isTransient('capture failed: cudaErrorMemoryAllocation')).toBe(true);
    expect(p.isTransient('capture failed: operation not permitted when stream is capturing')).toBe(false);

    p.insert(key(2), { id: 1, bytes: 0, failure: 'capture failed: operation not permitted when stream is capturing' });
    expect(p.lookup(key(2), 0)).toMatchObject({ verdict: 'eager-failed', reason: 'capture failed: operation not permitted when stream is capturing' });
    expect(p.lookup(key(2), 1e9).verdict).toBe('eager-failed'); // for good

    const oom = 'capture failed: CUDA out of memory';
    p.recordTransientFailure(key(8), oom, 1000);
    expect(p.count()).toBe(1); // not cached as an entry
    const during = p.lookup(key(8), 1500);
    expect(during.verdict).toBe('eager-backoff');
    expect(during.reason).toMatch(/^capture failed: CUDA out of memory \(transient; capture retried in 500 ms\)$/);
    expect(p.lookup(key(8), 2000).verdict).toBe('capture'); // 1 s later: retried
    p.recordTransientFailure(key(8), oom, 2000); // second failure: 2 s backoff
    expect(p.lookup(key(8), 3999).verdict).toBe('eager-backoff');
    expect(p.lookup(key(8), 4000).verdict).toBe('capture');
    p.insert(key(8), { id: 2, bytes: MiB }); // captured at last: the backoff record goes
    expect(p.backoffs()).toBe(0);
    expect(p.lookup(key(8), 4000)).toMatchObject({ verdict: 'hit', id: 2 });
  });

  it("erases one model's entries and backoffs (dispose, clearCudaGraphs); owner 0 erases all", () => {
    const p = binding.graphCachePolicyProbe();
    p.insert(key(1, { owner: 1 }), { id: 1, bytes: MiB });
    p.insert(key(2, { owner: 1 }), { id: 2, bytes: MiB });
    p.insert(key(1, { owner: 2 }), { id: 3, bytes: MiB });
    p.recordTransientFailure(key(4, { owner: 1 }), 'out of memory', 0);
    expect(p.eraseOwner(1).sort()).toEqual([1, 2]);
    expect(p.backoffs()).toBe(0);
    expect(p.count()).toBe(1);
    expect(p.bytes()).toBe(MiB);
    expect(p.eraseOwner(0)).toEqual([3]);
    expect(p.count()).toBe(0);
  });

  it('the process-wide cache is empty on the CPU and reports its bounds', () => {
    const s = binding.cudaGraphCacheState();
    expect(s.entries).toBe(0);
    expect(s.maxEntries).toBe(32);
    expect(s.maxBytes).toBe(4096 * MiB);
  });
});
