/**
 * The 32-bit Mersenne Twister (MT19937) as PyTorch's CPU generator runs it.
 *
 * `torch.Generator().manual_seed(seed)` keeps the full 64-bit seed but initialises the
 * twister from its low 32 bits only, with the reference Knuth initialisation
 * (state[j] = 1812433253 * (state[j-1] ^ (state[j-1] >> 30)) + j). The state is
 * regenerated lazily on the first draw, so the first output equals the reference MT19937.
 */

const STATE_WORDS = 624;
const SHIFT_WORDS = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_BIT = 0x80000000;
const LOWER_BITS = 0x7fffffff;

export class Mt19937 {
  private readonly state = new Uint32Array(STATE_WORDS);
  private next = STATE_WORDS;

  /** `seedLow32` is the seed reduced modulo 2^32 (PyTorch's `seed & 0xffffffff`). */
  constructor(seedLow32: number) {
    const s = this.state;
    s[0] = seedLow32 >>> 0;
    for (let j = 1; j < STATE_WORDS; j++) {
      const prev = s[j - 1];
      s[j] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + j) >>> 0;
    }
  }

  /** One tempered 32-bit output as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    if (this.next >= STATE_WORDS) this.regenerate();
    let y = this.state[this.next++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private regenerate(): void {
    const s = this.state;
    for (let k = 0; k < STATE_WORDS; k++) {
      const upper = s[k] & UPPER_BIT;
      const lower = s[(k + 1) % STATE_WORDS];
      const mixed = upper | (lower & LOWER_BITS);
      const twisted = (mixed >>> 1) ^ (lower & 1 ? MATRIX_A : 0);
      s[k] = (s[(k + SHIFT_WORDS) % STATE_WORDS] ^ twisted) >>> 0;
    }
    this.next = 0;
  }
}
