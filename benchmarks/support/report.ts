/**
 * Tables and charts of the accuracy benchmark: one row per solver, one column per NFE
 * target; the best entry of each column in bold; a per-family summary; an SVG chart.
 */
import { sci, table } from './markdown';
import { logLogChart, type Series } from './svg-chart';

export interface ErrorRow {
  name: string;
  family: string;
  cells: Array<{ nfe: number; error: number }>;
}

/** error, with the actual NFE in parentheses when it differs from the column's target. */
function cell(c: { nfe: number; error: number }, target: number, bold: boolean): string {
  const v = `${sci(c.error)}${c.nfe !== target ? ` (${c.nfe})` : ''}`;
  return bold ? `**${v}**` : v;
}

export function errorTable(rows: ErrorRow[], nfes: number[]): string {
  const best = nfes.map((_, i) => Math.min(...rows.map((r) => r.cells[i].error)));
  return table(
    ['solver', ...nfes.map((n) => `NFE ${n}`)],
    rows.map((r) => [r.name, ...r.cells.map((c, i) => cell(c, nfes[i], c.error === best[i]))]),
  );
}

/** Best error per family and NFE target, and which member achieved it. */
export function familyTable(rows: ErrorRow[], nfes: number[]): string {
  const families = [...new Set(rows.map((r) => r.family))];
  const out: string[][] = [];
  for (const fam of families) {
    const members = rows.filter((r) => r.family === fam);
    out.push([
      fam,
      ...nfes.map((_, i) => {
        const m = members.reduce((a, b) => (b.cells[i].error < a.cells[i].error ? b : a));
        return `${sci(m.cells[i].error)} (${m.name.replace(/^(SciRE|DPM-Solver\+\+) /, '')})`;
      }),
    ]);
  }
  return table(['family: best', ...nfes.map((n) => `NFE ${n}`)], out);
}

/**
 * The configurations `preset: 'auto'` is judged against (issue 14's acceptance): the official SciRE
 * configurations, DPM-Solver++ 2M/3M and UniPC. Shared with the auto table's admission rule
 * (benchmarks/support/auto-measure.ts referenceBest).
 */
export function isAcceptanceReference(r: { family: string; name: string }): boolean {
  return r.family === 'SciRE' || r.family === 'UniPC' || /^DPM-Solver\+\+ [23]M/.test(r.name);
}

/**
 * Ratio of the best SciRE error (official or with this package's additions) to the best
 * baseline (DDIM / DPM-Solver++ / UniPC) error per NFE: below 1 means SciRE wins.
 */
export function scireVsBaselines(rows: ErrorRow[], nfes: number[]): string {
  const bestOf = (pred: (r: ErrorRow) => boolean, i: number) => Math.min(...rows.filter(pred).map((r) => r.cells[i].error));
  const isScire = (r: ErrorRow) => r.family === 'SciRE' || r.family === 'SciRE+';
  const isBaseline = (r: ErrorRow) => r.family === 'DDIM' || r.family === 'DPM-Solver++' || r.family === 'UniPC';
  const out: string[][] = [];
  if (rows.some((r) => r.family === 'SciRE') && rows.some(isBaseline)) {
    out.push(['best official SciRE / best baseline', ...nfes.map((_, i) => (bestOf((r) => r.family === 'SciRE', i) / bestOf(isBaseline, i)).toFixed(2))]);
  }
  if (rows.some((r) => r.family === 'SciRE+') && rows.some(isBaseline)) {
    out.push(['best SciRE incl. corrector / best baseline', ...nfes.map((_, i) => (bestOf(isScire, i) / bestOf(isBaseline, i)).toFixed(2))]);
  }
  const reference = isAcceptanceReference;
  if (rows.some((r) => r.family === 'auto') && rows.some(reference)) {
    out.push(['auto / best of (official SciRE, DPM-Solver++ 2M/3M, UniPC)', ...nfes.map((_, i) => (bestOf((r) => r.family === 'auto', i) / bestOf(reference, i)).toFixed(2))]);
  }
  return table(['', ...nfes.map((n) => `NFE ${n}`)], out);
}

export function errorChart(rows: ErrorRow[], title: string, yLabel: string): string {
  const series: Series[] = rows.map((r) => ({
    label: r.name,
    points: r.cells.map((c) => [c.nfe, c.error] as [number, number]),
    dashed: r.family !== 'SciRE' && r.family !== 'SciRE+' && r.family !== 'auto',
  }));
  return logLogChart(series, { title, xLabel: 'NFE (network evaluations)', yLabel });
}

/** The error table, the best solver per family and SciRE vs the baselines, as markdown lines. */
export function errorSections(rows: ErrorRow[], nfes: number[]): string[] {
  return [errorTable(rows, nfes), '', '## Best per family', '', familyTable(rows, nfes), '', scireVsBaselines(rows, nfes)];
}
