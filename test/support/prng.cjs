// mulberry32: a small seeded generator of uniform numbers in [0, 1), for reproducible fuzz and
// soak choices (test/robustness.test.ts and its child process, test/support/robustness-child.cjs).
'use strict';

/** A generator () => [0, 1) from a 32-bit seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

module.exports = { prng };
