/**
 * The node-gyp build (CPU only) of the same sources: built into build-gyp/ by the bootstrap
 * (`npm test` runs it; this test runs it too, a no-op when up to date), loaded next to the
 * cmake-js build, and checked on the Gaussian-mixture model.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadNativeFrom } from '../lib/native';
import type { NativeBinding } from '../lib/native-types';
import { randn } from '../lib/randn';
import { GMM_FIXTURES, relativeError } from './support/native-gmm';

const ROOT = path.join(__dirname, '..');
const GYP_ADDON = path.join(ROOT, 'build-gyp', 'build', 'Release', 'scire.node');
/** Relative error allowed between the float32 native forward and the float64 formula. */
const FLOAT32_REL_TOL = 1e-5;

let gyp: NativeBinding;

/** Runs the bootstrap's node-gyp step without blocking this worker's event loop. */
function buildGypAddon(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'bootstrap.js'), '--gyp-only'], { cwd: ROOT, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bootstrap --gyp-only exited with ${code}`))));
  });
}

beforeAll(async () => {
  await buildGypAddon(); // a no-op when `npm test`'s bootstrap already built it
  expect(fs.existsSync(GYP_ADDON)).toBe(true);
  gyp = loadNativeFrom(GYP_ADDON);
}, 20 * 60 * 1000);

describe('node-gyp build (build-gyp/)', () => {
  it('is the CPU-only node-gyp flavour', () => {
    const info = gyp.buildInfo();
    expect(info).toMatchObject({ buildSystem: 'node-gyp', cuda: false, cudaDeviceCount: 0, testing: false });
    // the testing-only entries (native/testing/) are not in this build
    expect(Object.keys(gyp).sort()).toEqual(['Model', 'buildInfo', 'createAbortHandle', 'cudaProbe', 'deviceMemory', 'loadModel']);
    expect(info.torchVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  for (const gmm of GMM_FIXTURES) {
    it(`${gmm.name}: loads and runs forward equal to the formula (rel. error < ${FLOAT32_REL_TOL})`, async () => {
      const model = await gyp.loadModel(gmm.pt, { device: 'cpu', dtype: 'float32' });
      const shape = [4, ...gmm.elementShape];
      for (const t of [900, 250, 5]) {
        const x = randn(shape, t);
        const y = await model.forward(x, shape, t);
        expect(relativeError(y, gmm.formula.noise(x, shape, t)), `t=${t}`).toBeLessThan(FLOAT32_REL_TOL);
      }
    });
  }

  it("rejects device 'cuda' with a clear error", async () => {
    await expect(gyp.loadModel(GMM_FIXTURES[0].pt, { device: 'cuda', dtype: 'float32' })).rejects.toThrow(
      /^loadModel: device 'cuda' is not available: this addon is built against LibTorch .* without CUDA support/,
    );
  });
});
