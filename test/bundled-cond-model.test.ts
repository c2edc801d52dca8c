/**
 * The bundled class-conditional Fashion-MNIST model (models/fmnist_cond_unet.pt, models/README.md):
 * its card's conditioning, and classifier-free guidance on it through the Sampler.
 *
 * At guidance 0 the executor's raw output is uncond_out + 0 * (cond_out - uncond_out), i.e.
 * the null class alone, so two requested classes give the same samples bit for bit; at
 * guidance 3 they must differ (relative RMS difference > 0.2 is asserted; a class embedding
 * that were ignored would give 0). How often the classifier recognises the class is measured
 * in benchmarks/results/class-guidance.md, not here.
 */
import { describe, expect, it } from 'vitest';
import { bundledModels } from '../lib/bundled-models';
import { classGuidance } from '../lib/class-cond';
import { loadModel } from '../lib/model';
import { Sampler } from '../lib/sampler';
import { relativeRms } from './support/native-gmm';

const { path: MODEL, card } = bundledModels.fmnistCond;


describe('bundled class-conditional Fashion-MNIST model', () => {
  it('has a card with the 10 Fashion-MNIST classes and the null class 10', () => {
    expect(card.conditioning).toEqual({
      kind: 'one-hot',
      size: 11,
      nullIndex: 10,
      classes: ['t-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'],
    });
    expect(card.shape).toEqual([1, 28, 28]);
    expect(card.modelType).toBe('noise');
  });

  it('guidance 0 ignores the class (bit for bit), guidance 3 follows it', async () => {
    const model = await loadModel(MODEL);
    const sampler = new Sampler({ model, schedule: card.schedule, steps: 6 });
    const run = async (cls: string, g: number) =>
      (await sampler.sample({ shape: [2, 1, 28, 28], seed: 5, ...classGuidance(card, [cls, cls], g) })).data;
    const [t0, s0] = [await run('trouser', 0), await run('sneaker', 0)];
    expect(Buffer.from(t0.buffer).equals(Buffer.from(s0.buffer))).toBe(true);
    const [t3, s3] = [await run('trouser', 3), await run('sneaker', 3)];
    expect(t3.every(Number.isFinite) && s3.every(Number.isFinite)).toBe(true);
    const diff = relativeRms(t3, s3);
    console.log(`trouser vs sneaker at guidance 3, same noise: relative RMS difference ${diff.toFixed(3)}`);
    expect(diff).toBeGreaterThan(0.2);
    model.dispose();
  }, 120_000);
});
