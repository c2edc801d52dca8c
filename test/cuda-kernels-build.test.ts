/**
 * CUDA build (issue 11): the addon compiles its CUDA kernels only when its LibTorch has CUDA
 * (SCIRE_WITH_CUDA=AUTO), so with Debian's CPU LibTorch the default addon is CPU-only and does
 * not link libcudart even where nvcc exists. The kernels must keep compiling all the same:
 * where nvcc is found, this test builds the kernel library alone with SCIRE_WITH_CUDA=ON in
 * its own build folder (build-cuda-kernels/, incremental) and checks the SASS it holds.
 */
import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { nativeBinding, nativeBindingPath } from '../lib/native';

const ROOT = path.join(__dirname, '..');
const NVCC = [process.env.CUDACXX, ...(process.env.PATH ?? '').split(':').map((d) => path.join(d, 'nvcc')), '/usr/local/cuda/bin/nvcc'].find(
  (f) => f && fs.existsSync(f),
);
const OUT = path.join(ROOT, 'build-cuda-kernels');

function neededLibs(file: string): string[] {
  const out = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

describe('CUDA kernels and the default addon', () => {
  it('the default addon says what it is: CUDA only when its LibTorch has CUDA, and no libcudart otherwise', () => {
    const info = nativeBinding().buildInfo();
    const needed = neededLibs(nativeBindingPath());
    if (!info.torchCuda && info.buildSystem === 'cmake-js') {
      expect(info.cuda).toBe(false);
      expect(info.variant).toBe('cpu');
      expect(needed.filter((n) => /cudart|libcuda\./.test(n))).toEqual([]);
    } else if (info.torchCuda) {
      expect(info.variant).toMatch(/^cuda\d+$/);
    }
    expect(needed.some((n) => /^libtorch/.test(n))).toBe(true);
  });

  it.skipIf(!NVCC)('the kernel library compiles with SCIRE_WITH_CUDA=ON next to a CPU LibTorch (needs nvcc)', async () => {
    const cmakeJs = path.join(ROOT, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
    const args = [cmakeJs, 'build', '--out', OUT, '--target', 'scire_kernels', '--CDSCIRE_WITH_CUDA=ON'];
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, args, { cwd: ROOT, maxBuffer: 64 << 20, timeout: 900_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, out: `${stdout}${stderr}` }),
      ),
    );
    expect(r.code, r.out.slice(-4000)).toBe(0);
    const lib = path.join(OUT, 'libscire_kernels.a');
    expect(fs.existsSync(lib)).toBe(true);
    const cuobjdump = path.join(path.dirname(NVCC!), 'cuobjdump');
    if (fs.existsSync(cuobjdump)) {
      const elfs = execFileSync(cuobjdump, ['--list-elf', lib], { encoding: 'utf8' });
      expect(elfs).toMatch(/sm_80/);
      expect(elfs).toMatch(/sm_90/);
    }
    const symbols = execFileSync('nm', ['-C', '--defined-only', lib], { encoding: 'utf8' });
    expect(symbols).toContain('scire_cuda_probe');
  }, 900_000);
});
