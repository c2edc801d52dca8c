/**
 * models/train_fmnist.py (the bundled models' training script) on a tiny setting, with
 * /usr/bin/python3 + torch and the Fashion-MNIST data set (both in scripts/bootstrap.js's
 * test packages):
 *
 * - `--resume` continues a conditional run exactly: 6 steps straight and 3 steps + 3 resumed
 *   give the same weights, EMA, Adam moments, data position and losses (difference 0.0 asserted:
 *   one thread, the same CPU ops in the same order);
 * - `--init-from models/fmnist_unet.pt` starts the conditional network at exactly the
 *   unconditional model (zero class embedding), for a class row and for the null row;
 * - `--init-from models/fmnist_cond_unet.pt` starts an unconditional network at the conditional
 *   model's null class (its embedding folded into the time MLP's last bias);
 * - a conditional export takes forward(x, t, cond [B, 11]), its card has the conditioning
 *   the CLI reads, and the engine samples it with classifier-free guidance.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classGuidance } from '../lib/class-cond';
import { loadModel } from '../lib/model';
import { readModelCard } from '../lib/model-card';
import { Sampler } from '../lib/sampler';

const ROOT = path.join(__dirname, '..');
const PY = '/usr/bin/python3';
const SCRIPT = path.join(ROOT, 'models', 'train_fmnist.py');
const TINY = ['--conditional', '--base', '8', '--batch', '4', '--lr', '1e-3', '--warmup', '2', '--seed', '3', '--threads', '1'];

function python(args: string[]): string {
  const run = spawnSync(PY, args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (run.status !== 0) throw new Error(`${PY} ${args.join(' ')} failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
  return run.stdout;
}

/**
 * Builds a network (conditional or not) started by `T.init_from(m, source)`, loads `source` as
 * `src`, and runs `body` (Python, under torch.no_grad, with x and t defined); the output lines.
 */
function initFromCheck(conditional: boolean, source: string, body: string): string[] {
  const check = `
import argparse, json, sys, torch
sys.path.insert(0, 'models')
import train_fmnist as T
m = T.build_model(argparse.Namespace(conditional=${conditional ? 'True' : 'False'}, base=32, mults='1,2,2', blocks=1))
T.init_from(m, '${source}')
src = torch.jit.load('${source}')
x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)); t = torch.tensor([0., 10.5, 500., 999.])
with torch.no_grad():${body}`;
  return python(['-c', check]).trim().split('\n');
}

describe('models/train_fmnist.py', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scire-train-'));

  it('--resume continues a conditional run exactly (6 steps = 3 + 3 resumed)', () => {
    const [a, b] = [path.join(tmp, 'a'), path.join(tmp, 'b')];
    python([SCRIPT, ...TINY, '--no-export', '--max-steps', '6', '--ckpt-dir', a]);
    python([SCRIPT, ...TINY, '--no-export', '--max-steps', '3', '--ckpt-dir', b]);
    const resumed = python([SCRIPT, ...TINY, '--no-export', '--max-steps', '6', '--ckpt-dir', b, '--resume', path.join(b, 'last.pt')]);
    expect(resumed).toMatch(/resumed from .*last\.pt at step 3/);
    const compare = `
import json, sys, torch
a, b = torch.load(sys.argv[1]), torch.load(sys.argv[2])
d = lambda x, y: max(float((x[k] - y[k]).abs().max()) for k in x)
print(json.dumps({'steps': [a['step'], b['step']], 'pos': [a['pos'], b['pos']],
  'model': d(a['model'], b['model']), 'ema': d(a['ema'], b['ema']),
  'adam': max(d(a['opt']['state'][i], b['opt']['state'][i]) for i in a['opt']['state']),
  'losses': [a['recent_losses'], b['recent_losses']]}))`;
    const r = JSON.parse(python(['-c', compare, path.join(a, 'last.pt'), path.join(b, 'last.pt')])) as {
      steps: number[]; pos: number[]; model: number; ema: number; adam: number; losses: number[][];
    };
    expect(r.steps).toEqual([6, 6]);
    expect(r.pos[0]).toBe(r.pos[1]);
    expect([r.model, r.ema, r.adam]).toEqual([0, 0, 0]);
    expect(r.losses[0]).toHaveLength(6);
    expect(r.losses[1]).toEqual(r.losses[0]);
  }, 240_000);

  it('--init-from models/fmnist_unet.pt starts the conditional model at the unconditional one', () => {
    const lines = initFromCheck(true, 'models/fmnist_unet.pt', `
    print(json.dumps([float((m(x, t, T.one_hot_cond(torch.full((4,), c))) - src(x, t)).abs().max()) for c in (7, 10)]))`);
    expect(lines[0]).toMatch(/^initialised from models\/fmnist_unet\.pt \(150 tensors; new: \['net\.label_embed\.weight'\]\)$/);
    expect(JSON.parse(lines[1])).toEqual([0, 0]);
  }, 120_000);

  it('--init-from models/fmnist_cond_unet.pt starts an unconditional model at the null class', () => {
    const lines = initFromCheck(false, 'models/fmnist_cond_unet.pt', `
    null = src(x, t, T.one_hot_cond(torch.full((4,), T.NULL_CLASS)))
    print(json.dumps([float((m(x, t) - null).abs().max()), float(null.abs().max()),
                      float((m(x, t) - src(x, t, T.one_hot_cond(torch.full((4,), 7)))).abs().max())]))`);
    expect(lines[0]).toMatch(/conditional source, starting from its null class/);
    expect(lines[1]).toMatch(/^initialised from models\/fmnist_cond_unet\.pt \(151 tensors; new: none\)$/);
    const [diffNull, scale, diffClass] = JSON.parse(lines[2]) as number[];
    // The null embedding is folded into a bias: the same sum in another order (float32 rounding).
    expect(diffNull / scale).toBeLessThan(1e-5);
    // ... and it is the null class, not any class: class 7 differs by far more than rounding.
    expect(diffClass / scale).toBeGreaterThan(1e-2);
  }, 120_000);

  it('exports forward(x, t, cond) with a card the CLI reads, and the engine samples it with guidance', async () => {
    const dir = path.join(tmp, 'c');
    python([SCRIPT, ...TINY, '--max-steps', '2', '--ckpt-dir', dir, '--out-dir', dir]);
    const modelPath = path.join(dir, 'fmnist_cond_unet.pt');
    const card = readModelCard(modelPath);
    expect(card.conditioning?.classes).toHaveLength(10);
    expect(card.conditioning?.classes[7]).toBe('sneaker');
    expect([card.conditioning?.size, card.conditioning?.nullIndex]).toEqual([11, 10]);
    const model = await loadModel(modelPath);
    const sampler = new Sampler({ model, schedule: card.schedule, steps: 2 });
    const out = await sampler.sample({ shape: [2, 1, 28, 28], seed: 0, ...classGuidance(card, ['sneaker', 'bag'], 3) });
    expect(out.data.every(Number.isFinite)).toBe(true);
    // A cond of the wrong width is refused by the network with the expected shape in the message.
    await expect(
      sampler.sample({ shape: [1, 1, 28, 28], seed: 0, cond: new Float32Array(10) }),
    ).rejects.toThrow(/cond must be float32 \[B, 11\]/);
    model.dispose();
  }, 240_000);
});
