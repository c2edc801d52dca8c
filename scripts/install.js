#!/usr/bin/env node
/*
 * The install step of the scire-solver npm package (package.json "install"; `npm rebuild
 * scire-solver` runs it again). Plain Node.js, no dependencies.
 *
 *  1. Picks the variant: SCIRE_VARIANT=cpu|cuda12|cuda13|auto (default auto: an NVIDIA
 *     driver and a CUDA LibTorch (LIBTORCH, or the pip torch of python3) -> cudaNN for that
 *     LibTorch's CUDA major; otherwise cpu).
 *  2. Keeps a working install of that variant (a second install / `npm rebuild` is a no-op).
 *  3. Downloads scire-solver-v<version>-napi-v8-<platform>-<arch>-<variant>.tar.gz from
 *     SCIRE_BINARY_HOST (http://, https:// or file:// URL of a folder, or a local folder),
 *     (or takes it from the cache of verified archives, SCIRE_CACHE_DIR, default
 *     <npm cache>/_scire-prebuilds, so `npm ci` works without the host),
 *     checks its SHA-256 against prebuilds/manifest.json (shipped in the package), unpacks it
 *     into a staging folder, loads it in a child process, and only then moves it to
 *     prebuilds/<platform>-<arch>-<variant>/ and writes prebuilds/install.json.
 *  4. Otherwise (no binary for this variant, checksum mismatch, host unreachable, binary does
 *     not load, or SCIRE_BUILD_FROM_SOURCE=1) builds from source with cmake-js when a C++
 *     compiler, CMake, make and a LibTorch with headers are present (cmake-js and
 *     node-addon-api are fetched with npm into .build-tools/ when the app does not have them).
 *  5. Else exits with status 1 and the exact packages / commands that would make it work.
 *
 * In the project's own git checkout it does nothing (scripts/bootstrap.js builds there).
 */
'use strict';

const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const https = require('https');
const os = require('os');
const path = require('path');
const { fileURLToPath } = require('url');
const P = require('./prebuilt');

const ROOT = P.ROOT;
const env = process.env;

function log(msg) {
  process.stderr.write(`[scire-solver install] ${msg}\n`);
}

class InstallError extends Error {}

function isDevelopmentCheckout() {
  return fs.existsSync(path.join(ROOT, 'tsconfig.json')) && !ROOT.split(path.sep).includes('node_modules');
}

// ---------------------------------------------------------------- variant
/** { variant, why, libtorch } where libtorch is the LibTorch a cudaNN binary will run on. */
function chooseVariant() {
  const wanted = String(env.SCIRE_VARIANT || env.npm_config_scire_variant || 'auto').toLowerCase();
  if (wanted !== 'auto' && !P.VARIANT_RE.test(wanted)) {
    throw new InstallError(`SCIRE_VARIANT must be cpu, cuda12, cuda13 (any cudaNN) or auto; got '${wanted}'`);
  }
  if (wanted === 'cpu') return { variant: 'cpu', why: 'SCIRE_VARIANT=cpu', libtorch: null };
  if (wanted !== 'auto') {
    return { variant: wanted, why: `SCIRE_VARIANT=${wanted}`, libtorch: P.findLibTorch({ env, tryPython: true }) };
  }
  if (!P.nvidiaDriverPresent()) return { variant: 'cpu', why: 'auto: no NVIDIA driver on this machine', libtorch: null };
  const lt = P.findLibTorch({ env, tryPython: true });
  if (lt && lt.cuda) {
    const major = lt.cuda.split('.')[0];
    return { variant: `cuda${major}`, why: `auto: NVIDIA driver and a CUDA ${lt.cuda} LibTorch (${lt.source}: ${lt.dir})`, libtorch: lt };
  }
  return {
    variant: 'cpu',
    why: `auto: NVIDIA driver found but no CUDA LibTorch (${lt ? `${lt.source} has no CUDA` : 'set LIBTORCH, or pip install torch for python3'})`,
    libtorch: null,
  };
}

// ---------------------------------------------------------------- checks
/** Loads a scire.node in a child process (through the package's own loader); its buildInfo(), or throws. */
function testLoad(file, libtorchLibDir) {
  const loader = path.join(ROOT, 'dist', 'native.js');
  const code =
    `const n = require(${JSON.stringify(loader)});` +
    'const b = n.loadNativeFrom(process.argv[1], process.argv[2] || undefined);' +
    'process.stdout.write(JSON.stringify(b.buildInfo()));';
  const r = childProcess.spawnSync(process.execPath, ['-e', code, file, libtorchLibDir || ''], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) {
    const msg = (r.stderr || '').split('\n').find((l) => /Error|error:|cannot open/.test(l)) || r.error?.message || `exit status ${r.status}`;
    throw new InstallError(msg.trim());
  }
  return JSON.parse(r.stdout);
}

function writeRecord(record) {
  fs.mkdirSync(P.PREBUILDS, { recursive: true });
  const tmp = `${P.INSTALL_RECORD}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(record, null, 2) + '\n');
  fs.renameSync(tmp, P.INSTALL_RECORD);
}

function libDirFor(choice) {
  if (env.LIBTORCH) return path.join(path.resolve(env.LIBTORCH), 'lib');
  return choice.variant !== 'cpu' && choice.libtorch ? choice.libtorch.libDir : undefined;
}

/** The current install when it is the wanted variant of this version and loads. */
function currentInstallWorks(version, choice) {
  const rec = P.readJsonOr(P.INSTALL_RECORD, null);
  if (!rec || rec.version !== version || rec.variant !== choice.variant) return null;
  const file = path.join(ROOT, rec.file);
  if (!fs.existsSync(file)) return null;
  try {
    testLoad(file, rec.libtorchLibDir);
    return rec;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- download
function download(url, redirects = 5) {
  if (url.startsWith('file:')) return Promise.resolve(fs.readFileSync(fileURLToPath(url)));
  if (!/^https?:\/\//.test(url)) return Promise.resolve(fs.readFileSync(url));
  const timeoutMs = Number(env.SCIRE_DOWNLOAD_TIMEOUT_MS) || 60_000;
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).get(url, { timeout: timeoutMs }, (res) => {
      if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location && redirects > 0) {
        res.resume();
        resolve(download(new URL(res.headers.location, url).toString(), redirects - 1));
        return;
      }
      if (res.statusCode !== 200) {
        res.resume();
        reject(new InstallError(`GET ${url}: HTTP ${res.statusCode}`));
        return;
      }
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', (e) => reject(new InstallError(`GET ${url}: ${e.message}`)));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new InstallError(`GET ${url}: ${e.code || ''} ${e.message}`.replace(/\s+/g, ' '))));
  });
}

function hostUrl(host, file) {
  if (/^[a-z]+:\/\//i.test(host)) return `${host.replace(/\/+$/, '')}/${file}`;
  return path.join(path.resolve(host), file); // a local folder
}

/**
 * Verified archives are kept in a cache (SCIRE_CACHE_DIR, default <npm cache>/_scire-prebuilds)
 * under their SHA-256, so `npm ci` and reinstalls work without the host.
 */
function cacheDir() {
  if (env.SCIRE_CACHE_DIR) return path.resolve(env.SCIRE_CACHE_DIR);
  return path.join(env.npm_config_cache || path.join(os.homedir(), '.npm'), '_scire-prebuilds');
}

function fromCache(entry) {
  const file = path.join(cacheDir(), `${entry.sha256}-${entry.file}`);
  try {
    const buf = fs.readFileSync(file);
    if (P.sha256(buf) === entry.sha256) return { buf, file };
  } catch {
    /* not cached */
  }
  return null;
}

function toCache(entry, buf) {
  try {
    fs.mkdirSync(cacheDir(), { recursive: true });
    const file = path.join(cacheDir(), `${entry.sha256}-${entry.file}`);
    fs.writeFileSync(`${file}.tmp-${process.pid}`, buf);
    fs.renameSync(`${file}.tmp-${process.pid}`, file);
  } catch (e) {
    log(`(could not cache the archive: ${e.message})`);
  }
}

async function installPrebuilt(entry, host, choice, version) {
  let buf;
  let source;
  const cached = fromCache(entry);
  if (cached) {
    buf = cached.buf;
    source = cached.file;
    log(`using ${cached.file} (cached, SHA-256 ok)`);
  } else {
    if (!host) throw new InstallError(`SCIRE_BINARY_HOST is not set (the URL or folder that holds ${entry.file})`);
    const url = hostUrl(host, entry.file);
    source = url.replace(/\/\/[^/@]*@/, '//'); // without credentials
    log(`downloading ${source}`);
    buf = await download(url);
    const got = P.sha256(buf);
    if (got !== entry.sha256) {
      throw new InstallError(`SHA-256 mismatch for ${entry.file}: the manifest says ${entry.sha256}, the download is ${got}; refusing it`);
    }
    log(`SHA-256 ok (${(buf.length / 1048576).toFixed(1)} MiB)`);
    toCache(entry, buf);
  }
  const files = P.unpackTarGz(buf);
  const names = files.map((f) => f.name).sort().join(',');
  if (names !== 'binary.json,scire.node') throw new InstallError(`${entry.file} holds ${names}, expected binary.json and scire.node`);

  fs.mkdirSync(P.PREBUILDS, { recursive: true });
  const stage = fs.mkdtempSync(path.join(P.PREBUILDS, '.staging-'));
  try {
    for (const f of files) fs.writeFileSync(path.join(stage, f.name), f.data, { mode: f.name === 'scire.node' ? 0o755 : 0o644 });
    const libDir = libDirFor(choice);
    let info;
    try {
      info = testLoad(path.join(stage, 'scire.node'), libDir);
    } catch (e) {
      const needs = JSON.parse(files.find((f) => f.name === 'binary.json').data.toString('utf8')).needs;
      throw new InstallError(`the ${entry.variant} binary does not load on this machine: ${e.message}${needs ? `; it needs ${needs}` : ''}`);
    }
    if (info.version !== version) throw new InstallError(`${entry.file} is scire.node ${info.version}, not ${version}`);
    // Swap in: the previous folder (if any) is moved aside first and removed last.
    const finalDir = path.join(ROOT, P.installedDir(entry.variant));
    const old = `${finalDir}.old-${process.pid}`;
    if (fs.existsSync(finalDir)) fs.renameSync(finalDir, old);
    fs.renameSync(stage, finalDir);
    fs.rmSync(old, { recursive: true, force: true });
    writeRecord({
      version,
      variant: entry.variant,
      origin: 'prebuilt',
      file: path.join(P.installedDir(entry.variant), 'scire.node'),
      archive: entry.file,
      sha256: entry.sha256,
      from: source,
      libtorch: info.torchVersion,
      ...(libDir ? { libtorchLibDir: libDir } : {}),
    });
    log(`installed the prebuilt ${entry.variant} binary (LibTorch ${info.torchVersion}) in ${P.installedDir(entry.variant)}`);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- source build
/** What a source build of `variant` lacks here: [[what, Debian package or instruction]]. */
function missingToolchain(choice) {
  const missing = [];
  if (!P.which(env.CXX || 'c++') && !P.which('g++') && !P.which('clang++')) missing.push(['a C++17 compiler', 'g++']);
  if (!P.which('cmake')) missing.push(['CMake >= 3.19', 'cmake']);
  if (!P.which('make') && !P.which('ninja')) missing.push(['make', 'make']);
  if (choice.variant === 'cpu') {
    const lt = env.LIBTORCH ? path.resolve(env.LIBTORCH) : null;
    if (lt ? !fs.existsSync(path.join(lt, 'share', 'cmake', 'Torch', 'TorchConfig.cmake')) : !P.systemLibTorchDev()) {
      missing.push(['LibTorch with headers and CMake config', lt ? `a LibTorch in LIBTORCH=${lt} (no share/cmake/Torch there)` : 'libtorch-dev']);
    }
  } else {
    const lt = choice.libtorch;
    if (!lt || !fs.existsSync(path.join(lt.dir, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'))) {
      missing.push([`a CUDA ${choice.variant.slice(4)} LibTorch`, `pip install torch (built for CUDA ${choice.variant.slice(4)}) or LIBTORCH=<unzipped libtorch>`]);
    }
    const nvcc = P.which('nvcc') || [env.CUDACXX, '/usr/local/cuda/bin/nvcc', env.CUDA_HOME && path.join(env.CUDA_HOME, 'bin', 'nvcc')].find((f) => f && fs.existsSync(f));
    if (!nvcc) missing.push([`nvcc (CUDA toolkit ${choice.variant.slice(4)})`, `the CUDA ${choice.variant.slice(4)} toolkit (nvcc)`]);
  }
  return missing;
}

/** cmake-js and node-addon-api: the app's, else fetched with npm into .build-tools/. */
function buildTools() {
  const paths = [ROOT, env.INIT_CWD, process.cwd()].filter(Boolean);
  const find = (name) => {
    try {
      return path.dirname(require.resolve(`${name}/package.json`, { paths }));
    } catch {
      return null;
    }
  };
  let cmakeJs = find('cmake-js');
  let addonApi = find('node-addon-api');
  if (!cmakeJs || !addonApi) {
    const dev = P.packageJson().devDependencies || {};
    const specs = [`cmake-js@${dev['cmake-js'] || '^8.0.0'}`, `node-addon-api@${dev['node-addon-api'] || '^8.0.0'}`];
    const prefix = path.join(ROOT, '.build-tools');
    log(`fetching the build tools with npm: ${specs.join(' ')} (into ${prefix})`);
    const npmCli = env.npm_execpath && /npm-cli\.js$/.test(env.npm_execpath) ? [process.execPath, [env.npm_execpath]] : ['npm', []];
    const r = childProcess.spawnSync(npmCli[0], [...npmCli[1], 'install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', prefix, ...specs], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...env, npm_config_global: '' },
    });
    if (r.status !== 0) throw new InstallError(`could not fetch ${specs.join(' ')} with npm (is the npm registry reachable?)`);
    cmakeJs = path.join(prefix, 'node_modules', 'cmake-js');
    addonApi = path.join(prefix, 'node_modules', 'node-addon-api');
  }
  return { cmakeJs: path.join(cmakeJs, 'bin', 'cmake-js'), addonApi };
}

async function buildFromSource(choice, version) {
  const tools = buildTools();
  const jobs = Math.max(1, Number(env.SCIRE_BUILD_JOBS) || os.cpus().length || 1);
  const defines = [
    `--CDNODE_ADDON_API_DIR=${tools.addonApi}`,
    `--CDSCIRE_WITH_CUDA=${choice.variant === 'cpu' ? 'OFF' : 'ON'}`,
    '--CDSCIRE_BUILD_TESTING_ADDON=OFF', // an app needs only scire.node
  ];
  const lt = env.LIBTORCH ? path.resolve(env.LIBTORCH) : choice.variant !== 'cpu' && choice.libtorch ? choice.libtorch.dir : null;
  if (lt) defines.push(`--CDLIBTORCH=${lt}`);
  const logFile = path.join(ROOT, 'build', 'scire-install-build.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  log(`building the ${choice.variant} addon from source with cmake-js (${jobs} jobs; a few minutes; log: ${logFile})`);
  const t0 = Date.now();
  // The compiler's output goes to stderr (npm shows it with --foreground-scripts) and to the log.
  const status = await new Promise((resolve) => {
    const logStream = fs.createWriteStream(logFile);
    const child = childProcess.spawn(
      process.execPath,
      [tools.cmakeJs, 'build', '--out', 'build', '--target', 'scire', '--parallel', String(jobs), ...defines],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    for (const s of [child.stdout, child.stderr]) {
      s.on('data', (chunk) => {
        process.stderr.write(chunk);
        logStream.write(chunk);
      });
    }
    child.on('error', (e) => logStream.end(() => resolve(`could not start cmake-js: ${e.message}`)));
    child.on('close', (code, signal) => logStream.end(() => resolve(code === 0 ? 0 : `exit status ${code ?? signal}`)));
  });
  if (status !== 0) throw new InstallError(`the source build failed (${status}); its log: ${logFile}`);
  const file = path.join('build', 'Release', 'scire.node');
  const libDir = lt ? path.join(lt, 'lib') : undefined;
  const info = testLoad(path.join(ROOT, file), libDir);
  writeRecord({ version, variant: info.variant || choice.variant, origin: 'source', file, libtorch: info.torchVersion, ...(libDir ? { libtorchLibDir: libDir } : {}) });
  log(`built ${file} from source in ${((Date.now() - t0) / 1000).toFixed(0)} s (LibTorch ${info.torchVersion})`);
}

// ---------------------------------------------------------------- main
function failureAdvice(choice, reasons, missing, entry) {
  const pkgs = missing.map(([, p]) => p);
  const debian = pkgs.filter((p) => /^[a-z0-9.+-]+$/.test(p));
  const other = pkgs.filter((p) => !/^[a-z0-9.+-]+$/.test(p));
  const lines = [
    `cannot install the native addon (variant ${choice.variant}: ${choice.why}).`,
    ...reasons.map((r) => `  prebuilt binary: ${r}`),
    `  source build: this machine lacks ${missing.map(([w]) => w).join(', ')}`,
    'Fix one of them, then run `npm rebuild scire-solver` (or install again):',
  ];
  // A host helps only for a binary the package's manifest lists (nothing else can be verified).
  if (entry) lines.push(`  - a binary host: SCIRE_BINARY_HOST=<URL or folder holding ${entry.file}>`);
  if (debian.length) lines.push(`  - the build toolchain (Debian/Ubuntu): apt-get install -y --no-install-recommends ${debian.join(' ')}`);
  for (const o of other) lines.push(`  - ${o}`);
  if (choice.variant !== 'cpu') lines.push('  - or the CPU variant: SCIRE_VARIANT=cpu');
  return lines.join('\n');
}

async function main() {
  if (isDevelopmentCheckout()) {
    log('development checkout: nothing to install here (`npm run build` builds the addon, see README.md)');
    return;
  }
  const version = P.packageJson().version;
  const choice = chooseVariant();
  const forceSource = env.SCIRE_BUILD_FROM_SOURCE === '1' || env.npm_config_build_from_source === 'true';
  log(`variant ${choice.variant} (${choice.why}); ${P.platformTag()}, Node-API ${P.NAPI_VERSION}`);

  if (!forceSource) {
    const current = currentInstallWorks(version, choice);
    if (current) {
      log(`already installed: ${current.file} (${current.origin}, ${current.variant}); nothing to do`);
      return;
    }
  }

  const reasons = [];
  let entry = null;
  if (forceSource) {
    reasons.push('skipped: SCIRE_BUILD_FROM_SOURCE=1');
  } else {
    const manifest = P.readJsonOr(P.MANIFEST_FILE, null);
    const host = env.SCIRE_BINARY_HOST || env.npm_config_scire_binary_host;
    if (!manifest) {
      reasons.push('this package carries no binary manifest (prebuilds/manifest.json: it was packed without `npm run release`)');
    } else {
      entry = manifest.binaries.find(
        (b) => b.platform === process.platform && b.arch === process.arch && b.napi === P.NAPI_VERSION && b.variant === choice.variant,
      );
      if (!entry) {
        const have = manifest.binaries.map((b) => `${b.platform}-${b.arch}-${b.variant}`).join(', ') || 'none';
        reasons.push(`this release has no ${choice.variant} binary for ${P.platformTag()} (Node-API ${P.NAPI_VERSION}); it has: ${have}`);
      } else {
        try {
          await installPrebuilt(entry, host, choice, version);
          return;
        } catch (e) {
          // Any failure here (download, checksum, archive, load check) leaves the package as it
          // was (the staging folder is removed) and moves on to the source build.
          reasons.push(e instanceof Error ? e.message : String(e));
          log(`prebuilt binary not installed: ${e.message}`);
        }
      }
    }
  }

  const missing = missingToolchain(choice);
  if (missing.length > 0) throw new InstallError(failureAdvice(choice, reasons, missing, entry));
  if (!forceSource) log(`falling back to a source build: ${reasons.join('; ')}`);
  await buildFromSource(choice, version);
}

main().catch((e) => {
  if (e instanceof InstallError) {
    log(`ERROR: ${e.message}`);
    process.exit(1);
  }
  throw e;
});
