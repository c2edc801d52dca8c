/**
 * The consumer path of issue 11, offline: `npm run release` (reusing the bootstrap's cpu
 * build: --from-build) -> a static HTTP server on 127.0.0.1 serving the release folder as
 * SCIRE_BINARY_HOST -> `npm install --offline <package tarball>` in a new app whose PATH holds
 * only node, npm and basic tools (no compiler, CMake, make, nvcc or python3) -> require and
 * import sample the bundled model -> `npx scire info` names the prebuilt binary; then a
 * tampered archive and an unreachable host, which must fail clearly and leave no addon.
 */
import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledModels } from '../lib/bundled-models';
import { loadModel } from '../lib/model';
import { Sampler } from '../lib/sampler';

const ROOT = path.join(__dirname, '..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const PLATFORM = `${process.platform}-${process.arch}`;
const ARCHIVE = `scire-solver-v${VERSION}-napi-v8-${PLATFORM}-cpu.tar.gz`;
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'scire-consumer-'));
const RELEASE = path.join(WORK, 'release');
const TAMPERED = path.join(WORK, 'tampered');
const BIN = path.join(WORK, 'bin');
const TARBALL = path.join(RELEASE, `scire-solver-${VERSION}.tgz`);
/** The acceptance bound of issue 11 for `npm install <tarball>` with a prebuilt binary. */
const INSTALL_BOUND_S = 30;
const SAMPLE_STEPS = 5;

interface Run {
  code: number;
  out: string;
  seconds: number;
}

/** Runs a command without blocking the event loop (the HTTP server lives in this process). */
function runAsync(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs ?? 240_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}`, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    });
  });
}

/** A PATH of symlinks to node, npm and basic tools only. */
function makeBareBin(): void {
  fs.mkdirSync(BIN, { recursive: true });
  const tools: Record<string, string> = { node: process.execPath };
  const npmCli = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  tools.npm = npmCli;
  tools.npx = path.join(path.dirname(npmCli), 'npx-cli.js');
  for (const t of ['sh', 'bash', 'env', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'ln', 'chmod', 'uname', 'sed', 'grep', 'tar', 'gzip', 'dirname', 'basename', 'readlink', 'tee', 'sleep']) {
    const p = ['/usr/bin', '/bin'].map((d) => path.join(d, t)).find((f) => fs.existsSync(f));
    if (p) tools[t] = p;
  }
  for (const [name, target] of Object.entries(tools)) fs.symlinkSync(target, path.join(BIN, name));
}

/** The environment of a consumer: no npm_* variables from this `npm test`, no build settings. */
function consumerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const cache = path.join(WORK, 'cache'); // the install step's cache of verified archives
  return { PATH: BIN, HOME: process.env.HOME ?? os.homedir(), TMPDIR: os.tmpdir(), LANG: 'C.UTF-8', SCIRE_CACHE_DIR: cache, ...extra };
}

function newApp(name: string): string {
  const dir = path.join(WORK, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }, null, 2));
  return dir;
}

function npmInstall(app: string, host: string, extra: Record<string, string> = {}): Promise<Run> {
  return runAsync(path.join(BIN, 'npm'), ['install', '--offline', '--no-audit', '--no-fund', TARBALL], {
    cwd: app,
    env: consumerEnv({ SCIRE_BINARY_HOST: host, ...extra }),
  });
}

/** Every scire.node under a folder. */
function addonsUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name === 'scire.node') out.push(path.join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

let server: http.Server;
let host = '';
let app = '';
let install: Run;
let releaseRun: Run;

const SAMPLE_SCRIPT = (mod: string) => `
  const { data, shape, nfe } = await sampler.sample({ shape: [4, ...card.shape], seed: 7 });
  let sum = 0; for (const v of data) sum += v;
  console.log(JSON.stringify({ shape, nfe, finite: data.every(Number.isFinite), sum, head: Array.from(data.slice(0, 8)), mod: '${mod}' }));`;

beforeAll(async () => {
  makeBareBin();
  releaseRun = await runAsync(process.execPath, [path.join(ROOT, 'scripts', 'release.js'), '--out', RELEASE, '--variants', 'cpu', '--from-build'], {
    cwd: ROOT,
    env: { ...process.env },
    timeoutMs: 400_000,
  });
  if (releaseRun.code !== 0) throw new Error(`release failed:\n${releaseRun.out}`);
  // The tampered host: the same files, one byte of the cpu archive flipped.
  fs.mkdirSync(TAMPERED);
  for (const f of fs.readdirSync(RELEASE)) fs.copyFileSync(path.join(RELEASE, f), path.join(TAMPERED, f));
  const bad = fs.readFileSync(path.join(TAMPERED, ARCHIVE));
  bad[bad.length >> 1] ^= 0x01;
  fs.writeFileSync(path.join(TAMPERED, ARCHIVE), bad);

  server = http.createServer((req, res) => {
    const m = /^\/(good|tampered)\/([\w.+-]+)$/.exec(req.url ?? '');
    const file = m ? path.join(m[1] === 'good' ? RELEASE : TAMPERED, m[2]) : '';
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip' }).end(fs.readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  app = newApp('app');
  install = await npmInstall(app, `${host}/good`);
}, 600_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  fs.rmSync(WORK, { recursive: true, force: true });
});

describe('release', () => {
  it('writes the package tarball, the cpu archive and a manifest whose SHA-256 the tarball carries', () => {
    const files = fs.readdirSync(RELEASE).sort();
    expect(files).toEqual(['SHA256SUMS', ARCHIVE, 'manifest.json', `scire-solver-${VERSION}.tgz`].sort());
    const manifest = JSON.parse(fs.readFileSync(path.join(RELEASE, 'manifest.json'), 'utf8')) as { binaries: Array<{ file: string; sha256: string; variant: string }> };
    const sha = execFileSync('sha256sum', [path.join(RELEASE, ARCHIVE)], { encoding: 'utf8' }).split(' ')[0];
    expect(manifest.binaries).toEqual([expect.objectContaining({ file: ARCHIVE, sha256: sha, variant: 'cpu' })]);
    const shipped = execFileSync('tar', ['-xzOf', TARBALL, 'package/prebuilds/manifest.json'], { encoding: 'utf8' });
    expect(JSON.parse(shipped)).toEqual(manifest);
    expect(fs.existsSync(path.join(ROOT, 'prebuilds', 'manifest.json'))).toBe(false); // removed from the checkout again
  });

  it('the package has dist, types, the bundled model, LICENSE, the install step; no tests, benchmarks, training or GPU-check files', () => {
    const list = execFileSync('tar', ['-tzf', TARBALL], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
    for (const f of ['package.json', 'LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'dist/native.js', 'models/fmnist_unet.pt',
      'models/fmnist_unet.json', 'models/README.md', 'scripts/install.js', 'scripts/prebuilt.js', 'prebuilds/manifest.json', 'CMakeLists.txt', 'native/addon.cc']) {
      expect(list, f).toContain(f);
    }
    const forbidden = /^(test|benchmarks|lib|\.ci|dist\/testing)\/|^scripts\/(gpu-|pack-node|release|bootstrap|demo)|^models\/(fmnist_classifier|train_|.*\.py$)|^(binding\.gyp|tsconfig\.json)$|\.map$/;
    expect(list.filter((f) => forbidden.test(f))).toEqual([]);
  });
});

describe('consumer app: npm install <tarball> with a prebuilt binary, no compiler on PATH', () => {
  it('the app PATH has node and npm but no compiler, CMake, make, nvcc or python3', () => {
    const names = fs.readdirSync(BIN);
    expect(names).toEqual(expect.arrayContaining(['node', 'npm', 'npx']));
    for (const tool of ['cc', 'c++', 'g++', 'gcc', 'clang', 'cmake', 'make', 'ninja', 'nvcc', 'python3']) expect(names).not.toContain(tool);
  });

  it(`installs offline in under ${INSTALL_BOUND_S} s with the checked prebuilt cpu binary`, () => {
    expect(install.code, install.out).toBe(0);
    console.log(`npm install <tarball> (prebuilt, offline): ${install.seconds.toFixed(1)} s`);
    expect(install.seconds).toBeLessThan(INSTALL_BOUND_S);
    const pkg = path.join(app, 'node_modules', 'scire-solver');
    expect(addonsUnder(pkg)).toEqual([path.join(pkg, 'prebuilds', `${PLATFORM}-cpu`, 'scire.node')]);
    const record = JSON.parse(fs.readFileSync(path.join(pkg, 'prebuilds', 'install.json'), 'utf8')) as Record<string, string>;
    expect(record).toMatchObject({ origin: 'prebuilt', variant: 'cpu', archive: ARCHIVE, version: VERSION, from: `${host}/good/${ARCHIVE}` });
  });

  it('require() and import() sample 4 images from the bundled model, equal to this checkout', async () => {
    const cjs = `const { bundledModels, loadModel, Sampler } = require('scire-solver');
      (async () => { const { path, card } = bundledModels.fmnist;
      const sampler = new Sampler({ model: await loadModel(path), schedule: card.schedule, steps: ${SAMPLE_STEPS} });
      ${SAMPLE_SCRIPT('cjs')} })();`;
    const esm = `import { bundledModels, loadModel, Sampler } from 'scire-solver';
      const { path, card } = bundledModels.fmnist;
      const sampler = new Sampler({ model: await loadModel(path), schedule: card.schedule, steps: ${SAMPLE_STEPS} });
      ${SAMPLE_SCRIPT('esm')}`;
    fs.writeFileSync(path.join(app, 'sample.cjs'), cjs);
    fs.writeFileSync(path.join(app, 'sample.mjs'), esm);
    const env = consumerEnv({});
    const [a, b] = [await runAsync(path.join(BIN, 'node'), ['sample.cjs'], { cwd: app, env }), await runAsync(path.join(BIN, 'node'), ['sample.mjs'], { cwd: app, env })];
    expect(a.code, a.out).toBe(0);
    expect(b.code, b.out).toBe(0);
    const ra = JSON.parse(a.out.trim().split('\n').pop()!) as { shape: number[]; nfe: number; finite: boolean; sum: number; head: number[] };
    const rb = JSON.parse(b.out.trim().split('\n').pop()!) as typeof ra;
    expect(ra.shape).toEqual([4, 1, 28, 28]);
    expect(ra.nfe).toBe(SAMPLE_STEPS);
    expect(ra.finite).toBe(true);
    expect(rb.head).toEqual(ra.head);
    // The checkout's own build on the same LibTorch: the same samples (relative 1e-5).
    const { path: modelPath, card } = bundledModels.fmnist;
    const sampler = new Sampler({ model: await loadModel(modelPath), schedule: card.schedule, steps: SAMPLE_STEPS });
    const here = await sampler.sample({ shape: [4, ...card.shape!], seed: 7 });
    for (let i = 0; i < ra.head.length; i++) expect(Math.abs(ra.head[i] - here.data[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(here.data[i])));
  }, 240_000);

  it('npx scire info names the prebuilt binary, its variant and LibTorch; CUDA off', async () => {
    const r = await runAsync(path.join(BIN, 'npx'), ['--offline', 'scire', 'info'], { cwd: app, env: consumerEnv({}) });
    expect(r.code, r.out).toBe(0);
    const file = path.join(app, 'node_modules', 'scire-solver', 'prebuilds', `${PLATFORM}-cpu`, 'scire.node');
    expect(r.out).toContain(`Binary       ${file} (prebuilt)`);
    expect(r.out).toMatch(/Variant\s+cpu\n/);
    expect(r.out).toMatch(/LibTorch\s+\d+\.\d+\.\d+ \(\/\S+\)/);
    expect(r.out).toMatch(/CUDA\s+off \(/);
  }, 120_000);

  it('npm rebuild scire-solver keeps the working addon (no rebuild, no download)', async () => {
    const file = path.join(app, 'node_modules', 'scire-solver', 'prebuilds', `${PLATFORM}-cpu`, 'scire.node');
    const before = fs.statSync(file);
    // The host is gone: a rebuild that downloaded or compiled would fail.
    const r = await runAsync(path.join(BIN, 'npm'), ['rebuild', '--foreground-scripts', 'scire-solver'], { cwd: app, env: consumerEnv({ SCIRE_BINARY_HOST: 'http://127.0.0.1:9/none' }) });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('already installed');
    const after = fs.statSync(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  }, 120_000);

  it('SCIRE_VARIANT: a bad value and a variant this release lacks fail clearly and leave the working addon', async () => {
    const pkg = path.join(app, 'node_modules', 'scire-solver');
    const file = path.join(pkg, 'prebuilds', `${PLATFORM}-cpu`, 'scire.node');
    const before = fs.statSync(file);
    const step = (variant: string) =>
      runAsync(path.join(BIN, 'node'), ['scripts/install.js'], { cwd: pkg, env: consumerEnv({ SCIRE_VARIANT: variant, SCIRE_BINARY_HOST: `${host}/good` }) });
    const bad = await step('gpu');
    expect(bad.code).toBe(1);
    expect(bad.out).toContain("SCIRE_VARIANT must be cpu, cuda12, cuda13 (any cudaNN) or auto; got 'gpu'");
    const cuda = await step('cuda13');
    expect(cuda.code).toBe(1);
    expect(cuda.out).toContain(`this release has no cuda13 binary for ${PLATFORM} (Node-API 8); it has: ${PLATFORM}-cpu`);
    expect(cuda.out).toContain('source build: this machine lacks a C++17 compiler, CMake >= 3.19, make, a CUDA 13 LibTorch');
    expect(cuda.out).not.toContain('a binary host:'); // the manifest lists no cuda13 binary: no host can help
    expect(cuda.out).toContain('or the CPU variant: SCIRE_VARIANT=cpu');
    const after = fs.statSync(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    const info = await runAsync(path.join(BIN, 'npx'), ['--offline', 'scire', 'info'], { cwd: app, env: consumerEnv({}) });
    expect(info.out).toContain(`Binary       ${file} (prebuilt)`);
  }, 240_000);

  it('npm ci without the host reinstalls the binary from the cache of verified archives', async () => {
    const pkg = path.join(app, 'node_modules', 'scire-solver');
    const r = await runAsync(path.join(BIN, 'npm'), ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: app, env: consumerEnv({}) });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/using \S+ \(cached, SHA-256 ok\)/);
    const record = JSON.parse(fs.readFileSync(path.join(pkg, 'prebuilds', 'install.json'), 'utf8')) as Record<string, string>;
    expect(record).toMatchObject({ origin: 'prebuilt', variant: 'cpu' });
    expect(record.from).toContain(path.join(WORK, 'cache'));
  }, 240_000);

  it('the typings compile for a --strict consumer without @types/node; wrong device/order/dtype are type errors', () => {
    fs.writeFileSync(
      path.join(app, 'main.ts'),
      `import { bundledModels, loadModel, Sampler, type DeviceName } from 'scire-solver';
       export const devices: DeviceName[] = ['cpu', 'cuda', 'cuda:1'];
       // @ts-expect-error 'gpu' is not a device
       export const bad: DeviceName = 'gpu';
       export async function run(): Promise<number> {
         const model = await loadModel(bundledModels.fmnist.path, { device: 'cpu', dtype: 'bfloat16' });
         // @ts-expect-error no such dtype
         await loadModel(bundledModels.fmnist.path, { dtype: 'float64' });
         // @ts-expect-error order 4 does not exist
         new Sampler({ model, schedule: bundledModels.fmnist.card.schedule, order: 4 });
         const s = new Sampler({ model, schedule: bundledModels.fmnist.card.schedule, steps: 5, order: 3 });
         const r = await s.sample({ shape: [1, 1, 28, 28], seed: 1 });
         return r.data.length;
       }\n`,
    );
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'commonjs', moduleResolution: 'node', lib: ['ES2022'], types: [] }, files: ['main.ts'] }),
    );
    const r = execFileSyncNoThrow(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  }, 120_000);
});

function execFileSyncNoThrow(cmd: string, args: string[], cwd: string): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: `${err.stdout}${err.stderr}` };
  }
}

describe('refused installs leave no addon behind (no toolchain on PATH)', () => {
  it('a tampered binary (SHA-256 mismatch) is refused and the install fails naming the fix', async () => {
    const bad = newApp('app-tampered');
    const r = await npmInstall(bad, `${host}/tampered`, { SCIRE_CACHE_DIR: path.join(WORK, 'cache-tampered') });
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(new RegExp(`SHA-256 mismatch for ${ARCHIVE.replace(/\./g, '\\.')}: the manifest says [0-9a-f]{64}, the download is [0-9a-f]{64}; refusing it`));
    expect(r.out).toContain('source build: this machine lacks a C++17 compiler, CMake >= 3.19, make');
    expect(r.out).toContain('apt-get install -y --no-install-recommends g++ cmake make');
    expect(addonsUnder(bad)).toEqual([]);
  }, 240_000);

  it('an unreachable host fails clearly (connection refused), with no addon', async () => {
    const off = newApp('app-offline');
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await npmInstall(off, `http://127.0.0.1:${port}/good`, { SCIRE_CACHE_DIR: path.join(WORK, 'cache-offline') });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(`GET http://127.0.0.1:${port}/good/${ARCHIVE}: ECONNREFUSED`);
    expect(r.out).toContain('Fix one of them, then run `npm rebuild scire-solver`');
    expect(addonsUnder(off)).toEqual([]);
  }, 240_000);
});

/** Opt-in (it compiles the addon: minutes): SCIRE_TEST_SOURCE_BUILD=1 npx vitest run test/install-consumer.test.ts */
const SOURCE_BUILD = process.env.SCIRE_TEST_SOURCE_BUILD === '1';

describe('source-build fallback', () => {
  it.runIf(SOURCE_BUILD)('checksum mismatch with a toolchain: a cmake-js source build that loads (opt-in: SCIRE_TEST_SOURCE_BUILD=1)', async () => {
    const src = newApp('app-source');
    // The full PATH (compiler, CMake, make); cmake-js and node-addon-api come from the registry.
    const r = await runAsync(path.join(BIN, 'npm'), ['install', '--no-audit', '--no-fund', '--foreground-scripts', TARBALL], {
      cwd: src,
      env: consumerEnv({ PATH: `${BIN}:${process.env.PATH}`, SCIRE_BINARY_HOST: `${host}/tampered`, SCIRE_CACHE_DIR: path.join(WORK, 'cache-source') }),
      timeoutMs: 1_800_000,
    });
    console.log(`npm install with a source build: ${r.seconds.toFixed(0)} s`);
    expect(r.code, r.out.slice(-4000)).toBe(0);
    expect(r.out).toContain('falling back to a source build: SHA-256 mismatch');
    const pkg = path.join(src, 'node_modules', 'scire-solver');
    const record = JSON.parse(fs.readFileSync(path.join(pkg, 'prebuilds', 'install.json'), 'utf8')) as Record<string, string>;
    expect(record).toMatchObject({ origin: 'source', variant: 'cpu', file: 'build/Release/scire.node' });
    const info = await runAsync(path.join(BIN, 'npx'), ['--offline', 'scire', 'info'], { cwd: src, env: consumerEnv({}) });
    expect(info.out).toContain(`Binary       ${path.join(pkg, 'build', 'Release', 'scire.node')} (source)`);
  }, 1_800_000);
});
