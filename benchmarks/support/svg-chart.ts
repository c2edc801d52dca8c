/**
 * A small line chart as an SVG string: several series of (x, y) points on log-log axes
 * (decade grid lines, a legend on the right). No dependencies; used for error-vs-NFE charts.
 */

export interface Series {
  label: string;
  points: Array<[number, number]>;
  /** Dashed line (e.g. baselines). */
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22', '#000000', '#aec7e8'];

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Tick values of a log axis: the decades in [lo, hi] plus the given extra values. */
function logTicks(lo: number, hi: number, extra: number[] = []): number[] {
  const ticks = new Set<number>();
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    const v = 10 ** e;
    if (v >= lo * 0.999 && v <= hi * 1.001) ticks.add(v);
  }
  for (const v of extra) if (v >= lo && v <= hi) ticks.add(v);
  return [...ticks].sort((a, b) => a - b);
}

export function logLogChart(series: Series[], opts: ChartOptions): string {
  const width = opts.width ?? 860;
  const height = opts.height ?? 520;
  const left = 70;
  const right = 260;
  const top = 40;
  const bottom = 55;
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(y));
  if (pts.length === 0) throw new RangeError('logLogChart: no positive finite points');
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const xLo = Math.min(...xs) / 1.08;
  const xHi = Math.max(...xs) * 1.08;
  const yLo = 10 ** Math.floor(Math.log10(Math.min(...ys)));
  const yHi = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  const pw = width - left - right;
  const ph = height - top - bottom;
  const X = (x: number) => left + ((Math.log(x) - Math.log(xLo)) / (Math.log(xHi) - Math.log(xLo))) * pw;
  const Y = (y: number) => top + (1 - (Math.log(y) - Math.log(yLo)) / (Math.log(yHi) - Math.log(yLo))) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${left + pw / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(opts.title)}</text>`);
  // Grid and ticks.
  const uniqueX = [...new Set(xs)].sort((a, b) => a - b);
  for (const x of uniqueX) {
    out.push(`<line x1="${X(x).toFixed(1)}" y1="${top}" x2="${X(x).toFixed(1)}" y2="${top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${X(x).toFixed(1)}" y="${top + ph + 16}" text-anchor="middle">${x}</text>`);
  }
  for (const y of logTicks(yLo, yHi)) {
    out.push(`<line x1="${left}" y1="${Y(y).toFixed(1)}" x2="${left + pw}" y2="${Y(y).toFixed(1)}" stroke="#d0d0d0"/>`);
    out.push(`<text x="${left - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end">1e${Math.round(Math.log10(y))}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${left + pw / 2}" y="${height - 14}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(opts.yLabel)}</text>`);
  // Series.
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const p = s.points.filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(y));
    const d = p.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const [x, y] of p) out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = top + 10 + i * 18;
    out.push(`<line x1="${left + pw + 14}" y1="${ly}" x2="${left + pw + 40}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${left + pw + 46}" y="${ly + 4}">${escapeXml(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
