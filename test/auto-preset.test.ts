/**
 * preset: 'auto' (lib/presets/auto.ts) and its table (lib/presets/auto-table.json, written by
 * benchmarks/auto-preset.ts).
 *   - compilePlan without preset is unchanged: the official SciRE defaults.
 *   - With preset 'auto' the plan runs the table's configuration for the schedule and NFE, with
 *     exactly `steps` evaluations, and reports what it chose in plan.meta.auto.
 *   - The committed table is reproducible: rows re-derived here (same candidates, noise, RK4)
 *     pick the same configuration with the same error (relative 1e-9).
 *   - The 'discrete' rows up to unetStage.maxNfe record the UNet stage (benchmarks/auto-preset.ts):
 *     among candidates meeting the mixture rule, the pick is the first (best on the mixture) within
 *     unetStage.tie of the smallest recorded UNet error, and the shortlist measured on the UNet is re-derived here from the mixture.
 *   - Bad combinations are rejected with a TypeError naming the field.
 */
import { join } from 'path';
import { describe, expect, test } from 'vitest';
import { autoProblem, measureRow } from '../benchmarks/support/auto-measure';
import { compilePlan } from '../lib/compile';
import { autoTable, describeSolver, AUTO_TABLE_NFES, type AutoTableEntry, type AutoUnetRow, type AutoUnetStage } from '../lib/presets/auto';
import { autoCandidates } from '../lib/presets/auto-candidates';
import { readModelCard } from '../lib/model-card';
import { unetShortlist } from '../benchmarks/support/auto-unet';
import { NoiseSchedule } from '../lib/schedule';
import { goldenSchedule } from '../lib/testing/golden-cases';

const discrete = goldenSchedule('discrete');

describe('compilePlan without preset', () => {
  test('is the official SciRE default (v1, multistep, order 3, nsr, faithful, lower-order final), with no auto meta', () => {
    for (const steps of [5, 10, 20]) {
      const plain = compilePlan({ schedule: discrete, steps });
      const explicit = compilePlan({
        schedule: discrete,
        steps,
        solver: 'scire',
        algorithm: 'v1',
        method: 'multistep',
        order: 3,
        skip: 'nsr',
        rde: 'faithful',
        lowerOrderFinal: true,
      });
      expect(plain).toEqual(explicit);
      expect(plain.meta.auto).toBeUndefined();
      expect(compilePlan({ schedule: discrete, steps, preset: 'none' })).toEqual(plain);
    }
  });
});

describe("preset 'auto'", () => {
  const table = autoTable();
  test('the table covers discrete, linear and cosine at every NFE row', () => {
    expect(table.format).toBe('scire-auto-table-v1');
    for (const kind of ['discrete', 'linear', 'cosine'] as const) {
      expect(table.schedules[kind]?.map((r) => r.nfe)).toEqual(AUTO_TABLE_NFES);
      for (const r of table.schedules[kind] ?? []) {
        // the mixture's own winner (rows re-ranked on the UNet keep it in unet.mixtureBest)
        const mixtureBest = r.unet?.mixtureBest ?? r.best;
        expect(mixtureBest.error).toBeLessThanOrEqual(r.bestData.error);
        for (const u of r.runnersUp) expect(mixtureBest.error).toBeLessThanOrEqual(u.error);
      }
    }
  });
  test('runs the table configuration with exactly `steps` evaluations and reports it', () => {
    for (const kind of ['discrete', 'linear', 'cosine'] as const) {
      const schedule = goldenSchedule(kind);
      for (const row of table.schedules[kind] ?? []) {
        const plan = compilePlan({ schedule, steps: row.nfe, preset: 'auto' });
        expect(plan.nfe).toBe(row.nfe);
        const auto = plan.meta.auto as { row: { nfe: number; name: string }; config: Record<string, unknown> };
        expect(auto.row.nfe).toBe(row.nfe);
        expect(auto.row.name).toBe(row.best.name);
        const report = describeSolver(plan.meta);
        expect(report).toMatchObject(row.best.config);
        expect(report.preset).toBe('auto');
        expect(report.solver).toBe(row.best.config.solver);
        // the same plan as the configuration given by hand
        expect(compilePlan({ schedule, steps: row.nfe + row.best.stepsOffset, ...row.best.config }).ops).toEqual(plan.ops);
      }
    }
  });
  test('NFE between rows uses the row below; above 50 the last row; below the first row a lowered configuration', () => {
    expect((compilePlan({ schedule: discrete, steps: 13, preset: 'auto' }).meta.auto as { row: { nfe: number } }).row.nfe).toBe(12);
    const big = compilePlan({ schedule: discrete, steps: 100, preset: 'auto' });
    expect(big.nfe).toBe(100);
    expect((big.meta.auto as { row: { nfe: number } }).row.nfe).toBe(50);
    for (const steps of [1, 2]) expect(compilePlan({ schedule: discrete, steps, preset: 'auto' }).nfe).toBe(steps);
  });
  test('EDM uses the discrete rows; thresholding picks a data-prediction configuration; modelType/tEnd pass through', () => {
    const edm = compilePlan({ schedule: NoiseSchedule.edm(), steps: 10, preset: 'auto' });
    expect((edm.meta.auto as { row: { schedule: string } }).row.schedule).toBe('discrete');
    for (const steps of [6, 10, 12, 20]) {
      const plan = compilePlan({ schedule: discrete, steps, preset: 'auto', thresholding: { ratio: 0.995 } });
      expect(plan.ops.some((op) => op.op === 'threshold')).toBe(true);
      expect((plan.meta.auto as { row: { name: string } }).row.name).toBe(table.schedules.discrete?.find((r) => r.nfe === steps)?.bestData.name);
    }
    const plan = compilePlan({ schedule: discrete, steps: 8, preset: 'auto', modelType: 'x_start', tEnd: 0.002, denoiseToZero: true });
    expect(plan.meta).toMatchObject({ modelType: 'x_start', tEnd: 0.002, denoiseToZero: true });
    expect(plan.nfe).toBe(9);
  });
  test('rejects a solver field together with the preset, and unknown presets', () => {
    expect(() => compilePlan({ schedule: discrete, steps: 8, preset: 'auto', solver: 'dpmpp' })).toThrow(
      /^Expected no solver with preset 'auto' .* for solver but received 'dpmpp' \(string\)$/,
    );
    expect(() => compilePlan({ schedule: discrete, steps: 8, preset: 'auto', order: 2 })).toThrow(TypeError);
    expect(() => compilePlan({ schedule: discrete, steps: 8, preset: 'fast' as never })).toThrow(
      /^Expected one of 'auto', 'none' \(or no preset\) for preset but received 'fast' \(string\)$/,
    );
    expect(() => compilePlan({ schedule: discrete, steps: 0, preset: 'auto' })).toThrow(/for steps but received 0/);
  });
  test('the committed table is reproducible: re-derived rows pick the same configuration with the same error', () => {
    for (const kind of ['discrete', 'linear'] as const) {
      const problem = autoProblem(kind, { batch: table.batch, seed: table.seed, rk4Steps: table.rk4Steps });
      for (const nfe of [6, 10]) {
        const row = measureRow(problem, nfe);
        const stored = table.schedules[kind]?.find((r) => r.nfe === nfe) as AutoTableEntry;
        const storedMixtureBest = stored.unet?.mixtureBest ?? stored.best;
        expect(row.best.name).toBe(storedMixtureBest.name);
        expect(Math.abs(row.best.error / storedMixtureBest.error - 1)).toBeLessThan(1e-9);
        expect(row.bestData.name).toBe(stored.bestData.name);
        if (stored.unet && table.unetStage) {
          // the UNet stage's shortlist is re-derived from the mixture alone: the same bar, the same
          // admitted count, the same candidates measured on the UNet, in the same order
          const unetSchedule = readModelCard(join(__dirname, '..', 'models', 'fmnist_unet.pt')).schedule;
          const s = unetShortlist(problem, unetSchedule, nfe, table.unetStage.top);
          expect(s.bar.name).toBe(stored.unet.referenceBest.name);
          expect(Math.abs(s.bar.error / stored.unet.referenceBest.error - 1)).toBeLessThan(1e-9);
          expect(s.admitted.length).toBe(stored.unet.admitted);
          expect(s.chosen.map((c) => problem.candidates[c.i].name)).toEqual(stored.unet.measured.map((m) => m.name));
          s.chosen.forEach((c, k) => expect(Math.abs(c.error / stored.unet!.measured[k].mixtureError - 1)).toBeLessThan(1e-9));
        }
      }
    }
  }, 240_000);
});

describe("the auto table's UNet stage (discrete rows)", () => {
  const table = autoTable();
  const stage = table.unetStage as AutoUnetStage;
  test('records its setting: the bundled UNet, a seed other than the acceptance seeds, batch >= 16, a 500-NFE solution', () => {
    expect(stage).toBeDefined();
    expect(stage.schedules).toEqual(['discrete']);
    expect(stage.model).toMatch(/^models\/fmnist_unet\.pt/);
    expect([0, 1]).not.toContain(stage.seed);
    expect(stage.batch).toBeGreaterThanOrEqual(16);
    expect(stage.fineNfe).toBeGreaterThanOrEqual(500);
    expect(stage.fineDoubling).toBeGreaterThan(0);
    expect(stage.top).toBeGreaterThanOrEqual(2);
    expect(stage.tie).toBeGreaterThanOrEqual(0);
    expect(stage.tie).toBeLessThan(0.25);
    expect(AUTO_TABLE_NFES).toContain(stage.maxNfe);
  });
  test('every discrete row up to maxNfe picks, among candidates meeting the mixture rule, the best on the mixture within `tie` of the smallest recorded UNet error', () => {
    const rows = table.schedules.discrete ?? [];
    const staged = rows.filter((r) => r.nfe <= stage.maxNfe);
    expect(staged.length).toBeGreaterThan(0);
    for (const r of staged) {
      const u = r.unet as AutoUnetRow;
      expect(u, `discrete NFE ${r.nfe}: no unet record`).toBeDefined();
      expect(u.measured.length).toBeLessThanOrEqual(Math.min(stage.top, u.admitted));
      if (u.admitted === 0) {
        expect(u.measured).toEqual([]);
        expect(r.best).toEqual(u.mixtureBest);
        continue;
      }
      expect(u.measured.length).toBeGreaterThan(0);
      // the mixture rule: every measured candidate is at or below the acceptance bar on the mixture
      for (const m of u.measured) {
        expect(m.mixtureError).toBeLessThanOrEqual(u.referenceBest.error);
        expect(Number.isFinite(m.unetError) && m.unetError > 0).toBe(true);
      }
      // measured in mixture order, starting at the mixture's best, all distinct
      expect(u.measured[0].name).toBe(u.mixtureBest.name);
      for (let k = 1; k < u.measured.length; k++) expect(u.measured[k].mixtureError).toBeGreaterThanOrEqual(u.measured[k - 1].mixtureError);
      expect(new Set(u.measured.map((m) => m.name)).size).toBe(u.measured.length);
      // the pick: the first candidate (in mixture order) within `tie` of the smallest UNet error, with its mixture error
      const min = Math.min(...u.measured.map((m) => m.unetError));
      const pick = u.measured.find((m) => m.unetError <= (1 + stage.tie) * min);
      expect(r.best.name, `discrete NFE ${r.nfe}`).toBe(pick?.name);
      expect(r.best.error).toBe(pick?.mixtureError);
      const candidate = autoCandidates().find((c) => c.name === r.best.name);
      expect(r.best.config).toEqual(candidate?.config);
    }
  });
  test('rows above maxNfe and the linear and cosine rows keep the mixture choice (no unet record)', () => {
    for (const kind of ['discrete', 'linear', 'cosine'] as const) {
      for (const r of table.schedules[kind] ?? []) {
        if (kind === 'discrete' && r.nfe <= stage.maxNfe) continue;
        expect(r.unet).toBeUndefined();
      }
    }
  });
});
