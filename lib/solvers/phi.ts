/**
 * The phi_1(m) coefficients of SciRE-Solver's recursive derivative estimation (RDE), and the
 * way the official implementation picks one per step.
 *
 * phi_1(m) = sum_{j=1}^{m} (-1)^{j-1} / j!  -> 1 - 1/e.  The official series_phi(1, n) returns
 * n numbers, element i being phi_1(i + 3):
 *   phi[0] = 1 - 1/2 + 1/6 = 2/3,  phi[1] = 0.625,  phi[2] = 0.63333,  phi[3] = 0.631944, ...
 */

/** phi[i] = phi_1(i + 3) = sum_{j=1}^{i+3} (-1)^{j-1}/j!,  i = 0..n-1 (the official series_phi(1, n)). */
export function seriesPhi(n: number): number[] {
  const out: number[] = [];
  let partial = 0;
  let factorial = 1;
  for (let j = 1; j <= n + 2; j++) {
    factorial *= j;
    partial += (j % 2 === 1 ? 1 : -1) / factorial;
    if (j >= 3) out.push(partial);
  }
  return out;
}

/** arr[i] with Python's negative-index wrap (arr[-1] is the last element); throws if out of range. */
export function pyIndex(arr: readonly number[], i: number): number {
  const j = i < 0 ? arr.length + i : i;
  if (!(j >= 0 && j < arr.length)) {
    throw new Error(`internal: phi index ${i} out of range for ${arr.length} coefficients`);
  }
  return arr[j];
}

/**
 * phi used by the official multistep loop (phi = series_phi(1, steps + 1)):
 *   warm-up step j (1 <= j < order):  phi[2j - 1]
 *   main loop step j (order <= j <= steps):
 *     j <  steps//2:  phi[2(j - order) + 1]
 *     j == steps//2:  phi[-1]
 *     j >  steps//2:  phi[2(steps - j)]
 */
export function multistepPhi(phi: readonly number[], step: number, steps: number, order: number): number {
  if (step < order) return pyIndex(phi, 2 * step - 1);
  const half = Math.floor(steps / 2);
  if (step < half) return pyIndex(phi, 2 * (step - order) + 1);
  if (step === half) return pyIndex(phi, -1);
  return pyIndex(phi, 2 * (steps - step));
}

/**
 * phi used by the official singlestep loop (phi = series_phi(1, K), K = steps // order, also
 * for singlestep_agile whose number of outer steps can be K + 1):
 *   j <  K//2:  phi[2j]
 *   j == K//2:  phi[-1]
 *   j >  K//2:  phi[2(K - j) - 1]   (for j == K this is phi[-1], Python's wrap)
 */
export function singlestepPhi(phi: readonly number[], step: number, K: number): number {
  const half = Math.floor(K / 2);
  if (step < half) return pyIndex(phi, 2 * step);
  if (step === half) return pyIndex(phi, -1);
  return pyIndex(phi, 2 * (K - step) - 1);
}
