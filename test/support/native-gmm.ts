/**
 * Shared by the native model tests: the reference GMM models (TorchScript file + JSON
 * parameters) and the comparison of a native forward with the float64 formula.
 */
import * as fs from 'fs';
import * as path from 'path';
import { GaussianMixtureNoiseModel, type GmmParams } from '../../lib/testing/gmm';

export const FIXTURE_MODELS = path.join(__dirname, '..', 'fixtures', 'models');

export interface GmmFixture {
  name: string;
  pt: string;
  /** Shape of one batch element ([16] or [1, 4, 4]). */
  elementShape: number[];
  formula: GaussianMixtureNoiseModel;
}

export function gmmFixture(name: string, elementShape: number[]): GmmFixture {
  const params = JSON.parse(fs.readFileSync(path.join(FIXTURE_MODELS, `${name}.json`), 'utf8')) as GmmParams;
  return { name, pt: path.join(FIXTURE_MODELS, `${name}.pt`), elementShape, formula: new GaussianMixtureNoiseModel(params) };
}

export const GMM_FIXTURES: GmmFixture[] = [
  gmmFixture('gmm_D16_linear', [16]),
  gmmFixture('gmm_D16_discrete', [16]),
  gmmFixture('gmm_img1x4x4_discrete', [1, 4, 4]),
];

/** max_i |got_i - want_i| / max_i |want_i|: the error relative to the output's scale. */
/** Relative RMS difference: sqrt(sum (got - want)^2 / sum want^2). */
export function relativeRms(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

export function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return num / den;
}
