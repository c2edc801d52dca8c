/**
 * Smoke test of benchmarks/scaleout.ts (issue 15): a tiny run (8 jobs, 1 x 1 and 2 x 1 worker
 * processes and the 2-process control without Redis, one rep) writes its table and JSON; every job is accounted for by the workers
 * (at most 2 of them in the 2 x 1 run) and Redis commands per job were counted. Timings are
 * never asserted.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..');

describe('benchmarks/scaleout.ts --tiny', () => {
  it('runs and accounts for every job', () => {
    const out = mkdtempSync(join(tmpdir(), 'scire-scaleout-bench-'));
    execFileSync(
      join(ROOT, 'node_modules', '.bin', 'vite-node'),
      [join(ROOT, 'benchmarks', 'scaleout.ts'), '--', '--tiny', '--configs', '1x1,2x1,local:2x1', '--jobs', '8', '--out', out],
      { cwd: ROOT, encoding: 'utf8', timeout: 170_000, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const json = JSON.parse(readFileSync(join(out, 'scaleout.json'), 'utf8')) as {
      jobs: number;
      results: { name: string; processes: number; jobsPerS: number; perWorker: number[]; redisPerJob: { calls: number } | null }[];
    };
    expect(json.results.map((r) => r.name)).toEqual(['local', 'bench-1x1', 'bench-2x1', 'local-2x1']);
    for (const r of json.results) {
      expect(r.perWorker.reduce((a, b) => a + b, 0)).toBe(json.jobs);
      expect(r.jobsPerS).toBeGreaterThan(0);
    }
    const two = json.results.find((r) => r.name === 'bench-2x1')!;
    expect(two.perWorker.length).toBeLessThanOrEqual(2);
    expect(two.redisPerJob!.calls).toBeGreaterThan(5);
    expect(readFileSync(join(out, 'scaleout.md'), 'utf8')).toMatch(/\| 2 worker processes, 1 thread each \| 2 x 1 \|/);
  }, 180_000);
});
