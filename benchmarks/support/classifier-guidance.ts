/**
 * Classifier guidance on the bundled Fashion-MNIST UNet, judged by the bundled FD classifier:
 * for each scale and class, `perClass` samples guided toward that class (Sampler with the
 * noise-aware classifier models/fmnist_timeclf.pt), labelled by models/fmnist_classifier.pt
 * (benchmarks/label_samples.py, /usr/bin/python3 with torch). Every scale uses the same
 * starting noise (seed = seed0 + class), so rows differ by the guidance only.
 * Used by benchmarks/classifier-guidance.ts and test/classifier-guidance-fmnist.test.ts.
 */
import { execFileSync } from 'child_process';
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { encodeNpy } from '../../lib/image-io';
import { loadModel } from '../../lib/model';
import { readModelCard } from '../../lib/model-card';
import type { DeviceName } from '../../lib/native-types';
import { Sampler } from '../../lib/sampler';

export interface GuidanceRow {
  scale: number;
  /** Fraction of the samples of class k labelled k by the FD classifier. */
  perClass: number[];
  /** Over all classes. */
  accuracy: number;
  /** Wall time of the sampling at this scale (all classes), ms. */
  sampleMs: number;
  /** The samples (.npy, [classes * perClass, 1, 28, 28], class k in rows k*perClass ..). */
  file: string;
}

export interface GuidanceRun {
  root: string;
  scales: number[];
  perClass: number;
  steps: number;
  seed0: number;
  workDir: string;
  device?: DeviceName;
  python?: string;
  classes?: number;
  /** Solver options for the Sampler (default: the model card's schedule, preset 'auto'). */
  solver?: Record<string, unknown>;
}

export async function guidedAccuracy(run: GuidanceRun): Promise<GuidanceRow[]> {
  const classes = run.classes ?? 10;
  const modelPath = join(run.root, 'models', 'fmnist_unet.pt');
  const card = readModelCard(modelPath);
  const model = await loadModel(modelPath, { device: run.device ?? 'cpu' });
  const clf = await loadModel(join(run.root, 'models', 'fmnist_timeclf.pt'), { device: run.device ?? 'cpu' });
  mkdirSync(run.workDir, { recursive: true });
  const shape = [run.perClass, ...(card.shape ?? [1, 28, 28])];
  const files: string[] = [];
  const times: number[] = [];
  try {
    for (const scale of run.scales) {
      const sampler = new Sampler({
        model,
        schedule: card.schedule,
        modelType: card.modelType,
        steps: run.steps,
        ...(run.solver ?? {}),
        ...(scale !== 0 ? { classifier: clf, classifierScale: scale } : {}),
      });
      const per = shape.slice(1).reduce((a, b) => a * b, 1);
      const all = new Float32Array(classes * run.perClass * per);
      const t0 = performance.now();
      for (let k = 0; k < classes; k++) {
        const out = await sampler.sample({ shape, seed: run.seed0 + k, ...(scale !== 0 ? { classLabels: k } : {}) });
        all.set(out.data, k * run.perClass * per);
      }
      times.push(performance.now() - t0);
      const file = join(run.workDir, `guided_scale${scale}.npy`);
      writeFileSync(file, encodeNpy(all, [classes * run.perClass, ...shape.slice(1)]));
      files.push(file);
    }
  } finally {
    model.dispose();
    clf.dispose();
  }
  const labels = JSON.parse(
    execFileSync(run.python ?? '/usr/bin/python3', [join(run.root, 'benchmarks', 'label_samples.py'), ...files], { encoding: 'utf8' }),
  ) as Record<string, number[]>;
  return run.scales.map((scale, i) => {
    const got = labels[files[i]];
    const perClass = Array.from({ length: classes }, (_, k) => {
      const slice = got.slice(k * run.perClass, (k + 1) * run.perClass);
      return slice.filter((l) => l === k).length / run.perClass;
    });
    return { scale, perClass, accuracy: perClass.reduce((a, b) => a + b, 0) / classes, sampleMs: times[i], file: files[i] };
  });
}
