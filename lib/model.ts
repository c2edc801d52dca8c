/**
 * loadModel: the public entry point to a TorchScript diffusion network.
 *
 *   const model = await loadModel('model.pt', { device: 'cpu', dtype: 'float32' });
 *   model.info            // { path, device, dtype, parameterCount, numInputs }
 *   await model.forward(x, shape, tInput)   // one evaluation on host data (tests, debugging)
 *   model.stats()         // the request queue shared by its Samplers (lib/serving)
 *
 * Options are checked here, before any native work, with the package's message shape; the
 * native side checks the file (exists, is a TorchScript archive, forward takes (x, t) or
 * (x, t, cond)) and the device (CUDA built in and present) off the JS thread. A rejection
 * carries the caller's stack, so the error points at the loadModel call.
 */
import * as path from 'path';
import { nativeBinding } from './native';
import type { DeviceName, ModelDType } from './native-types';
import { Model } from './serving/model';
import { resolveMaxQueue } from './serving/options';
import { expectKnownKeys, expectOneOf, invalidType, isPlainObject } from './validate';

export interface LoadModelOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: DeviceName;
  /** Precision of the network's parameters and input: 'float32' (default), 'float16', 'bfloat16'. */
  dtype?: ModelDType;
  /**
   * Most requests that may wait in the model's queue (shared by all its Samplers); one more
   * is rejected with ERR_SCIRE_QUEUE_FULL. Default Infinity.
   */
  maxQueue?: number;
}

export const MODEL_DTYPES: readonly ModelDType[] = ['float32', 'float16', 'bfloat16'];
const DEVICE_PATTERN = /^(cpu|cuda(:\d{1,3})?)$/;

/** Validated, defaulted options. */
export function resolveLoadModelOptions(options: unknown): { device: DeviceName; dtype: ModelDType; maxQueue: number } {
  if (options === undefined) return { device: 'cpu', dtype: 'float32', maxQueue: Infinity };
  if (!isPlainObject(options)) throw invalidType('loadModel options', 'an object { device, dtype, maxQueue }', options);
  expectKnownKeys('loadModel options', options, ['device', 'dtype', 'maxQueue']);
  const device = options.device ?? 'cpu';
  if (typeof device !== 'string' || !DEVICE_PATTERN.test(device)) {
    throw invalidType('device', "'cpu', 'cuda' or 'cuda:N'", device);
  }
  const dtype = expectOneOf('dtype', MODEL_DTYPES, options.dtype ?? 'float32');
  return { device, dtype, maxQueue: resolveMaxQueue(options.maxQueue) };
}

/** Loads a TorchScript model (a file written by torch.jit.save) on a worker thread. */
export async function loadModel(modelPath: string, options?: LoadModelOptions): Promise<Model> {
  const callSite = new Error('loadModel call site');
  Error.captureStackTrace(callSite, loadModel);
  if (typeof modelPath !== 'string' || modelPath.length === 0) {
    throw invalidType('path', 'a non-empty string (path of a TorchScript file)', modelPath);
  }
  const { device, dtype, maxQueue } = resolveLoadModelOptions(options);
  const binding = nativeBinding();
  try {
    return new Model(await binding.loadModel(path.resolve(modelPath), { device, dtype }), { maxQueue });
  } catch (e) {
    throw withCallerStack(e, callSite);
  }
}

/**
 * Gives an error that was created elsewhere (native side, request queue) the caller's frames.
 * The stack is formatted on first read, not here: formatting is not free (source maps in some
 * runners) and a rejection, an abort above all, should reach the caller at once.
 */
export function withCallerStack(error: unknown, callSite: Error): unknown {
  if (!(error instanceof Error)) return error;
  const settle = (value: unknown): void => {
    Object.defineProperty(error, 'stack', { value, writable: true, configurable: true, enumerable: false });
  };
  Object.defineProperty(error, 'stack', {
    configurable: true,
    enumerable: false,
    get(): string {
      const frames = (callSite.stack ?? '').split('\n').slice(1).join('\n');
      const value = `${error.name}: ${error.message}${frames ? `\n${frames}` : ''}`;
      settle(value);
      return value;
    },
    set: settle,
  });
  return error;
}
