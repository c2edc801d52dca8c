#!/usr/bin/env node
/*
 * bootstrap: bring a checkout to a built, testable state, doing only what is out of date.
 * Plain Node.js (no dependencies): it runs before `npm install` on a fresh clone.
 *
 *   node scripts/bootstrap.js              system check, npm deps, tsc, native addon (cmake-js)
 *   node scripts/bootstrap.js --test       ... plus what `npm test` needs: the test-only system
 *                                          packages and the node-gyp build in build-gyp/
 *   node scripts/bootstrap.js --with-gyp   ... and the node-gyp build in build-gyp/
 *   node scripts/bootstrap.js --gyp-only   only the node-gyp build in build-gyp/
 *   node scripts/bootstrap.js --ts-only    only npm deps and tsc (npm pack's prepack)
 *   add --force to rebuild even when nothing changed
 *
 * Steps (each skipped when its inputs did not change):
 *  1. system: the Debian packages of SYSTEM_PACKAGES below (what each is for, and which test
 *     needs it). On Debian as root, missing ones are installed with apt-get (apt-get update
 *     first); otherwise the exact install command is printed and bootstrap exits with status 1.
 *  2. npm dependencies: `npm ci` when node_modules is missing, `npm install` when it no
 *     longer matches package-lock.json.
 *  3. TypeScript: `tsc` when lib/ or tsconfig.json changed (content hash); files in dist/
 *     whose source is gone are removed.
 *  4. native addon: cmake-js build when native/, CMakeLists.txt, binding.gyp or the build
 *     options changed (content hash; stamp in build/). Without cmake: node-gyp.
 *
 * Build options (environment): SCIRE_WITH_CUDA=AUTO|ON|OFF, SCIRE_CUDA_ARCHITECTURES,
 * LIBTORCH or Torch_DIR (another LibTorch), CUDACXX (nvcc), SCIRE_BUILD_SYSTEM=cmake-js|node-gyp,
 * SCIRE_BUILD_JOBS (default: number of CPUs), SCIRE_SKIP_SYSTEM_CHECK=1.
 */
'use strict';

const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { readJsonOr: readJson, safeReaddir, which } = require('./prebuilt');

const ROOT = path.resolve(__dirname, '..');
const BUILD_DIR = path.join(ROOT, 'build');
const GYP_DIR = path.join(ROOT, 'build-gyp');
const STAMP_FILE = path.join(BUILD_DIR, 'scire-bootstrap-stamps.json');
const GYP_STAMP_FILE = path.join(GYP_DIR, 'scire-bootstrap-stamp.json');
/** Inputs of the native build (besides the build options). */
const NATIVE_INPUTS = ['native', 'CMakeLists.txt', 'binding.gyp'];
/** Environment variables that change the native build. */
const BUILD_ENV = ['SCIRE_WITH_CUDA', 'SCIRE_CUDA_ARCHITECTURES', 'LIBTORCH', 'Torch_DIR', 'CUDACXX', 'CUDA_HOME', 'SCIRE_BUILD_SYSTEM'];

const argv = new Set(process.argv.slice(2));
for (const a of argv) {
  if (!['--test', '--with-gyp', '--gyp-only', '--ts-only', '--force', '--quiet'].includes(a)) {
    console.error(`bootstrap: unknown option '${a}' (allowed: --test, --with-gyp, --gyp-only, --ts-only, --force, --quiet)`);
    process.exit(2);
  }
}
const FORCE = argv.has('--force');
const FOR_TESTS = argv.has('--test');
const QUIET = argv.has('--quiet');
const JOBS = Math.max(1, Number(process.env.SCIRE_BUILD_JOBS) || os.cpus().length || 1);

function log(msg) {
  if (!QUIET) console.log(`[bootstrap] ${msg}`);
}

class BootstrapError extends Error {}

// ---------------------------------------------------------------- helpers
/** sha256 over the named files/folders (recursive, sorted; path and content) plus extra strings. */
function hashInputs(relPaths, extra = []) {
  const h = crypto.createHash('sha256');
  const visit = (rel) => {
    const abs = path.join(ROOT, rel);
    let st;
    try {
      st = fs.statSync(abs);
    } catch {
      h.update(`missing:${rel}\n`);
      return;
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(abs).sort()) visit(path.join(rel, name));
    } else if (st.isFile()) {
      h.update(`file:${rel}:${st.size}\n`);
      h.update(fs.readFileSync(abs));
    }
  };
  relPaths.forEach(visit);
  for (const e of extra) h.update(`extra:${e}\n`);
  return h.digest('hex');
}

function writeJson(file, value) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** Run a command with inherited stdio (or tee'd into logFile); throws on failure. */
function run(cmd, args, { cwd = ROOT, env = process.env, logFile } = {}) {
  const shown = [cmd, ...args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ');
  log(`$ ${shown}${cwd !== ROOT ? `   (in ${path.relative(ROOT, cwd) || '.'})` : ''}`);
  if (!logFile) {
    const r = childProcess.spawnSync(cmd, args, { cwd, env, stdio: 'inherit' });
    if (r.error) throw new BootstrapError(`could not run ${cmd}: ${r.error.message}`);
    if (r.status !== 0) throw new BootstrapError(`'${shown}' failed with exit status ${r.status ?? r.signal}`);
    return;
  }
  // Show the output and keep a copy in logFile.
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.writeFileSync(logFile, '');
  const r = childProcess.spawnSync('bash', ['-o', 'pipefail', '-c', '"$@" 2>&1 | tee -a "$SCIRE_LOGFILE"', 'run', cmd, ...args], {
    cwd,
    env: { ...env, SCIRE_LOGFILE: logFile },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.error) throw new BootstrapError(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new BootstrapError(`'${shown}' failed with exit status ${r.status ?? r.signal} (log: ${path.relative(ROOT, logFile)})`);
  }
}

/** Cross-process lock (another bootstrap may be building in the same checkout). */
function withLock(lockDir, fn) {
  fs.mkdirSync(path.dirname(lockDir), { recursive: true });
  const deadline = Date.now() + 30 * 60 * 1000;
  let announced = false;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const pid = Number(readFileOr(path.join(lockDir, 'pid'), '0'));
      if (pid > 0 && !isAlive(pid)) {
        fs.rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new BootstrapError(`timed out waiting for ${lockDir} (held by pid ${pid})`);
      if (!announced) log(`waiting for another bootstrap (pid ${pid}) to finish...`);
      announced = true;
      childProcess.spawnSync('sleep', ['1']);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

function readFileOr(file, fallback) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** The folder whose include/node holds the running Node's headers (node-gyp's --nodedir). */
function localNodeDir() {
  const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..')];
  for (const dir of candidates) {
    if (dir && fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')) && fs.existsSync(path.join(dir, 'include', 'node', 'common.gypi'))) {
      return dir;
    }
  }
  return null;
}

// ---------------------------------------------------------------- 1. system
function findSystemLibTorch() {
  const dirs = ['/usr/lib', '/usr/local/lib'];
  for (const base of dirs) {
    for (const sub of ['', ...safeReaddir(base)]) {
      if (fs.existsSync(path.join(base, sub, 'cmake', 'Torch', 'TorchConfig.cmake'))) {
        return fs.existsSync('/usr/include/torch/script.h') || fs.existsSync('/usr/local/include/torch/script.h')
          ? path.join(base, sub, 'cmake', 'Torch')
          : null;
      }
    }
  }
  return null;
}

/**
 * Every system package the build and `npm test` use, with who needs it. `tests: true` rows are
 * checked only for `npm test` (--test). Test files that run an external program or read a
 * system path: test/benchmarks-smoke.test.ts (/usr/bin/python3 + torch for benchmarks/fid.py,
 * /usr/share/datasets/fashion-mnist for benchmarks/fid.ts), test/image-io.test.ts (numpy in
 * /usr/bin/python3), test/native-gyp-build.test.ts (node-gyp: python3, make, g++),
 * test/install-consumer.test.ts (release: cmake-js build tools, readelf), every native test
 * (LibTorch).
 */
const SYSTEM_PACKAGES = [
  { pkg: 'g++', what: 'a C++17 compiler', usedBy: 'the addon build (cmake-js, node-gyp)', present: () => which(process.env.CXX || 'g++') || which('c++') },
  { pkg: 'make', what: 'make', usedBy: 'the addon build (cmake-js without ninja, node-gyp)', present: () => which('make') },
  { pkg: 'cmake', what: 'CMake', usedBy: 'the primary addon build (cmake-js); scripts/release.js', cmakeOnly: true, present: () => which('cmake') },
  { pkg: 'python3', what: 'python3', usedBy: 'node-gyp (test/native-gyp-build.test.ts, npm run build:gyp)', present: () => which('python3') },
  { pkg: 'binutils', what: 'readelf', usedBy: 'scripts/release.js (a cpu binary must not link libcudart; test/install-consumer.test.ts)', present: () => which('readelf') },
  {
    pkg: 'libtorch-dev',
    what: 'LibTorch (C++ PyTorch)',
    usedBy: 'the addon: every native test, npm run demo',
    present: () => process.env.LIBTORCH || process.env.Torch_DIR || findSystemLibTorch(),
  },
  {
    pkg: 'python3-torch',
    what: '/usr/bin/python3 with torch and numpy',
    usedBy: 'test/benchmarks-smoke.test.ts (benchmarks/fid.py), test/image-io.test.ts (numpy.load), test/classifier-guidance-fmnist.test.ts (benchmarks/label_samples.py), test/train-fmnist.test.ts (models/train_fmnist.py)',
    tests: true,
    present: () => childProcess.spawnSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0,
  },
  {
    pkg: 'dataset-fashion-mnist',
    what: 'the Fashion-MNIST data set (/usr/share/datasets/fashion-mnist)',
    usedBy: 'test/benchmarks-smoke.test.ts (benchmarks/fid.ts reference statistics), test/inpaint.test.ts (test images to inpaint), test/train-fmnist.test.ts (training data)',
    tests: true,
    present: () => fs.existsSync('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'),
  },
  {
    pkg: 'redis-server',
    what: 'redis-server and redis-cli (Redis 7)',
    usedBy: 'test/scaleout.test.ts, test/scaleout-bench.test.ts (a throwaway server: lib/testing/redis-server.ts), benchmarks/scaleout.ts',
    tests: true,
    present: () => process.env.REDIS_SERVER || (which('redis-server') && which('redis-cli')),
  },
];

function checkSystem(needCmake, forTests) {
  if (process.env.SCIRE_SKIP_SYSTEM_CHECK === '1') return;
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 18) throw new BootstrapError(`Node.js >= 18 is required (this is ${process.version})`);

  const torchFromEnv = process.env.LIBTORCH || process.env.Torch_DIR;
  if (torchFromEnv && !fs.existsSync(torchFromEnv)) throw new BootstrapError(`LibTorch folder '${torchFromEnv}' (from LIBTORCH / Torch_DIR) does not exist`);
  const missing = SYSTEM_PACKAGES.filter((p) => (!p.cmakeOnly || needCmake) && (!p.tests || forTests) && !p.present());
  if (missing.length === 0) return;

  const pkgs = missing.map((p) => p.pkg);
  const what = missing.map((p) => `${p.what} (${p.pkg}: ${p.usedBy})`).join('; ');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const apt = which('apt-get');
  if (apt && isRoot) {
    log(`missing: ${what}; installing with apt-get: ${pkgs.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    run('apt-get', ['update'], { env });
    run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env });
    return;
  }
  const sudo = which('sudo') ? 'sudo ' : '';
  const how = apt
    ? `  ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${pkgs.join(' ')}`
    : `  install the Debian/Ubuntu packages ${pkgs.join(' ')} or their equivalents\n  (LibTorch: or point LIBTORCH at an unzipped LibTorch from https://pytorch.org)`;
  throw new BootstrapError(`this machine lacks:\n  ${missing.map((p) => `${p.what} (${p.pkg}: ${p.usedBy})`).join('\n  ')}\nInstall ${missing.length > 1 ? 'them' : 'it'}, then run the command again:\n${how}`);
}

// ---------------------------------------------------------------- 2. npm dependencies
/** Why node_modules does not match package-lock.json (null when it does). */
function npmDepsOutOfDate() {
  const nm = path.join(ROOT, 'node_modules');
  if (!fs.existsSync(nm)) return 'node_modules is missing';
  const lock = readJson(path.join(ROOT, 'package-lock.json'), null);
  const hidden = readJson(path.join(nm, '.package-lock.json'), null); // written by npm install/ci
  if (!lock) {
    const pkg = readJson(path.join(ROOT, 'package.json'), {});
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })) {
      if (!fs.existsSync(path.join(nm, name, 'package.json'))) return `${name} is not installed`;
    }
    return null;
  }
  if (!hidden) return 'node_modules was not installed by npm';
  for (const [key, entry] of Object.entries(lock.packages || {})) {
    if (!key.startsWith('node_modules/')) continue;
    const got = hidden.packages && hidden.packages[key];
    if (!got) {
      if (entry.optional || entry.peer) continue; // optional platform packages are absent elsewhere
      return `${key.slice('node_modules/'.length)} is not installed`;
    }
    if (entry.version && got.version !== entry.version) return `${key.slice('node_modules/'.length)} is ${got.version}, package-lock.json wants ${entry.version}`;
  }
  return null;
}

function npmCommand() {
  // Under `npm run`, use the same npm; otherwise the one on PATH.
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.js$/.test(execPath)) return [process.execPath, [execPath]];
  return ['npm', []];
}

function ensureNpmDeps() {
  const why = npmDepsOutOfDate();
  if (!why) return;
  const [cmd, pre] = npmCommand();
  const fresh = !fs.existsSync(path.join(ROOT, 'node_modules')) && fs.existsSync(path.join(ROOT, 'package-lock.json'));
  log(`npm dependencies: ${why}`);
  run(cmd, [...pre, fresh ? 'ci' : 'install', '--no-audit', '--no-fund']);
}

// ---------------------------------------------------------------- 3. TypeScript
function ensureTypeScript(stamps) {
  const hash = hashInputs(['lib', 'tsconfig.json']);
  if (!FORCE && stamps.tsc === hash && fs.existsSync(path.join(ROOT, 'dist'))) return copyDataFiles();
  log('TypeScript: lib/ changed, compiling to dist/');
  run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  pruneDist();
  copyDataFiles();
  stamps.tsc = hash;
}

/** Data files that dist/ needs beside the compiled code (tsc copies only .ts output). */
const DIST_DATA_FILES = ['presets/auto-table.json']; // preset 'auto' (lib/presets/auto.ts)

function copyDataFiles() {
  for (const rel of DIST_DATA_FILES) fs.copyFileSync(path.join(ROOT, 'lib', rel), path.join(ROOT, 'dist', rel));
}

/** Removes dist/ files whose lib/ source is gone (they would otherwise ship in npm pack). */
function pruneDist(rel = '') {
  for (const name of safeReaddir(path.join(ROOT, 'dist', rel))) {
    const r = path.join(rel, name);
    const abs = path.join(ROOT, 'dist', r);
    if (fs.statSync(abs).isDirectory()) {
      pruneDist(r);
      if (safeReaddir(abs).length === 0) fs.rmdirSync(abs);
      continue;
    }
    const stem = r.replace(/(\.d\.ts|\.js)(\.map)?$/, '');
    if (stem !== r && !fs.existsSync(path.join(ROOT, 'lib', `${stem}.ts`))) {
      log(`dist/${r}: its source is gone, removing it`);
      fs.rmSync(abs);
    }
  }
}

// ---------------------------------------------------------------- 4. native addon
function buildOptions() {
  return BUILD_ENV.map((k) => `${k}=${process.env[k] ?? ''}`);
}

function cmakeDefines() {
  const d = [];
  if (process.env.SCIRE_WITH_CUDA) d.push(`--CDSCIRE_WITH_CUDA=${process.env.SCIRE_WITH_CUDA}`);
  if (process.env.SCIRE_CUDA_ARCHITECTURES) d.push(`--CDSCIRE_CUDA_ARCHITECTURES=${process.env.SCIRE_CUDA_ARCHITECTURES}`);
  if (process.env.LIBTORCH) d.push(`--CDLIBTORCH=${process.env.LIBTORCH}`);
  if (process.env.Torch_DIR) d.push(`--CDTorch_DIR=${process.env.Torch_DIR}`);
  return d;
}

function chooseBuildSystem() {
  const wanted = process.env.SCIRE_BUILD_SYSTEM;
  if (wanted && wanted !== 'cmake-js' && wanted !== 'node-gyp') {
    throw new BootstrapError(`SCIRE_BUILD_SYSTEM must be 'cmake-js' or 'node-gyp' (got '${wanted}')`);
  }
  if (wanted) return wanted;
  return which('cmake') ? 'cmake-js' : 'node-gyp';
}

/** node-gyp configure + build: incremental (make), re-globbing the sources in configure. */
function runNodeGyp(nodeDir, opts) {
  const nodeGyp = path.join(ROOT, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  run(process.execPath, [nodeGyp, 'configure', `--nodedir=${nodeDir}`], opts);
  run(process.execPath, [nodeGyp, 'build', `--nodedir=${nodeDir}`, '-j', String(JOBS)], { ...opts, logFile: opts.logFile.replace(/\.log$/, '-compile.log') });
}

function requireNodeDir() {
  const nodeDir = localNodeDir();
  if (!nodeDir) {
    throw new BootstrapError(
      `node-gyp needs the headers of this Node.js (${process.version}) in <prefix>/include/node (with common.gypi); ` +
        `none found next to ${process.execPath}. Set npm_config_nodedir=<prefix> or install Node.js with its headers.`,
    );
  }
  return nodeDir;
}

function ensureNativeAddon(stamps) {
  const builder = chooseBuildSystem();
  const options = buildOptions();
  const hash = hashInputs(NATIVE_INPUTS, [...options, `builder=${builder}`, `node-addon-api=${readJson(path.join(ROOT, 'node_modules', 'node-addon-api', 'package.json'), {}).version}`, `version=${readJson(path.join(ROOT, 'package.json'), {}).version}`]);
  const output = path.join(BUILD_DIR, 'Release', 'scire.node');
  const prev = stamps.native || {};
  if (!FORCE && prev.hash === hash && fs.existsSync(output)) return;
  log(`native addon: ${fs.existsSync(output) ? 'sources or build options changed' : 'not built yet'}; building with ${builder}`);
  const logFile = path.join(ROOT, 'build-logs', 'native-build.log');
  if (builder === 'cmake-js') {
    const cmakeJs = path.join(ROOT, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
    const configured = fs.existsSync(path.join(BUILD_DIR, 'CMakeCache.txt'));
    const optionsChanged = JSON.stringify(prev.options || null) !== JSON.stringify(options) || prev.builder !== builder;
    if (!configured || optionsChanged) {
      run(process.execPath, [cmakeJs, 'configure', ...cmakeDefines()], { logFile });
    }
    run(process.execPath, [cmakeJs, 'build', '--parallel', String(JOBS), ...cmakeDefines()], { logFile: logFile.replace(/\.log$/, '-compile.log') });
  } else {
    runNodeGyp(requireNodeDir(), { logFile });
  }
  if (!fs.existsSync(output)) throw new BootstrapError(`the build finished but ${path.relative(ROOT, output)} is missing`);
  // cmake-js also builds the testing addon (tests and benchmarks; never shipped).
  const testing = path.join(BUILD_DIR, 'Release', 'scire_testing.node');
  if (builder === 'cmake-js' && !fs.existsSync(testing)) {
    throw new BootstrapError(`the build finished but ${path.relative(ROOT, testing)} is missing`);
  }
  stamps.native = { hash, builder, options };
}

/** node-gyp build into build-gyp/ (a staging folder of links), leaving build/ to cmake-js. */
function ensureGypAddon() {
  const hash = hashInputs(NATIVE_INPUTS, [`LIBTORCH=${process.env.LIBTORCH ?? ''}`, `version=${readJson(path.join(ROOT, 'package.json'), {}).version}`]);
  const output = path.join(GYP_DIR, 'build', 'Release', 'scire.node');
  if (!FORCE && readJson(GYP_STAMP_FILE, {}).hash === hash && fs.existsSync(output)) return;
  log('node-gyp addon (build-gyp/): sources changed or not built yet');
  const nodeDir = requireNodeDir();
  fs.mkdirSync(GYP_DIR, { recursive: true });
  for (const name of ['binding.gyp', 'native', 'node_modules', 'package.json']) {
    const link = path.join(GYP_DIR, name);
    fs.rmSync(link, { recursive: true, force: true });
    fs.symlinkSync(path.join('..', name), link);
  }
  runNodeGyp(nodeDir, { cwd: GYP_DIR, logFile: path.join(ROOT, 'build-logs', 'gyp-build.log') });
  if (!fs.existsSync(output)) throw new BootstrapError(`node-gyp finished but ${path.relative(ROOT, output)} is missing`);
  writeJson(GYP_STAMP_FILE, { hash });
}

// ---------------------------------------------------------------- main
function main() {
  const t0 = Date.now();
  if (argv.has('--gyp-only')) {
    withLock(path.join(ROOT, 'build-logs', '.gyp-lock'), ensureGypAddon);
  } else if (argv.has('--ts-only')) {
    withLock(path.join(ROOT, 'build-logs', '.bootstrap-lock'), () => {
      ensureNpmDeps();
      const stamps = readJson(STAMP_FILE, {});
      try {
        ensureTypeScript(stamps);
      } finally {
        writeJson(STAMP_FILE, { ...readJson(STAMP_FILE, {}), tsc: stamps.tsc });
      }
    });
  } else {
    const builder = chooseBuildSystem();
    checkSystem(builder === 'cmake-js', FOR_TESTS);
    withLock(path.join(ROOT, 'build-logs', '.bootstrap-lock'), () => {
      ensureNpmDeps();
      const stamps = readJson(STAMP_FILE, {});
      try {
        ensureTypeScript(stamps);
        ensureNativeAddon(stamps);
      } finally {
        writeJson(STAMP_FILE, stamps);
      }
    });
    if (argv.has('--with-gyp') || FOR_TESTS) withLock(path.join(ROOT, 'build-logs', '.gyp-lock'), ensureGypAddon);
  }
  log(`up to date (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

try {
  main();
} catch (e) {
  if (e instanceof BootstrapError) {
    console.error(`[bootstrap] ${e.message}`);
    process.exit(1);
  }
  throw e;
}
