#!/usr/bin/env node
/**
 * Fused lincomb kernel vs the same arithmetic written as LibTorch ops, on the same tensors.
 *
 *   node benchmarks/kernels.mjs [--device cpu|cuda] [--terms 2,3,4] [--sizes 64K,1M,16M,64M,256M]
 *                               [--iters N] [--json file] [--quick]
 *
 * Every contender computes out = c_0 x_0 + ... + c_{K-1} x_{K-1} on float32 tensors of one
 * size (the "size" column is one tensor); the timing is done in C++ by the addon's
 * benchLincomb (medians over the iterations; CUDA events on the current stream on a GPU):
 *   fused      the project's kernel: one pass, K reads + 1 write per element
 *   torch ops  in-place LibTorch: at::mul_out(out, x0, c0); out.add_(x_k, c_k) ...
 *              (no temporaries; K passes over out)
 *   torch expr the expression c0*x0 + c1*x1 + ... as a Python sampler writes it (temporaries)
 *   copy       one device-to-device copy of a tensor (cudaMemcpyAsync on a GPU, copy_ on CPU)
 * GB/s is the fused pass's traffic (K + 1) * size divided by each contender's time (so the
 * columns compare times), copy GB/s is 2 * size / copy time, and "of copy" is fused GB/s as
 * a fraction of copy GB/s. Ratios are measured in the same run on the same tensors.
 * Targets (issue 4): CPU fused 3/4-term >= 2x the LibTorch version above the last-level
 * cache; GPU fused >= 90 % of the copy bandwidth at >= 64 MiB.
 */
import { writeFileSync } from 'fs';
import os from 'os';
import { flag, nativeBinding, nativeBindingPath, opt, parseSizes, UNITS } from './support/kernel-bench-args.mjs';

const quick = flag('quick');
const device = opt('device', 'cpu');
const sizes = parseSizes(opt('sizes', quick ? '64K,1M,16M,64M' : '64K,1M,16M,64M,256M'));
const termsList = opt('terms', '2,3,4').split(',').map(Number);
const fixedIters = opt('iters', undefined);
const jsonOut = opt('json', undefined);

const b = nativeBinding();
const info = b.buildInfo();
const human = (n) => (n >= UNITS.G ? `${n / UNITS.G} GiB` : n >= UNITS.M ? `${n / UNITS.M} MiB` : `${n / UNITS.K} KiB`);
/** Iterations: about 2 GiB (CPU) / 20 GiB (GPU) of fused traffic per contender, 3 to 200. */
function itersFor(bytes, terms) {
  if (fixedIters) return Number(fixedIters);
  const budget = (device === 'cpu' ? 2 : 20) * UNITS.G * (quick ? 0.25 : 1);
  return Math.max(3, Math.min(200, Math.round(budget / (bytes * (terms + 1)))));
}

console.log(
  `# fused lincomb vs LibTorch ops  (addon ${nativeBindingPath()}; LibTorch ${info.torchVersion}; ` +
    `device ${device}; ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length})`,
);
const rows = [];
for (const terms of termsList) {
  for (const bytes of sizes) {
    const iters = itersFor(bytes, terms);
    const r = b.benchLincomb({ terms, bytes, device, iters });
    const traffic = (terms + 1) * bytes;
    const gbps = (ms) => traffic / (ms * 1e-3) / 1e9;
    const row = {
      terms,
      bytes,
      size: human(bytes),
      iters,
      threads: r.threads,
      fusedMs: r.fusedMs,
      torchOpsMs: r.torchOpsMs,
      torchExprMs: r.torchExprMs,
      copyMs: r.copyMs,
      fusedGBps: gbps(r.fusedMs),
      torchOpsGBps: gbps(r.torchOpsMs),
      torchExprGBps: gbps(r.torchExprMs),
      copyGBps: (2 * bytes) / (r.copyMs * 1e-3) / 1e9,
      vsOps: r.torchOpsMs / r.fusedMs,
      vsExpr: r.torchExprMs / r.fusedMs,
      maxAbsDiff: r.maxAbsDiff,
    };
    row.ofCopy = row.fusedGBps / row.copyGBps;
    rows.push(row);
    process.stderr.write(`  measured ${terms} terms, ${row.size} (${iters} iters)\n`);
  }
}

const header = ['terms', 'size', 'fused GB/s', 'torch ops GB/s', 'torch expr GB/s', 'fused vs ops', 'fused vs expr', 'copy GB/s', 'fused of copy'];
const table = rows.map((r) => [
  String(r.terms),
  r.size,
  r.fusedGBps.toFixed(1),
  r.torchOpsGBps.toFixed(1),
  r.torchExprGBps.toFixed(1),
  `${r.vsOps.toFixed(2)}x`,
  `${r.vsExpr.toFixed(2)}x`,
  r.copyGBps.toFixed(1),
  `${(100 * r.ofCopy).toFixed(0)} %`,
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
const line = (cells) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of table) console.log(line(row));
console.log(
  `threads ${rows[0]?.threads}; GB/s = (terms + 1) x size / time (the fused pass's traffic); copy GB/s = 2 x size / time; ` +
    `max |fused - expr| ${Math.max(...rows.map((r) => r.maxAbsDiff)).toExponential(1)}`,
);
if (jsonOut) {
  writeFileSync(jsonOut, JSON.stringify({ device, torch: info.torchVersion, cpu: os.cpus()[0]?.model, rows }, null, 2));
  console.log(`wrote ${jsonOut}`);
}
