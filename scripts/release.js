#!/usr/bin/env node
/*
 * release: the files of a scire-solver release, written into one folder.
 *
 *   npm run release -- --out DIR [--variants cpu,cuda13] [--from-build] [--no-pack]
 *
 * For every variant this machine can build (cpu: a LibTorch without CUDA, Debian's
 * libtorch-dev by default; cudaNN: a CUDA LibTorch (LIBTORCH, or python3's pip torch) plus
 * nvcc) it builds scire.node with cmake-js in build-release/<variant>/ (incremental), checks
 * that it loads and is what it claims (variant, version; a cpu binary must not link
 * libcudart), and writes DIR/scire-solver-v<version>-napi-v8-<platform>-<arch>-<variant>.tar.gz
 * (scire.node + binary.json). Archives of other variants already in DIR and listed in
 * DIR/manifest.json (e.g. a cuda13 one built on a GPU machine with --no-pack) are kept after
 * their SHA-256 is checked. Then it writes the manifest (DIR/manifest.json, DIR/SHA256SUMS
 * and prebuilds/manifest.json) and runs `npm pack` into DIR: the package tarball carries the
 * manifest, so the install step can verify every binary. prebuilds/manifest.json is removed
 * from the checkout afterwards.
 *
 *   --variants LIST  only these (default: every variant this machine can build)
 *   --from-build     cpu: take build/Release/scire.node (the bootstrap's build) instead of
 *                    building again; it must pass the same checks
 *   --no-pack        binaries and manifest only (e.g. on the GPU machine: scripts/gpu-release.sh)
 * Environment: LIBTORCH (the LibTorch of a variant), SCIRE_BUILD_JOBS, and for the plain-CMake
 * build (no cmake-js installed) NODE_INCLUDE and SCIRE_CMAKE_ARGS (extra -D options).
 */
'use strict';

const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const P = require('./prebuilt');

const ROOT = P.ROOT;

function log(msg) {
  console.log(`[release] ${msg}`);
}

class ReleaseError extends Error {}

function parseArgs(argv) {
  const out = { out: null, variants: null, fromBuild: false, pack: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') out.out = argv[++i];
    else if (a === '--variants') out.variants = (argv[++i] || '').split(',').filter(Boolean);
    else if (a === '--from-build') out.fromBuild = true;
    else if (a === '--no-pack') out.pack = false;
    else throw new ReleaseError(`unknown option '${a}' (allowed: --out DIR, --variants cpu,cudaNN, --from-build, --no-pack)`);
  }
  if (!out.out) throw new ReleaseError('--out DIR is required');
  for (const v of out.variants || []) if (!P.VARIANT_RE.test(v)) throw new ReleaseError(`--variants: '${v}' is not cpu or cudaNN`);
  return out;
}

function findNvcc() {
  return P.which('nvcc') || [process.env.CUDACXX, '/usr/local/cuda/bin/nvcc', process.env.CUDA_HOME && path.join(process.env.CUDA_HOME, 'bin', 'nvcc')].find((f) => f && fs.existsSync(f)) || null;
}

/** Variants this machine can build: { variant -> { libtorch: dir | null } }. */
function buildableVariants() {
  const out = new Map();
  const lt = P.findLibTorch({ tryPython: true });
  if (lt && lt.cuda && fs.existsSync(path.join(lt.dir, 'share', 'cmake', 'Torch')) && findNvcc()) {
    out.set(`cuda${lt.cuda.split('.')[0]}`, { libtorch: lt.dir });
  }
  if (process.env.LIBTORCH && lt && !lt.cuda) out.set('cpu', { libtorch: lt.dir });
  else if (P.systemLibTorchDev()) out.set('cpu', { libtorch: null });
  return out;
}

function run(cmd, args, opts = {}) {
  log(`$ ${[cmd, ...args].join(' ')}`);
  const r = childProcess.spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new ReleaseError(`${path.basename(cmd)} ${args[0] || ''} failed (exit status ${r.status ?? r.signal})`);
}

/**
 * Builds one variant into build-release/<variant>/Release/scire.node: with cmake-js when it is
 * installed, else with plain CMake and the running Node's headers (<prefix>/include/node, or
 * $NODE_INCLUDE), which is what a machine without npm (the GPU machine) has.
 */
function buildVariant(variant, spec) {
  const out = path.join(ROOT, 'build-release', variant);
  const defs = { SCIRE_WITH_CUDA: variant === 'cpu' ? 'OFF' : 'ON' };
  if (spec.libtorch) defs.LIBTORCH = spec.libtorch;
  const jobs = String(Math.max(1, Number(process.env.SCIRE_BUILD_JOBS) || os.cpus().length || 1));
  const cmakeJs = path.join(ROOT, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
  if (fs.existsSync(cmakeJs)) {
    run(process.execPath, [cmakeJs, 'build', '--out', out, '--target', 'scire', '--parallel', jobs, ...Object.entries(defs).map(([k, v]) => `--CD${k}=${v}`)]);
  } else {
    const nodeInclude = process.env.NODE_INCLUDE || path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node');
    if (!fs.existsSync(path.join(nodeInclude, 'node_api.h'))) throw new ReleaseError(`no cmake-js and no node_api.h in ${nodeInclude}: set NODE_INCLUDE`);
    Object.assign(defs, { CMAKE_BUILD_TYPE: 'Release', NODE_INCLUDE_DIR: nodeInclude, CMAKE_LIBRARY_OUTPUT_DIRECTORY: path.join(out, 'Release') });
    const gen = P.which('ninja') ? ['-G', 'Ninja'] : [];
    const extra = (process.env.SCIRE_CMAKE_ARGS || '').split(/\s+/).filter(Boolean); // e.g. -DCUDAToolkit_ROOT=...
    run('cmake', ['-S', ROOT, '-B', out, ...gen, ...Object.entries(defs).map(([k, v]) => `-D${k}=${v}`), ...extra]);
    run('cmake', ['--build', out, '--parallel', jobs, '--target', 'scire']);
  }
  return path.join(out, 'Release', 'scire.node');
}

/** ELF NEEDED entries (readelf), or null when readelf is missing. */
function neededLibs(file) {
  const r = childProcess.spawnSync('readelf', ['-d', file], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

function buildInfoOf(file, libtorch) {
  const code =
    `const n = require(${JSON.stringify(path.join(ROOT, 'dist', 'native.js'))});` +
    'const b = n.loadNativeFrom(process.argv[1], process.argv[2] || undefined);' +
    'console.log(JSON.stringify({ info: b.buildInfo(), maps: require("fs").readFileSync("/proc/self/maps", "utf8") }));';
  const r = childProcess.spawnSync(process.execPath, ['-e', code, file, libtorch ? path.join(libtorch, 'lib') : ''], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new ReleaseError(`${file} does not load: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  const { info, maps } = JSON.parse(r.stdout);
  const m = /\s(\/\S*\/libtorch_cpu\.so[^\s]*)\n/.exec(maps);
  return { info, libtorchFile: m ? m[1] : '' };
}

/** What the binary needs at run time, in words (binary.json "needs", shown by the loader and the install step). */
function runtimeNeeds(variant, info, libtorchFile) {
  if (variant === 'cpu' && libtorchFile.startsWith('/usr/')) {
    const r = childProcess.spawnSync('dpkg', ['-S', fs.realpathSync(libtorchFile)], { encoding: 'utf8' });
    const pkg = r.status === 0 ? r.stdout.split(':')[0].trim() : '';
    return pkg
      ? `the system LibTorch ${info.torchVersion} (Debian/Ubuntu: apt-get install ${pkg})`
      : `the system LibTorch ${info.torchVersion} (${path.basename(libtorchFile)} on the library path)`;
  }
  const cuda = variant === 'cpu' ? '' : ` with CUDA ${variant.slice(4)}`;
  return (
    `LibTorch ${info.torchVersion}${cuda} (the same torch version as a pip wheel: set LIBTORCH to its folder, ` +
    `python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))', or let the install step find python3's torch)`
  );
}

function makeArchive(variant, file, spec, version, outDir) {
  const { info, libtorchFile } = buildInfoOf(file, spec.libtorch);
  if (info.version !== version) throw new ReleaseError(`${file} is version ${info.version}, package.json says ${version}: rebuild it`);
  if ((info.variant || 'cpu') !== variant) throw new ReleaseError(`${file} is the ${info.variant} variant, not ${variant}`);
  const needed = neededLibs(file);
  if (variant === 'cpu' && needed && needed.some((n) => /cudart|libcuda\b/.test(n))) {
    throw new ReleaseError(`${file} links ${needed.filter((n) => /cud/.test(n)).join(', ')}: a cpu binary must not (build it with SCIRE_WITH_CUDA=OFF)`);
  }
  if (variant !== 'cpu' && !(info.cuda && info.torchCuda)) throw new ReleaseError(`${file}: the ${variant} binary has no CUDA (cuda ${info.cuda}, torchCuda ${info.torchCuda})`);
  const meta = {
    package: 'scire-solver',
    version,
    variant,
    platform: process.platform,
    arch: process.arch,
    napi: P.NAPI_VERSION,
    libtorch: info.torchVersion,
    builtAgainst: libtorchFile ? path.dirname(libtorchFile) : '',
    cudaArchitectures: info.cudaArchitectures,
    needed: needed || [],
    needs: runtimeNeeds(variant, info, libtorchFile),
  };
  const archive = P.packTarGz([
    { name: 'binary.json', data: Buffer.from(JSON.stringify(meta, null, 2) + '\n') },
    { name: 'scire.node', data: fs.readFileSync(file), mode: 0o755 },
  ]);
  const name = P.archiveName({ version, variant });
  fs.writeFileSync(path.join(outDir, name), archive);
  log(`${name}: ${(archive.length / 1048576).toFixed(1)} MiB, LibTorch ${info.torchVersion}, needs ${meta.needs}`);
  return { file: name, platform: process.platform, arch: process.arch, napi: P.NAPI_VERSION, variant, sha256: P.sha256(archive), size: archive.length, libtorch: info.torchVersion, needs: meta.needs };
}

/** Entries of DIR/manifest.json (same version) whose archive is in DIR with the listed SHA-256. */
function carriedOver(outDir, version, built) {
  const prev = P.readJsonOr(path.join(outDir, 'manifest.json'), null);
  if (!prev || prev.version !== version) return [];
  const keep = [];
  for (const b of prev.binaries || []) {
    if (built.has(b.file)) continue;
    const f = path.join(outDir, b.file);
    if (!fs.existsSync(f)) continue;
    if (P.sha256(fs.readFileSync(f)) !== b.sha256) throw new ReleaseError(`${f} does not match the SHA-256 in ${path.join(outDir, 'manifest.json')}`);
    log(`keeping ${b.file} (built elsewhere, SHA-256 checked)`);
    keep.push(b);
  }
  return keep;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const outDir = path.resolve(args.out);
  fs.mkdirSync(outDir, { recursive: true });
  const version = P.packageJson().version;
  if (!fs.existsSync(path.join(ROOT, 'dist', 'native.js'))) run(process.execPath, [path.join(ROOT, 'scripts', 'bootstrap.js'), '--ts-only']);

  const canBuild = buildableVariants();
  const variants = args.variants || [...canBuild.keys()];
  if (variants.length === 0) throw new ReleaseError('this machine can build no variant: it needs libtorch-dev (cpu) or a CUDA LibTorch with nvcc (cudaNN)');
  const entries = [];
  for (const v of variants) {
    const spec = canBuild.get(v);
    if (!spec) throw new ReleaseError(`cannot build ${v} here (buildable: ${[...canBuild.keys()].join(', ') || 'none'})`);
    const t0 = Date.now();
    const file = args.fromBuild && v === 'cpu' ? path.join(ROOT, 'build', 'Release', 'scire.node') : buildVariant(v, spec);
    if (!fs.existsSync(file)) throw new ReleaseError(`${file} is missing${args.fromBuild ? ' (run npm run build first)' : ''}`);
    entries.push(makeArchive(v, file, spec, version, outDir));
    log(`${v}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const built = new Set(entries.map((e) => e.file));
  const binaries = [...entries, ...carriedOver(outDir, version, built)].sort((a, b) => a.file.localeCompare(b.file));
  const manifest = { package: 'scire-solver', version, napi: P.NAPI_VERSION, binaries };
  const text = JSON.stringify(manifest, null, 2) + '\n';
  fs.writeFileSync(path.join(outDir, 'manifest.json'), text);
  fs.writeFileSync(path.join(outDir, 'SHA256SUMS'), binaries.map((b) => `${b.sha256}  ${b.file}\n`).join(''));
  if (!args.pack) {
    log(`wrote ${binaries.length} binaries and manifest.json to ${outDir} (no package tarball: --no-pack)`);
    return;
  }
  fs.mkdirSync(P.PREBUILDS, { recursive: true });
  fs.writeFileSync(P.MANIFEST_FILE, text);
  try {
    const npm = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath) ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
    run(npm[0], [...npm[1], 'pack', '--pack-destination', outDir]);
  } finally {
    fs.rmSync(P.MANIFEST_FILE, { force: true });
  }
  const tgz = path.join(outDir, `scire-solver-${version}.tgz`);
  if (!fs.existsSync(tgz)) throw new ReleaseError(`npm pack did not write ${tgz}`);
  log(`wrote ${path.basename(tgz)} and ${binaries.length} binar${binaries.length === 1 ? 'y' : 'ies'} (${binaries.map((b) => b.variant).join(', ')}) to ${outDir}`);
}

try {
  main();
} catch (e) {
  if (e instanceof ReleaseError) {
    console.error(`[release] ERROR: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
