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
 * Ratio of the best SciRE error to the best baseline (DPM-Solver++ / DDIM) error per NFE:
 * below 1 means SciRE wins.
 */
export function scireVsBaselines(rows: ErrorRow[], nfes: number[]): string {
  const bestOf = (pred: (r: ErrorRow) => boolean, i: number) => Math.min(...rows.filter(pred).map((r) => r.cells[i].error));
  const ratios = nfes.map((_, i) => bestOf((r) => r.family === 'SciRE', i) / bestOf((r) => r.family !== 'SciRE', i));
  return table(['', ...nfes.map((n) => `NFE ${n}`)], [['best SciRE / best baseline', ...ratios.map((x) => x.toFixed(2))]]);
}

export function errorChart(rows: ErrorRow[], title: string, yLabel: string): string {
  const series: Series[] = rows.map((r) => ({
    label: r.name,
    points: r.cells.map((c) => [c.nfe, c.error] as [number, number]),
    dashed: r.family !== 'SciRE',
  }));
  return logLogChart(series, { title, xLabel: 'NFE (network evaluations)', yLabel });
}

/** The error table, the best solver per family and SciRE vs the baselines, as markdown lines. */
export function errorSections(rows: ErrorRow[], nfes: number[]): string[] {
  return [errorTable(rows, nfes), '', '## Best per family', '', familyTable(rows, nfes), '', scireVsBaselines(rows, nfes)];
}
