/** Markdown table helpers of the benchmarks. */

export function table(header: string[], rows: string[][]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

/** 3 significant digits in exponent notation (1.23e-2). */
export function sci(v: number): string {
  return Number.isFinite(v) ? v.toExponential(2) : String(v);
}

/** Fixed with `digits` decimals. */
export function fixed(v: number, digits = 2): string {
  return Number.isFinite(v) ? v.toFixed(digits) : String(v);
}

/** Parses --key value / --flag arguments into a map. */
export function parseArgs(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new RangeError(`unexpected argument '${a}' (options are --key value or --flag)`);
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      out.set(key, next);
      i++;
    } else out.set(key, 'true');
  }
  return out;
}
