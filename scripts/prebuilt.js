/*
 * prebuilt.js: what scripts/release.js (writes) and scripts/install.js (reads) agree on.
 * Plain Node.js, no dependencies: it runs inside `npm install` of an app.
 *
 *  - binary archive names: scire-solver-v<version>-napi-v<N>-<platform>-<arch>-<variant>.tar.gz
 *  - the manifest prebuilds/manifest.json (SHA-256 and size of every archive) that the package
 *    tarball carries
 *  - where an installed binary lives: prebuilds/<platform>-<arch>-<variant>/scire.node, with
 *    prebuilds/install.json saying which binary the install step chose and where it came from
 *  - a minimal ustar writer/reader (regular files only, no links, no paths outside the target)
 *  - finding a LibTorch (system, LIBTORCH, a pip torch) and an NVIDIA driver
 */
'use strict';

const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const ROOT = path.resolve(__dirname, '..');
const PREBUILDS = path.join(ROOT, 'prebuilds');
const MANIFEST_FILE = path.join(PREBUILDS, 'manifest.json');
const INSTALL_RECORD = path.join(PREBUILDS, 'install.json');
/** The Node-API version the addon is built for (package.json "binary".napi_versions). */
const NAPI_VERSION = 8;
const VARIANT_RE = /^(cpu|cuda\d+)$/;

function packageJson(root = ROOT) {
  return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
}

function platformTag(platform = process.platform, arch = process.arch) {
  return `${platform}-${arch}`;
}

/** scire-solver-v0.1.0-napi-v8-linux-x64-cpu.tar.gz */
function archiveName({ version, variant, platform = process.platform, arch = process.arch, napi = NAPI_VERSION }) {
  if (!VARIANT_RE.test(variant)) throw new RangeError(`variant must be cpu or cudaNN (got '${variant}')`);
  return `scire-solver-v${version}-napi-v${napi}-${platform}-${arch}-${variant}.tar.gz`;
}

/** Folder of an installed binary, relative to the package root. */
function installedDir(variant, platform = process.platform, arch = process.arch) {
  return path.join('prebuilds', `${platformTag(platform, arch)}-${variant}`);
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

function readJsonOr(file, fallback) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return fallback;
  }
}

// ---------------------------------------------------------------- tar (ustar subset)
function octal(n, width) {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function tarHeader(name, size, mode) {
  if (Buffer.byteLength(name) > 99) throw new RangeError(`tar: name too long: ${name}`);
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, 'utf8');
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii'); // mtime 0: archives are reproducible
  h.write('        ', 148, 'ascii'); // checksum placeholder (8 spaces)
  h.write('0', 156, 'ascii'); // regular file
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** gzip'ed tar of [{ name, data: Buffer, mode? }]. */
function packTarGz(entries) {
  const parts = [];
  for (const e of entries) {
    parts.push(tarHeader(e.name, e.data.length, e.mode ?? 0o644), e.data);
    const pad = (512 - (e.data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(1024, 0));
  return zlib.gzipSync(Buffer.concat(parts), { level: 9 });
}

/** Entries of a gzip'ed tar: regular files with plain relative names only (else an Error). */
function unpackTarGz(buf) {
  const tar = zlib.gunzipSync(buf);
  const out = [];
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const field = (start, len) => h.subarray(start, start + len).toString('utf8').replace(/\0.*$/s, '');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    if (parseInt(field(148, 8).trim(), 8) !== sum) throw new Error('tar: bad header checksum (not a tar archive, or damaged)');
    const name = (field(345, 155) ? field(345, 155) + '/' : '') + field(0, 100);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1) || '0';
    if (type !== '0') throw new Error(`tar: '${name}' is not a regular file (type ${type})`);
    if (path.isAbsolute(name) || name.split('/').includes('..') || !/^[\w.+-]+(\/[\w.+-]+)*$/.test(name)) {
      throw new Error(`tar: refusing entry name '${name}'`);
    }
    const start = off + 512;
    if (start + size > tar.length) throw new Error(`tar: '${name}' is truncated`);
    out.push({ name, data: Buffer.from(tar.subarray(start, start + size)), mode: parseInt(field(100, 8).trim() || '644', 8) });
    off = start + Math.ceil(size / 512) * 512;
  }
  return out;
}

// ---------------------------------------------------------------- tools and LibTorch
function which(cmd, envPath = process.env.PATH) {
  if (cmd.includes('/')) return fs.existsSync(cmd) ? cmd : null;
  for (const dir of (envPath || '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

const SYSTEM_LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];

/** The system LibTorch's library folder (Debian: libtorch1.13 / libtorch-dev), or null. */
function systemLibTorchDir() {
  for (const dir of SYSTEM_LIB_DIRS) {
    try {
      if (fs.readdirSync(dir).some((f) => /^libtorch_cpu\.so(\.|$)/.test(f))) return dir;
    } catch {
      /* no such folder */
    }
  }
  return null;
}

/** Whether the system has LibTorch's CMake config and headers (Debian libtorch-dev). */
function systemLibTorchDev() {
  for (const base of ['/usr/lib', '/usr/local/lib']) {
    for (const sub of ['', ...safeReaddir(base)]) {
      if (fs.existsSync(path.join(base, sub, 'cmake', 'Torch', 'TorchConfig.cmake'))) {
        return fs.existsSync('/usr/include/torch/script.h') || fs.existsSync('/usr/local/include/torch/script.h');
      }
    }
  }
  return false;
}

function safeReaddir(dir) {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * A LibTorch folder (with lib/ and, for builds, share/cmake/Torch) from LIBTORCH, else from
 * the pip torch of `python3` when asked: { dir, libDir, cuda: '13.0' | null, source }.
 */
function findLibTorch({ env = process.env, tryPython = false } = {}) {
  if (env.LIBTORCH) {
    const dir = path.resolve(env.LIBTORCH);
    return { dir, libDir: path.join(dir, 'lib'), cuda: libTorchCudaVersion(path.join(dir, 'lib')), source: 'LIBTORCH' };
  }
  if (tryPython) {
    const py = which('python3', env.PATH);
    if (py) {
      const r = childProcess.spawnSync(py, ['-c', 'import os, torch; print(os.path.dirname(torch.__file__)); print(torch.version.cuda or "")'], {
        encoding: 'utf8',
        timeout: 60_000,
        env,
      });
      if (r.status === 0) {
        const [dir, cuda] = r.stdout.trim().split('\n');
        if (dir && fs.existsSync(path.join(dir, 'lib'))) {
          return { dir, libDir: path.join(dir, 'lib'), cuda: cuda || null, source: `pip torch of ${py}` };
        }
      }
    }
  }
  return null;
}

/** '13.0'-like CUDA version of the LibTorch in libDir (from its libcudart), '' when CUDA but unknown, null without CUDA. */
function libTorchCudaVersion(libDir) {
  const files = safeReaddir(libDir);
  if (!files.some((f) => /^libc10_cuda\.so/.test(f))) return null;
  // pip torch: torch/version.py says `cuda = '13.0'`
  try {
    const m = /^cuda\s*(?::\s*[\w.[\]|\s]+)?=\s*'(\d+\.\d+)'/m.exec(fs.readFileSync(path.join(libDir, '..', 'version.py'), 'utf8'));
    if (m) return m[1];
  } catch {
    /* not a pip torch */
  }
  // unzipped libtorch: lib/libcudart-<hash>.so.13; pip wheels: site-packages/nvidia/{cu13,cuda_runtime}
  for (const f of files) {
    const m = /^libcudart[-.\w]*\.so\.(\d+)/.exec(f);
    if (m) return `${m[1]}.0`;
  }
  for (const sub of ['cu13', 'cu12']) if (fs.existsSync(path.join(libDir, '..', '..', 'nvidia', sub))) return `${sub.slice(2)}.0`;
  for (const f of safeReaddir(path.join(libDir, '..', '..', 'nvidia', 'cuda_runtime', 'lib'))) {
    const m = /^libcudart\.so\.(\d+)/.exec(f);
    if (m) return `${m[1]}.0`;
  }
  return '';
}

/** An NVIDIA driver on this machine (the kernel module or libcuda). */
function nvidiaDriverPresent() {
  if (fs.existsSync('/proc/driver/nvidia/version')) return true;
  return [...SYSTEM_LIB_DIRS, '/usr/local/nvidia/lib64'].some((d) => fs.existsSync(path.join(d, 'libcuda.so.1')));
}

module.exports = {
  ROOT,
  PREBUILDS,
  MANIFEST_FILE,
  INSTALL_RECORD,
  NAPI_VERSION,
  VARIANT_RE,
  packageJson,
  platformTag,
  archiveName,
  installedDir,
  sha256,
  readJsonOr,
  safeReaddir,
  packTarGz,
  unpackTarGz,
  which,
  systemLibTorchDir,
  systemLibTorchDev,
  findLibTorch,
  libTorchCudaVersion,
  nvidiaDriverPresent,
};
