#!/usr/bin/env node
/**
 * The inpainting kernel (native/kernels/masked_lincomb*): the fused masked pass
 *   out = (1 - m) * sum_k c_k x_k + m * (a x0 + s z)
 * against the same work as two passes (the plain fused lincomb, then the correction as a
 * separate in-place pass, what a separate 'inpaint' op after every update would cost), the plain
 * lincomb alone (what a step costs without inpainting) and the masked arithmetic as LibTorch ops.
 *
 *   node benchmarks/masked-kernel.mjs [--device cpu|cuda] [--terms 2,3] [--sizes 1M,4M,64M] [--iters N]
 *
 * Timed in C++ by the testing addon's benchMaskedLincomb (medians; CUDA events on a GPU).
 * Traffic: fused K + 4 tensor sizes, two passes K + 1 + 5, plain K + 1. Ratios are within one run.
 */
import { nativeBinding, opt, parseSizes, UNITS } from './support/kernel-bench-args.mjs';

const device = opt('device', 'cpu');
const sizes = parseSizes(opt('sizes', '1M,4M,64M'));
const termsList = opt('terms', '2,3').split(',').map(Number);
const iters = Number(opt('iters', '9'));
const b = nativeBinding();

console.log(`| terms | size | fused masked ms | two passes ms | plain lincomb ms | LibTorch ops ms | fused / two passes | max abs diff |`);
console.log(`|---|---|---|---|---|---|---|---|`);
let threads = 0;
for (const terms of termsList) {
  for (const bytes of sizes) {
    const r = b.benchMaskedLincomb({ terms, bytes, device, iters });
    threads = r.threads;
    const mib = bytes / UNITS.M;
    console.log(
      `| ${terms} | ${mib} MiB | ${r.maskedMs.toFixed(3)} | ${r.twoPassMs.toFixed(3)} | ${r.plainMs.toFixed(3)} | ` +
        `${r.torchOpsMs.toFixed(3)} | ${(r.maskedMs / r.twoPassMs).toFixed(2)} | ${r.maxAbsDiff.toExponential(1)} |`,
    );
  }
}
console.log(`\n${device}, ${threads} LibTorch thread(s), medians of ${iters}; pure traffic would give fused / two passes = (K+4)/(K+6).`);
