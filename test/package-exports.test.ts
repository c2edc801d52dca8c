/**
 * The package entry points: `require('scire-solver')` and `import('scire-solver')` both reach
 * the compiled dist/index.js (built by the bootstrap) and expose loadModel, which loads a
 * model through the native addon.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..');
const MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'gmm_D16_linear.pt');
/** A fresh Node process loads LibTorch (~1 s idle, much longer on a busy machine). */
const CHILD_TIMEOUT_MS = 120_000;

function runNode(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' }).trim();
}

describe('package entry points (dist/)', () => {
  it('require() gives loadModel, which loads a TorchScript model', () => {
    const out = runNode([
      '-e',
      `const s = require('scire-solver');
       s.loadModel(${JSON.stringify(MODEL)}).then((m) => console.log(typeof s.compilePlan, m.info.numInputs, m.info.device));`,
    ]);
    expect(out).toBe('function 2 cpu');
  }, CHILD_TIMEOUT_MS);

  it('import() gives the same named exports', () => {
    const out = runNode([
      '--input-type=module',
      '-e',
      `import { loadModel, nativeBinding } from 'scire-solver';
       const m = await loadModel(${JSON.stringify(MODEL)});
       console.log(typeof loadModel, m.info.dtype, nativeBinding().buildInfo().version);`,
    ]);
    const pkg = require(path.join(ROOT, 'package.json')) as { version: string };
    expect(out).toBe(`function float32 ${pkg.version}`);
  }, CHILD_TIMEOUT_MS);
});
