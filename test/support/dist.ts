/**
 * The compiled package (dist/) for tests that run it in a child process: rebuilt with tsc
 * when any lib/*.ts is newer than dist/index.js (npm run build / npm test build it first).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST_INDEX = path.join(ROOT, 'dist', 'index.js');
export const DIST_CLI = path.join(ROOT, 'dist', 'cli.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Runs tsc when dist/ is missing or older than the TypeScript sources; returns the path of dist/cli.js. */
export function ensureDistBuilt(): string {
  const built = Math.min(
    fs.existsSync(DIST_INDEX) ? fs.statSync(DIST_INDEX).mtimeMs : 0,
    fs.existsSync(DIST_CLI) ? fs.statSync(DIST_CLI).mtimeMs : 0,
  );
  if (built >= newestMtime(path.join(ROOT, 'lib'))) return DIST_CLI;
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (tsc.status !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  return DIST_CLI;
}
