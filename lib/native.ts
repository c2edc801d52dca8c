/**
 * Loader of the native addon scire.node.
 *
 * Search order (the first file that loads wins):
 *   1. $SCIRE_NATIVE_PATH (an explicit scire.node, e.g. the node-gyp build in build-gyp/)
 *   2. build/Release/scire.node, build/Debug/scire.node   (cmake-js and node-gyp builds)
 *   3. prebuilds/<platform>-<arch>-cudaNN/scire.node      (prebuilt binaries, CUDA flavours,
 *      newest CUDA first; skipped when SCIRE_CUDA=0), then prebuilds/<platform>-<arch>/scire.node
 * Every failure is remembered, so the final error says what was tried and why it failed.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { NativeBinding } from './native-types';

/** Root of the package: lib/ (sources, vitest) and dist/ (compiled) both sit one level below. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..');

/** Candidate scire.node files, in search order, for a package rooted at `root`. */
export function nativeCandidates(root: string = PACKAGE_ROOT, env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.SCIRE_NATIVE_PATH) out.push(path.resolve(env.SCIRE_NATIVE_PATH));
  out.push(path.join(root, 'build', 'Release', 'scire.node'), path.join(root, 'build', 'Debug', 'scire.node'));
  const platformArch = `${process.platform}-${process.arch}`;
  const prebuilds = path.join(root, 'prebuilds');
  let flavours: string[] = [];
  try {
    flavours = fs.readdirSync(prebuilds);
  } catch {
    flavours = [];
  }
  const cudaFlavour = new RegExp(`^${platformArch}-cuda(\\d+)$`);
  if (env.SCIRE_CUDA !== '0') {
    const cuda = flavours
      .map((name) => ({ name, version: Number(cudaFlavour.exec(name)?.[1] ?? NaN) }))
      .filter((f) => Number.isFinite(f.version))
      .sort((a, b) => b.version - a.version);
    for (const f of cuda) out.push(path.join(prebuilds, f.name, 'scire.node'));
  }
  out.push(path.join(prebuilds, platformArch, 'scire.node'));
  return out;
}

/** Loads one scire.node file. */
export function loadNativeFrom(file: string): NativeBinding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as NativeBinding;
}

let cached: { binding: NativeBinding; file: string } | undefined;

/** The loaded addon (loaded once per process). Throws an Error telling how to build it. */
export function nativeBinding(): NativeBinding {
  return loadNative().binding;
}

/** Path of the loaded addon file. */
export function nativeBindingPath(): string {
  return loadNative().file;
}

function loadNative(): { binding: NativeBinding; file: string } {
  if (cached) return cached;
  const failures: string[] = [];
  for (const file of nativeCandidates()) {
    if (!fs.existsSync(file)) continue;
    try {
      cached = { binding: loadNativeFrom(file), file };
      return cached;
    } catch (e) {
      failures.push(`  ${file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const tried = nativeCandidates().map((f) => `  ${f}`).join('\n');
  throw new Error(
    failures.length > 0
      ? `scire-solver: the native addon scire.node was found but could not be loaded:\n${failures.join('\n')}\n` +
          'Rebuild it with `npm run build` (it links LibTorch; see README.md, "Requirements").'
      : `scire-solver: the native addon scire.node is not built. Run \`npm run build\` in ${PACKAGE_ROOT} ` +
          `(or \`npm run build:gyp\` without CMake). Looked for:\n${tried}`,
  );
}
