/**
 * Bounds shared by the option checks (lib/options.ts) and the public helpers that size
 * arrays from user input (lib/timesteps.ts).
 */

/**
 * Largest number of steps accepted (a documented bound far above any sensible use: the
 * solvers here are built for 10-50). It keeps a typo such as 1e9 from exhausting memory or
 * blocking the event loop while the plan is compiled.
 */
export const MAX_STEPS = 10_000;

/**
 * Largest N of NoiseSchedule.discrete({ kind, N }) (DDPM uses 1 000; some models 4 000). The
 * tables are N float64 values each; the bound keeps N: 1e9 from exhausting the JS heap.
 */
export const MAX_DISCRETE_N = 1_000_000;
