/**
 * The order list of a singlestep solve with `steps` NFE (DPM-Solver's "DPM-Solver-fast" splitting,
 * the official get_orders_and_timesteps_for_singlestep_solver), shared by DPM-Solver++ singlestep
 * and SciRE-Solver singlestep_agile:
 *   order 3: K = floor(steps/3) + 1 outer steps: steps % 3 == 0 -> [3,..,3, 2, 1],
 *            == 1 -> [3,..,3, 1],  == 2 -> [3,..,3, 2]
 *   order 2: steps even -> [2,..,2] (steps/2 of them); odd -> [2,..,2, 1]
 *   order 1: [1,..,1] (steps of them)
 * The orders always sum to `steps`.
 */
export function singlestepOrders(steps: number, order: number): number[] {
  if (order === 3) {
    const K = Math.floor(steps / 3) + 1;
    if (steps % 3 === 0) return [...Array<number>(K - 2).fill(3), 2, 1];
    if (steps % 3 === 1) return [...Array<number>(K - 1).fill(3), 1];
    return [...Array<number>(K - 1).fill(3), 2];
  }
  if (order === 2) {
    const K = Math.floor(steps / 2);
    return steps % 2 === 0 ? Array<number>(K).fill(2) : [...Array<number>(K).fill(2), 1];
  }
  return Array<number>(steps).fill(1);
}
