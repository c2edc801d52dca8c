/**
 * Progress of a solve on a stream: a bar redrawn in place on a terminal, plain lines
 * otherwise (logs, pipes, CI).
 *
 *   [##############----------------]  6/12 NFE  t=417.3  0.8 s
 */

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressUpdate {
  nfe: number;
  total: number;
  /** Model input time of the evaluation just done. */
  t: number;
}

const BAR_WIDTH = 30;

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export class ProgressReporter {
  private readonly started = performance.now();
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly label: string = 'sampling',
  ) {}

  get interactive(): boolean {
    return this.stream.isTTY === true;
  }

  update(ev: ProgressUpdate): void {
    const elapsed = formatSeconds(performance.now() - this.started);
    const count = `${String(ev.nfe).padStart(String(ev.total).length)}/${ev.total} NFE`;
    const time = `t=${ev.t.toFixed(1)}`;
    if (this.interactive) {
      const filled = ev.total > 0 ? Math.round((BAR_WIDTH * ev.nfe) / ev.total) : BAR_WIDTH;
      const bar = '#'.repeat(filled) + '-'.repeat(BAR_WIDTH - filled);
      this.stream.write(`\r${this.label} [${bar}] ${count}  ${time}  ${elapsed}\x1b[K`);
      this.drawn = true;
    } else {
      this.stream.write(`${this.label}: ${count}  ${time}  ${elapsed}\n`);
    }
  }

  /** Ends the bar's line (call once the solve is over, successfully or not). */
  finish(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
