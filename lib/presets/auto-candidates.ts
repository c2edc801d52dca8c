/**
 * The configurations `preset: 'auto'` chooses from (benchmarks/auto-preset.ts measures every one
 * of them and writes the winners to lib/presets/auto-table.json). Each spends exactly `nfe`
 * network evaluations: the UniPC final corrector costs one, so it runs nfe - 1 steps.
 */
import type { CompileOptions, SkipType } from '../options';

/** The solver fields a preset sets (everything else stays the caller's). */
export type PresetConfig = Pick<
  CompileOptions,
  'solver' | 'algorithm' | 'method' | 'order' | 'skip' | 'rde' | 'corrector' | 'variant' | 'finalCorrector' | 'lowerOrderFinal'
>;

export interface AutoCandidate {
  name: string;
  config: PresetConfig;
  /** steps = nfe + stepsOffset (-1 for the UniPC final corrector). */
  stepsOffset: number;
  /** Whether every evaluation is a data prediction (needed with thresholding). */
  dataPrediction: boolean;
}

const SKIPS: SkipType[] = ['logsnr', 'time_uniform', 'time_quadratic', 'nsr', 'karras'];

export function autoCandidates(): AutoCandidate[] {
  const out: AutoCandidate[] = [];
  for (const order of [2, 3] as const) {
    for (const skip of SKIPS) {
      out.push({ name: `DPM-Solver++ ${order}M (${skip})`, config: { solver: 'dpmpp', method: 'multistep', order, skip }, stepsOffset: 0, dataPrediction: true });
    }
  }
  for (const variant of ['bh1', 'bh2'] as const) {
    for (const order of [2, 3] as const) {
      for (const skip of SKIPS) {
        for (const finalCorrector of [false, true]) {
          out.push({
            name: `UniPC ${variant} ${order}M (${skip})${finalCorrector ? ' + final corrector' : ''}`,
            config: { solver: 'unipc', variant, order, skip, finalCorrector },
            stepsOffset: finalCorrector ? -1 : 0,
            dataPrediction: true,
          });
        }
      }
    }
  }
  for (const algorithm of ['v1', 'v2'] as const) {
    for (const order of [2, 3] as const) {
      for (const rde of ['faithful', 'consistent'] as const) {
        // Not the SciRE corrector: best of all on the mixture at 9-20 NFE, but on the Fashion-MNIST
        // UNet its v1 corrections over the first huge NSR steps amplify the network's error at
        // high noise (1.3-3.4x the best reference's error at 12-20 NFE, benchmarks/results/
        // accuracy-fmnist-issue14-seed{0,1}.md), so the default does not pick it.
        for (const corrector of ['none'] as const) {
          for (const skip of ['nsr', 'logsnr', 'time_quadratic', 'karras'] as SkipType[]) {
            out.push({
              name: `SciRE ${algorithm} ${order}M ${rde} (${skip})`,
              config: { solver: 'scire', algorithm, method: 'multistep', order, rde, corrector, skip },
              stepsOffset: 0,
              dataPrediction: algorithm === 'v2',
            });
          }
        }
      }
    }
  }
  return out;
}
