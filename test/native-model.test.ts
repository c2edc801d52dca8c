/**
 * The native model handle (scire.node built by `npm test`'s bootstrap with cmake-js):
 * TorchScript loading, forward on host data against the Gaussian-mixture formula, and every
 * error path (each must reject with a clear JS error, never abort the process).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../lib/model';
import { nativeBinding } from '../lib/native';
import { testingBinding } from './support/testing-addon';
import type { NativeModel } from '../lib/native-types';
import { randn } from '../lib/randn';
import { toBFloat16 } from '../lib/testing/rounding';
import { FIXTURE_MODELS, GMM_FIXTURES, relativeError } from './support/native-gmm';

/** Relative error allowed between the float32 native forward and the float64 formula. */
const FLOAT32_REL_TOL = 1e-5;
/** Model input times checked (discrete: t_input in [0, 999]; linear: 1000 (t - 1/N)). */
const TIMES = [999, 700, 400, 100, 20, 1];
const BATCH = 8;

const fixture = (name: string) => path.join(FIXTURE_MODELS, name);

/** Expects `promise` to reject with exactly this error class and message. */
async function expectRejection(promise: Promise<unknown>, cls: ErrorConstructor, message: string | RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  expect((err as Error).name).toBe(cls.name);
  if (typeof message === 'string') expect((err as Error).message).toBe(message);
  else expect((err as Error).message).toMatch(message);
}
const linearGmm = GMM_FIXTURES[0];
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scire-native-model-'));
  nativeBinding(); // loads LibTorch: ~1 s on an idle machine, much longer on a busy one
}, 120_000);
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('buildInfo / cudaProbe', () => {
  it('describes the build', () => {
    const info = nativeBinding().buildInfo();
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    expect(info.version).toBe(pkg.version);
    expect(info.torchVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(['cmake-js', 'node-gyp']).toContain(info.buildSystem);
    expect(typeof info.cuda).toBe('boolean');
    expect(info.cudaDeviceCount).toBeGreaterThanOrEqual(0);
    expect(info.testing).toBe(false);
  });

  it('ships no test or benchmark entry; the testing addon has them all (native/addon.cc table)', async () => {
    const shipped = nativeBinding() as unknown as Record<string, unknown>;
    const testing = testingBinding() as unknown as Record<string, unknown>;
    const exportsOf = (b: Record<string, unknown>) => Object.keys(b).sort();
    expect(exportsOf(shipped)).toEqual(['Model', 'buildInfo', 'createAbortHandle', 'cudaProbe', 'deviceMemory', 'loadModel']);
    expect(exportsOf(testing)).toEqual([
      'Model', 'batchBucket', 'benchLincomb', 'benchMaskedLincomb', 'buildInfo', 'createAbortHandle', 'cudaGraphCacheState', 'cudaProbe',
      'deviceMemory', 'graphCachePolicyProbe', 'lincomb', 'loadModel', 'maskedLincomb',
    ]);
    const methods = (b: Record<string, unknown>) =>
      Object.getOwnPropertyNames((b.Model as { prototype: object }).prototype).filter((k) => k !== 'constructor').sort();
    expect(methods(shipped)).toEqual(['clearCudaGraphs', 'dispose', 'disposed', 'execute', 'forward', 'info']);
    expect(methods(testing)).toEqual(
      ['benchForward', 'clearCudaGraphs', 'dispose', 'disposed', 'execute', 'forward', 'info', 'runPlanOps', 'torchOpsStepper'],
    );
    expect(testingBinding().buildInfo().testing).toBe(true);
  });

  it('reports the CUDA kernels: compiled for sm_80/sm_90 and either running on GPU 0 or a clear reason', () => {
    const binding = nativeBinding();
    const info = binding.buildInfo();
    const probe = binding.cudaProbe();
    expect(probe.compiled).toBe(info.cuda);
    if (!info.cuda) {
      expect(probe.kernelOk).toBe(false);
      return;
    }
    expect(info.cudaArchitectures.split(',')).toEqual(expect.arrayContaining(['80-real', '90-real']));
    expect(probe.runtimeVersion).toBeGreaterThan(0);
    if (probe.deviceCount === 0) {
      expect(probe.kernelOk).toBe(false);
      expect(probe.error).toMatch(/\S/);
    } else {
      expect(probe).toMatchObject({ kernelOk: true, error: '' });
    }
  });
});

describe('loadModel + forward on the Gaussian-mixture models', () => {
  for (const gmm of GMM_FIXTURES) {
    it(`${gmm.name}: forward equals the formula of its JSON parameters (float32, rel. error < ${FLOAT32_REL_TOL})`, async () => {
      const model = await loadModel(gmm.pt);
      expect(model.info).toMatchObject({ path: gmm.pt, device: 'cpu', dtype: 'float32', numInputs: 2, parameterCount: 0 });
      const shape = [BATCH, ...gmm.elementShape];
      let seed = 11;
      for (const t of TIMES) {
        const x = randn(shape, seed++);
        const y = await model.forward(x, shape, t);
        expect(y).toBeInstanceOf(Float32Array);
        expect(y.length).toBe(x.length);
        const want = gmm.formula.noise(x, shape, t);
        expect(relativeError(y, want), `t=${t}`).toBeLessThan(FLOAT32_REL_TOL);
      }
      model.dispose();
    });
  }

  it('computes in the requested dtype (bfloat16: exactly the bfloat16-rounded affine map)', async () => {
    // affine_model: forward(x, t) = scale * x + t with scale = 2 (a parameter, cast to the dtype);
    // in bfloat16 every operand and the sum are rounded to bfloat16 (round to nearest even).
    const model = await loadModel(fixture('affine_model.pt'), { dtype: 'bfloat16' });
    expect(model.info.dtype).toBe('bfloat16');
    const shape = [4, 8];
    const x = randn(shape, 5);
    const t = 0.3;
    const y = await model.forward(x, shape, t);
    const want = Array.from(x, (v) => toBFloat16(2 * toBFloat16(v) + toBFloat16(t)));
    expect(Array.from(y)).toEqual(want);
    // and not what float32 would give
    const f32 = await (await loadModel(fixture('affine_model.pt'))).forward(x, shape, t);
    expect(Array.from(f32)).not.toEqual(want);
  });

  it('serves concurrent forwards on one model, each with its own result', async () => {
    const model = await loadModel(linearGmm.pt);
    const shape = [3, 16];
    const inputs = [0, 1, 2, 3, 4, 5].map((i) => ({ x: randn(shape, 100 + i), t: 100 * i + 50 }));
    const outs = await Promise.all(inputs.map(({ x, t }) => model.forward(x, shape, t)));
    outs.forEach((y, i) => {
      expect(relativeError(y, linearGmm.formula.noise(inputs[i].x, shape, inputs[i].t))).toBeLessThan(FLOAT32_REL_TOL);
    });
  });

  it('reports parameterCount and the forward arity from the TorchScript schema', async () => {
    const affine = await loadModel(fixture('affine_model.pt'));
    expect(affine.info).toMatchObject({ numInputs: 2, parameterCount: 1 + 12 });
    const y = await affine.forward(new Float32Array([1, 2, 3, 4]), [2, 2], 0.5);
    expect(Array.from(y)).toEqual([2.5, 4.5, 6.5, 8.5]);
    const cond = await loadModel(fixture('cond_model.pt'));
    expect(cond.info.numInputs).toBe(3);
  });

  it('dispose() releases the module; later calls reject, info stays readable', async () => {
    const model = await loadModel(linearGmm.pt);
    expect(model.disposed).toBe(false);
    model.dispose();
    expect(model.disposed).toBe(true);
    expect(model.info.dtype).toBe('float32');
    await expect(model.forward(new Float32Array(16), [1, 16], 1)).rejects.toThrow(/forward: the model has been disposed/);
  });
});

describe('loadModel errors (each a clear JS error; the process keeps running)', () => {
  it('missing file', async () => {
    const missing = path.join(tmp, 'no-such-model.pt');
    const err = (await loadModel(missing).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { code?: string };
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toBe(`loadModel: cannot open '${missing}': no such file or not readable`);
    expect(err.code).toBe('ENOENT');
    // the rejection carries the caller's stack
    expect(err.stack).toContain('native-model.test.ts');
  });

  it('a file of random bytes', async () => {
    const file = path.join(tmp, 'random.pt');
    const bytes = Buffer.alloc(4096);
    let s = 12345;
    for (let i = 0; i < bytes.length; i++) bytes[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    fs.writeFileSync(file, bytes);
    await expect(loadModel(file)).rejects.toThrow(/^loadModel: '.*random\.pt' is not a TorchScript archive \(the file is not a zip archive\)/);
  });

  it('a JSON file', async () => {
    await expect(loadModel(fixture('gmm_D16_linear.json'))).rejects.toThrow(/is not a TorchScript archive \(the file looks like JSON text\); save the model with torch\.jit\.save/);
  });

  it('a directory, an empty file', async () => {
    await expect(loadModel(tmp)).rejects.toThrow(/is not a TorchScript archive \(the file is empty or a directory\)/);
    const empty = path.join(tmp, 'empty.pt');
    fs.writeFileSync(empty, '');
    await expect(loadModel(empty)).rejects.toThrow(/is not a TorchScript archive \(the file is empty or a directory\)/);
  });

  it('a truncated TorchScript archive', async () => {
    const file = path.join(tmp, 'truncated.pt');
    fs.writeFileSync(file, fs.readFileSync(linearGmm.pt).subarray(0, 3000));
    await expect(loadModel(file)).rejects.toThrow(/^loadModel: could not load '.*truncated\.pt' as a TorchScript module: /);
  });

  it('forward takes the wrong number of inputs', async () => {
    await expect(loadModel(fixture('bad_one_input.pt'))).rejects.toThrow(
      /^loadModel: forward\(x: Tensor\) of '.*bad_one_input\.pt' takes 1 input\(s\) \(1 required\); a diffusion model's forward must take \(x, t\) or \(x, t, cond\)$/,
    );
    await expect(loadModel(fixture('bad_four_inputs.pt'))).rejects.toThrow(
      /^loadModel: forward\(x: Tensor, t: Tensor, cond: Tensor, extra: Tensor\) of .* takes 4 input\(s\) \(4 required\)/,
    );
  });

  it("device 'cuda' on a build or machine without CUDA", async () => {
    const info = nativeBinding().buildInfo();
    if (info.cudaDeviceCount > 0) {
      const model = await loadModel(linearGmm.pt, { device: 'cuda' });
      expect(model.info.device).toMatch(/^cuda/);
      return;
    }
    await expect(loadModel(linearGmm.pt, { device: 'cuda' })).rejects.toThrow(/^loadModel: device 'cuda' is not available: /);
    await expect(loadModel(linearGmm.pt, { device: 'cuda:1' })).rejects.toThrow(/^loadModel: device 'cuda:1' is not available: /);
  });

  it('an unknown dtype or device (JS check before native work, and the native check itself)', async () => {
    await expectRejection(
      loadModel(linearGmm.pt, { dtype: 'float64' as never }),
      TypeError,
      "Expected one of 'float32', 'float16', 'bfloat16' for dtype but received 'float64' (string)",
    );
    await expectRejection(loadModel(linearGmm.pt, { device: 'gpu' }), TypeError, "Expected 'cpu', 'cuda' or 'cuda:N' for device but received 'gpu' (string)");
    await expectRejection(loadModel(linearGmm.pt, { devices: 'cpu' } as never), TypeError, /unknown option 'devices'/);
    await expectRejection(loadModel(42 as never), TypeError, /for path but received 42 \(number\)/);
    // the addon checks again (for callers that bypass lib/model.ts)
    const native = nativeBinding();
    await expectRejection(
      native.loadModel(linearGmm.pt, { device: 'cpu', dtype: 'float64' as never }),
      RangeError,
      "loadModel: dtype must be 'float32', 'float16' or 'bfloat16' (got 'float64')",
    );
    await expectRejection(
      native.loadModel(linearGmm.pt, { device: 'cuda:x', dtype: 'float32' }),
      RangeError,
      "loadModel: device must be 'cpu', 'cuda' or 'cuda:N' (got 'cuda:x')",
    );
    await expectRejection(native.loadModel(7 as never, { device: 'cpu', dtype: 'float32' }), TypeError, 'loadModel: path must be a string');
  });

  it('a Model cannot be constructed from JS', () => {
    const Model = (nativeBinding() as unknown as { Model: new (...a: unknown[]) => unknown }).Model;
    expect(() => new Model({})).toThrow(new TypeError('Model cannot be constructed directly: use loadModel(path, { device, dtype })'));
  });
});

describe('forward errors', () => {
  let model: NativeModel;
  beforeAll(async () => {
    model = await loadModel(linearGmm.pt);
  });

  it('output shape differs from the input shape', async () => {
    const bad = await loadModel(fixture('bad_output_shape.pt'));
    await expect(bad.forward(new Float32Array(3 * 16), [3, 16], 10)).rejects.toThrow(
      "forward: the model's output shape [3, 1] differs from its input shape [3, 16]; a diffusion model must return a tensor shaped like x",
    );
  });

  it('output is not a tensor', async () => {
    const bad = await loadModel(fixture('bad_returns_tuple.pt'));
    await expect(bad.forward(new Float32Array(4), [2, 2], 1)).rejects.toThrow(/forward: the model's forward returned Tuple, expected a Tensor/);
  });

  it('a model that needs cond', async () => {
    const cond = await loadModel(fixture('cond_model.pt'));
    await expect(cond.forward(new Float32Array(4), [2, 2], 1)).rejects.toThrow(/forward: the model's forward needs 3 inputs \(x, t, cond\)/);
  });

  it('bad arguments reject, naming the field', async () => {
    await expectRejection(model.forward(new Float64Array(16) as never, [1, 16], 1), TypeError, 'forward: x must be a Float32Array');
    await expectRejection(model.forward(new Float32Array(33), [2, 16], 1), RangeError, 'forward: shape has 32 elements ([2, 16]) but x.length is 33');
    await expectRejection(model.forward(new Float32Array(16), [16, 0.5], 1), TypeError, 'forward: shape[1] must be a positive integer');
    await expectRejection(model.forward(new Float32Array(16), 'x' as never, 1), TypeError, 'forward: shape must be an array of positive integers');
    await expectRejection(model.forward(new Float32Array(16), [1, 16], NaN), TypeError, 'forward: t must be a finite number (the model input time)');
  });

  it('a TorchScript runtime error inside forward rejects, and the model still works afterwards', async () => {
    // The message starts with the cause (the last line of the TorchScript error) and says
    // where; the interpreter's whole text is kept in error.details.
    const err = (await model.forward(new Float32Array(2 * 5), [2, 5], 10).catch((e: unknown) => e)) as Error & { code: string; details: string };
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('ERR_SCIRE_MODEL');
    expect(err.message).toMatch(/^The size of tensor a \(5\) must match the size of tensor b \(16\) at non-singleton dimension 2 \(in the model's forward, t = 10; op .*; inputs x float32 \[2, 5\] on cpu, t float32 \[2\]\)$/);
    expect(err.details).toMatch(/^The following operation failed in the TorchScript interpreter\./);
    const shape = [2, 16];
    const x = randn(shape, 3);
    const y = await model.forward(x, shape, 10);
    expect(relativeError(y, linearGmm.formula.noise(x, shape, 10))).toBeLessThan(FLOAT32_REL_TOL);
  });
});
