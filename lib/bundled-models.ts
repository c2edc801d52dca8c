/**
 * The models that ship inside the package (models/*.pt with their .json cards), so an app
 * can sample without locating files itself:
 *
 *   import { bundledModels, loadModel, Sampler } from 'scire-solver';
 *   const { path, card } = bundledModels.fmnist;
 *   const sampler = new Sampler({ model: await loadModel(path), schedule: card.schedule, steps: 12 });
 *   await sampler.sample({ shape: [4, ...card.shape!], seed: 0 });
 *   // bundledModels.fmnistCond: class-conditional, with classGuidance(card, ['sneaker', ...], 3)
 */
import * as path from 'path';
import { readModelCard, type ModelCard } from './model-card';

/** A TorchScript model file in the package and its parsed card. */
export interface BundledModel {
  /** Absolute path of the .pt file. */
  readonly path: string;
  /** The card beside it (schedule, model type, sample shape, data range). */
  readonly card: ModelCard;
}

export interface BundledModels {
  /** Fashion-MNIST noise-prediction UNet, 28x28 grayscale, discrete linear schedule (models/README.md). */
  readonly fmnist: BundledModel;
  /**
   * Class-conditional Fashion-MNIST UNet for classifier-free guidance: forward(x, t, cond) with
   * cond one-hot over the 10 classes + the null class (card.conditioning; lib/class-cond.ts).
   */
  readonly fmnistCond: BundledModel;
}

const MODELS_DIR = path.resolve(__dirname, '..', 'models');

function bundled(file: string): BundledModel {
  const modelPath = path.join(MODELS_DIR, file);
  let card: ModelCard | undefined;
  return {
    path: modelPath,
    // Read on first use, so importing the package touches no file.
    get card(): ModelCard {
      card ??= readModelCard(modelPath);
      return card;
    },
  };
}

/** The bundled models (the card of each is read on first access). */
export const bundledModels: BundledModels = Object.freeze({
  fmnist: bundled('fmnist_unet.pt'),
  fmnistCond: bundled('fmnist_cond_unet.pt'),
});
