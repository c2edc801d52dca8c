/**
 * On-disk cache of x_0 from one plan on one model and one x_T, for the CPU runs of the
 * Fashion-MNIST benchmarks (benchmarks/accuracy.ts --cache DIR, benchmarks/auto-preset.ts
 * --cache DIR). A UNet solve at batch 16 costs minutes of CPU; the preset's table changes only
 * the 'auto' row, and the fine solutions are shared by every run from the same noise.
 *
 * The key is a SHA-256 of everything the result depends on: the model file's bytes (its hash),
 * device and dtype, the sample shape and noise seed, and the plan's executable part (initScale,
 * ops, final, registers renumbered; not meta, so a preset plan that equals a grid plan is one entry). The CPU executor
 * is deterministic for a fixed plan and input, so a hit is the result the run would compute.
 */
import { createHash } from 'crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'fs';
import { join } from 'path';
import type { Plan } from '../../lib/plan';

/**
 * The executable part of a plan in value-numbered form: every write to a register makes a new
 * value (numbered in order), every read names the value the register holds then (x_T is value
 * 0). Two plans that do the same arithmetic with a different register allocation (UniPC 2M and
 * 3M at 4 steps, say) get the same text. Intermediates marks (x0) are dropped: executors ignore them.
 */
export function canonicalPlanText(plan: Plan): string {
  const current = new Map<number, number>([[0, 0]]);
  let next = 1;
  const read = (r: number): number => {
    const v = current.get(r);
    if (v === undefined) throw new Error(`plan reads register ${r} before writing it`);
    return v;
  };
  const write = (r: number): number => {
    current.set(r, next);
    return next++;
  };
  const ops = plan.ops.map((op) => {
    if (op.op === 'eval') {
      const src = read(op.src);
      return { op: 'eval', t: op.t, inScale: op.inScale, outX: op.outX, outM: op.outM, src, dst: write(op.dst) };
    }
    if (op.op === 'lincomb') {
      const terms = op.terms.map(([c, r]) => [c, read(r)]);
      return { op: 'lincomb', terms, dst: write(op.dst) };
    }
    const { reg, ...rest } = op;
    const src = read(reg);
    return { ...rest, src, dst: write(reg) };
  });
  return JSON.stringify({ initScale: plan.initScale, ops, final: { src: read(plan.final.src), scale: plan.final.scale } });
}

const modelHashes = new Map<string, string>();

function modelHash(path: string): string {
  let h = modelHashes.get(path);
  if (!h) {
    h = createHash('sha256').update(readFileSync(path)).digest('hex');
    modelHashes.set(path, h);
  }
  return h;
}

export interface SolveKey {
  modelPath: string;
  device: string;
  dtype: string;
  shape: number[];
  seed: number;
  plan: Plan;
}

export class SolveCache {
  hits = 0;
  misses = 0;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  key(k: SolveKey): string {
    const body = JSON.stringify({
      model: modelHash(k.modelPath),
      device: k.device,
      dtype: k.dtype,
      shape: k.shape,
      seed: k.seed,
      plan: canonicalPlanText(k.plan),
    });
    return createHash('sha256').update(body).digest('hex');
  }

  get(k: SolveKey): Float32Array | null {
    const file = join(this.dir, `${this.key(k)}.f32`);
    if (!existsSync(file)) {
      this.misses++;
      return null;
    }
    const buf = readFileSync(file);
    const n = k.shape.reduce((a, b) => a * b, 1);
    if (buf.byteLength !== n * 4) {
      this.misses++;
      return null; // truncated or foreign file: recompute (and overwrite)
    }
    this.hits++;
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  }

  put(k: SolveKey, x: Float32Array): void {
    const file = join(this.dir, `${this.key(k)}.f32`);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    renameSync(tmp, file); // atomic: a killed run never leaves a half-written entry
  }
}
