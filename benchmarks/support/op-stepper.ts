/**
 * A Plan stepped from JS with plain LibTorch ops, one native call per op, through
 * model.torchOpsStepper (native/testing/gpu_bench.cc, in the testing addon scire_testing.node): the comparison point for the native executor
 * (model.execute), which runs the same plan's loop in C++ with fused kernels.
 */
import type { NativeModel } from '../../lib/native-types';
import type { Plan } from '../../lib/plan';

interface TorchOpsStepper {
  init(x: Float32Array, initScale: number): void;
  eval(t: number, src: number, inScale: number, dst: number, outX: number, outM: number): void;
  lincomb(dst: number, coefs: number[], regs: number[]): void;
  threshold(reg: number, ratio: number, maxVal: number): void;
  result(src: number, scale: number): Float32Array;
  dispose(): void;
}

type WithStepper = NativeModel & { torchOpsStepper?: (opts: { shape: number[]; numRegs: number }) => TorchOpsStepper };

/** The addon's model object behind a loadModel() Model (its `native`), or the model itself. */
function addonModel(model: NativeModel): WithStepper {
  return ((model as { native?: NativeModel }).native ?? model) as WithStepper;
}

export function opStepperAvailable(model: NativeModel): boolean {
  return typeof addonModel(model).torchOpsStepper === 'function';
}

/** Runs `plan` op by op from JS on `model`; returns x_0 (float32). */
export function stepPlanFromJs(model: NativeModel, plan: Plan, x: Float32Array, shape: number[]): Float32Array {
  const m = addonModel(model);
  if (typeof m.torchOpsStepper !== 'function') throw new Error('this scire.node has no model.torchOpsStepper (native/testing/gpu_bench.cc, in the testing addon scire_testing.node): rebuild the addon');
  const s = m.torchOpsStepper({ shape, numRegs: plan.numRegs });
  try {
    s.init(x, plan.initScale);
    for (const op of plan.ops) {
      if (op.op === 'eval') s.eval(op.t, op.src, op.inScale, op.dst, op.outX, op.outM);
      else if (op.op === 'lincomb') s.lincomb(op.dst, op.terms.map((t) => t[0]), op.terms.map((t) => t[1]));
      else s.threshold(op.reg, op.ratio, op.maxVal);
    }
    return s.result(plan.final.src, plan.final.scale);
  } finally {
    s.dispose();
  }
}
