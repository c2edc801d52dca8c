/**
 * Loader of the native addon scire.node.
 *
 * Search order (the first file that loads wins):
 *   1. $SCIRE_NATIVE_PATH (an explicit scire.node, e.g. the node-gyp build in build-gyp/)
 *   2. the binary the install step chose (prebuilds/install.json, written by scripts/install.js)
 *   3. build/Release/scire.node, build/Debug/scire.node   (cmake-js and node-gyp builds)
 *   4. prebuilds/<platform>-<arch>-cudaNN/scire.node      (newest CUDA first; skipped when
 *      SCIRE_CUDA=0), then prebuilds/<platform>-<arch>-cpu/, prebuilds/<platform>-<arch>/
 *
 * LibTorch: the cpu binaries link the system's (Debian libtorch1.13) through the default
 * library path; a binary built against another LibTorch carries its build machine's RPATH.
 * When $LIBTORCH is set, or the install step recorded the LibTorch it found (a pip torch for
 * a cudaNN binary), its libraries are loaded first (RTLD_GLOBAL), so the addon binds to them
 * wherever they are. Every failure is remembered, so the final error says what was tried,
 * why it failed, and what the binary needs.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { NativeBinding } from './native-types';

/** Root of the package: lib/ (sources, vitest) and dist/ (compiled) both sit one level below. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..');

/** Environment variables, as process.env holds them. */
type Env = Readonly<Record<string, string | undefined>>;

/** What scripts/install.js writes to prebuilds/install.json. */
interface InstallRecord {
  /** scire.node relative to the package root. */
  file: string;
  origin: 'prebuilt' | 'source';
  variant: string;
  /** Library folder of the LibTorch to load first (a pip torch's torch/lib), if any. */
  libtorchLibDir?: string;
}

/** Where the loaded addon came from (`scire info`). */
export interface NativeAddonInfo {
  /** Absolute path of the loaded scire.node. */
  file: string;
  /** 'prebuilt' (downloaded binary), 'source' (built at install), 'development' (a checkout's build), 'SCIRE_NATIVE_PATH'. */
  origin: 'prebuilt' | 'source' | 'development' | 'SCIRE_NATIVE_PATH';
  /** 'cpu' or 'cudaNN'. */
  variant: string;
  /** The LibTorch library folder the process uses ('' when it cannot be told). */
  libtorchDir: string;
  /** LibTorch libraries loaded before the addon ($LIBTORCH or the install record), if any. */
  libtorchPreloaded: string;
  /** OMP_WAIT_POLICY as the OpenMP runtime read it when the addon loaded, and who set it. */
  ompWaitPolicy: { value: string; setBy: 'scire-solver' | 'environment' };
}

function readInstallRecord(root: string): InstallRecord | undefined {
  try {
    const rec = JSON.parse(fs.readFileSync(path.join(root, 'prebuilds', 'install.json'), 'utf8')) as InstallRecord;
    return typeof rec.file === 'string' ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** Candidate scire.node files, in search order, for a package rooted at `root`. */
export function nativeCandidates(root: string = PACKAGE_ROOT, env: Env = process.env): string[] {
  const out: string[] = [];
  if (env.SCIRE_NATIVE_PATH) out.push(path.resolve(env.SCIRE_NATIVE_PATH));
  const record = readInstallRecord(root);
  if (record) out.push(path.join(root, record.file));
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
  out.push(path.join(prebuilds, `${platformArch}-cpu`, 'scire.node'), path.join(prebuilds, platformArch, 'scire.node'));
  return [...new Set(out)];
}

/** glibc's RTLD_NODELETE (Node's os.constants.dlopen lacks it): keeps a preloaded library resident. */
const RTLD_NODELETE = 0x1000;

/**
 * Loads LibTorch's libraries from libDir into the global namespace, so that an addon whose
 * RPATH points elsewhere binds to these (the dynamic linker matches them by soname).
 * Returns the folder, or throws an Error naming the library that failed.
 */
export function preloadLibTorch(libDir: string): string {
  if (process.platform !== 'linux') return '';
  const { RTLD_NOW, RTLD_GLOBAL } = require('os').constants.dlopen as { RTLD_NOW: number; RTLD_GLOBAL: number };
  const names = ['libc10.so', 'libc10_cuda.so', 'libtorch_cpu.so', 'libtorch_cuda.so', 'libtorch.so'];
  const present = names.filter((n) => fs.existsSync(path.join(libDir, n)));
  if (!present.includes('libtorch_cpu.so')) {
    throw new Error(`scire-solver: no LibTorch in ${libDir} (libtorch_cpu.so is missing); set LIBTORCH to a folder with lib/libtorch.so`);
  }
  for (const name of present) {
    try {
      process.dlopen({ exports: {} }, path.join(libDir, name), RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
    } catch (e) {
      // A plain shared library loads, then Node says it registered no module: that is expected.
      if (!/did not self-register/.test((e as Error).message)) {
        throw new Error(`scire-solver: could not load ${path.join(libDir, name)}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
  return libDir;
}

/** The LibTorch library folder to load first: $LIBTORCH/lib, else the install record's. */
function libTorchToPreload(root: string, env: Env): string | undefined {
  if (env.LIBTORCH) return path.join(path.resolve(env.LIBTORCH), 'lib');
  return readInstallRecord(root)?.libtorchLibDir;
}

/** Loads one scire.node file (after the LibTorch named by $LIBTORCH, or by `libtorchLibDir`). */
export function loadNativeFrom(file: string, libtorchLibDir?: string): NativeBinding {
  if (libtorchLibDir) preloadLibTorch(libtorchLibDir);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as NativeBinding;
}

/** OMP_WAIT_POLICY when scire-solver set it (applyOpenMPDefaults). */
export const DEFAULT_OMP_WAIT_POLICY = 'PASSIVE';

let ompWaitPolicySetBy: 'scire-solver' | 'environment' = 'environment';

/**
 * OMP_WAIT_POLICY=PASSIVE unless the environment says otherwise, set before LibTorch (and with
 * it the OpenMP runtime, which reads its environment once, when it is loaded) comes into the
 * process. The default policy lets idle OpenMP threads spin between parallel regions; on a
 * machine whose cores other processes share, the spinning threads take the CPU the working ones
 * need: with 2 busy processes beside it, a sample with 2 intra-op threads took 6.3x as long as
 * with 1 thread and 11x as long as with 2 PASSIVE threads (docs/native.md, "OpenMP wait
 * policy"). Passive threads sleep: a wake-up per parallel region (1.5x slower on an idle
 * machine), no spinning. Exported for tests; called by the loader.
 */
export function applyOpenMPDefaults(env: Record<string, string | undefined> = process.env): void {
  if (env.OMP_WAIT_POLICY === undefined || env.OMP_WAIT_POLICY === '') {
    env.OMP_WAIT_POLICY = DEFAULT_OMP_WAIT_POLICY;
    ompWaitPolicySetBy = 'scire-solver';
  }
}

let cached: { binding: NativeBinding; file: string; preloaded: string } | undefined;

/** The loaded addon (loaded once per process). Throws an Error telling how to get one. */
export function nativeBinding(): NativeBinding {
  return loadNative().binding;
}

/** Path of the loaded addon file. */
export function nativeBindingPath(): string {
  return loadNative().file;
}

/** Which addon is loaded, where it came from, and which LibTorch it runs on. */
export function nativeAddonInfo(): NativeAddonInfo {
  const { binding, file, preloaded } = loadNative();
  const build = binding.buildInfo();
  const record = readInstallRecord(PACKAGE_ROOT);
  let origin: NativeAddonInfo['origin'];
  if (process.env.SCIRE_NATIVE_PATH && path.resolve(process.env.SCIRE_NATIVE_PATH) === file) origin = 'SCIRE_NATIVE_PATH';
  else if (record && path.join(PACKAGE_ROOT, record.file) === file) origin = record.origin;
  else if (file.startsWith(path.join(PACKAGE_ROOT, 'prebuilds') + path.sep)) origin = 'prebuilt';
  else origin = isDevelopmentCheckout() ? 'development' : 'source';
  return {
    file,
    origin,
    variant: build.variant ?? (build.torchCuda ? 'cuda' : 'cpu'),
    libtorchDir: loadedLibTorchDir(),
    libtorchPreloaded: preloaded,
    ompWaitPolicy: { value: process.env.OMP_WAIT_POLICY ?? '', setBy: ompWaitPolicySetBy },
  };
}

/** The folder of the libtorch_cpu library mapped into this process ('' if unknown). */
function loadedLibTorchDir(): string {
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const m = /\s(\/\S*\/libtorch_cpu\.so[^\s]*)\n/.exec(maps);
    return m ? path.dirname(m[1]) : '';
  } catch {
    return '';
  }
}

/** A git checkout (tsconfig.json is not shipped in the npm package). */
function isDevelopmentCheckout(): boolean {
  return fs.existsSync(path.join(PACKAGE_ROOT, 'tsconfig.json'));
}

/** What a binary needs at run time, from the binary.json that ships next to it. */
function needsOf(file: string): string {
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(path.dirname(file), 'binary.json'), 'utf8')) as { needs?: string };
    return meta.needs ? ` (this binary needs ${meta.needs})` : '';
  } catch {
    return '';
  }
}

function loadNative(): { binding: NativeBinding; file: string; preloaded: string } {
  if (cached) return cached;
  applyOpenMPDefaults();
  const failures: string[] = [];
  let preloaded = '';
  const libDir = libTorchToPreload(PACKAGE_ROOT, process.env);
  if (libDir) {
    try {
      preloaded = preloadLibTorch(libDir);
    } catch (e) {
      // An explicit LIBTORCH that does not work is an error; a recorded one that moved is not yet.
      if (process.env.LIBTORCH) throw new Error(`LIBTORCH=${process.env.LIBTORCH}: ${(e as Error).message}`);
      failures.push(`  LibTorch ${libDir} (recorded by the install step): ${(e as Error).message}`);
    }
  }
  for (const file of nativeCandidates()) {
    if (!fs.existsSync(file)) continue;
    try {
      cached = { binding: loadNativeFrom(file), file, preloaded };
      return cached;
    } catch (e) {
      failures.push(`  ${file}: ${(e as Error).message.split('\n')[0]}${needsOf(file)}`);
    }
  }
  const tried = nativeCandidates().map((f) => `  ${f}`).join('\n');
  const fix = isDevelopmentCheckout()
    ? `Run \`npm run build\` in ${PACKAGE_ROOT} (README.md, "Requirements").`
    : 'Run `npm rebuild scire-solver` in your app: it repeats the install step (a prebuilt binary from ' +
      'SCIRE_BINARY_HOST, else a source build; README.md, "Install in your app").';
  const libHint = failures.some((f) => /lib(torch|c10)[\w.]*\.so[\w.]*: cannot open shared object/.test(f))
    ? '\nLibTorch was not found: install the one the binary needs (Debian: apt-get install libtorch1.13) ' +
      "or set LIBTORCH to a LibTorch folder (a pip torch: python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')."
    : '';
  throw new Error(
    failures.length > 0
      ? `scire-solver: the native addon scire.node was found but could not be loaded:\n${failures.join('\n')}${libHint}\n${fix}`
      : `scire-solver: the native addon scire.node is not installed. ${fix} Looked for:\n${tried}`,
  );
}
