/**
 * The addon loader (lib/native.ts) in an installed package's layout: search order with an
 * install record, and the messages when the addon or its LibTorch cannot be loaded (issue 11).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeBindingPath, nativeCandidates } from '../lib/native';

const ROOT = path.join(__dirname, '..');
const PA = `${process.platform}-${process.arch}`;
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'scire-loader-'));

afterAll(() => fs.rmSync(WORK, { recursive: true, force: true }));

/** A package root with dist/ (copied) and the given prebuilds files; no build/, no tsconfig.json. */
function fakePackage(name: string, files: Record<string, Buffer | string>): string {
  const root = path.join(WORK, name);
  fs.cpSync(path.join(ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  }
  return root;
}

/** Runs `nativeBinding()` of a fake package in a child; its exit code and stderr. */
function loadIn(root: string, env: Record<string, string> = {}): { code: number; err: string } {
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
  try {
    execFileSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(root, 'dist', 'native.js'))}).nativeBinding()`], {
      env: childEnv,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    return { code: 0, err: '' };
  } catch (e) {
    const x = e as { status: number; stderr: string };
    return { code: x.status, err: x.stderr };
  }
}

describe('native loader', () => {
  it('search order: SCIRE_NATIVE_PATH, the install record, build/, cudaNN newest first, cpu', () => {
    const root = fakePackage('order', {
      'prebuilds/install.json': JSON.stringify({ file: `prebuilds/${PA}-cpu/scire.node`, origin: 'prebuilt', variant: 'cpu' }),
      [`prebuilds/${PA}-cuda12/scire.node`]: '',
      [`prebuilds/${PA}-cuda13/scire.node`]: '',
    });
    const got = nativeCandidates(root, { SCIRE_NATIVE_PATH: '/x/scire.node' }).map((f) => path.relative(root, f));
    expect(got).toEqual([
      path.relative(root, '/x/scire.node'),
      `prebuilds/${PA}-cpu/scire.node`,
      'build/Release/scire.node',
      'build/Debug/scire.node',
      `prebuilds/${PA}-cuda13/scire.node`,
      `prebuilds/${PA}-cuda12/scire.node`,
      `prebuilds/${PA}/scire.node`,
    ]);
    expect(nativeCandidates(root, { SCIRE_CUDA: '0' }).some((f) => f.includes('-cuda'))).toBe(false);
  });

  it('an installed package without an addon says to run npm rebuild scire-solver', () => {
    const r = loadIn(fakePackage('empty', {}));
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('the native addon scire.node is not installed. Run `npm rebuild scire-solver` in your app');
  }, 120_000);

  it('a binary whose LibTorch is missing: the loader names the library and what the binary needs', () => {
    // The real addon with one NEEDED entry renamed (same length): libc10.so.1.13 -> libc10.so.9.99.
    const addon = fs.readFileSync(nativeBindingPath());
    const needed = /libc10\.so\.\d+\.\d+/.exec(addon.toString('latin1'));
    expect(needed).not.toBeNull();
    const patched = Buffer.from(addon);
    const fake = 'libc10.so.' + '9'.repeat(needed![0].length - 'libc10.so.'.length - 3) + '.99';
    patched.write(fake, needed!.index, 'latin1');
    const root = fakePackage('nolib', {
      [`prebuilds/${PA}-cpu/scire.node`]: patched,
      [`prebuilds/${PA}-cpu/binary.json`]: JSON.stringify({ needs: 'the system LibTorch 1.13.0 (Debian/Ubuntu: apt-get install libtorch1.13)' }),
    });
    const r = loadIn(root);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`${fake}: cannot open shared object file`);
    expect(r.err).toContain('(this binary needs the system LibTorch 1.13.0 (Debian/Ubuntu: apt-get install libtorch1.13))');
    expect(r.err).toContain('LibTorch was not found: install the one the binary needs');
  }, 120_000);

  it('LIBTORCH naming a folder without LibTorch is an error that names it', () => {
    const empty = path.join(WORK, 'no-torch');
    fs.mkdirSync(path.join(empty, 'lib'), { recursive: true });
    const r = loadIn(fakePackage('badenv', {}), { LIBTORCH: empty });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`LIBTORCH=${empty}: scire-solver: no LibTorch in ${path.join(empty, 'lib')} (libtorch_cpu.so is missing)`);
  }, 120_000);

  it('sets OMP_WAIT_POLICY=PASSIVE before LibTorch loads, unless the environment sets it', () => {
    const code = `const n = require(${JSON.stringify(path.join(ROOT, 'dist', 'native.js'))}); n.nativeBinding(); console.log(JSON.stringify(n.nativeAddonInfo().ompWaitPolicy));`;
    const run = (extra: Record<string, string>): unknown => {
      const env: Record<string, string | undefined> = { ...process.env, ...extra };
      if (!('OMP_WAIT_POLICY' in extra)) delete env.OMP_WAIT_POLICY;
      return JSON.parse(execFileSync(process.execPath, ['-e', code], { env, encoding: 'utf8', timeout: 120_000 }));
    };
    expect(run({})).toEqual({ value: 'PASSIVE', setBy: 'scire-solver' });
    expect(run({ OMP_WAIT_POLICY: 'ACTIVE' })).toEqual({ value: 'ACTIVE', setBy: 'environment' });
  }, 120_000);

  it.runIf(process.platform === 'linux')('LIBTORCH naming the system LibTorch loads it first and the addon binds to it', () => {
    const sys = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu'].find((d) => fs.existsSync(path.join(d, 'libtorch_cpu.so')));
    if (!sys) return; // this machine's LibTorch is elsewhere (LIBTORCH builds)
    // A LibTorch folder layout (lib/ -> the system's libraries).
    const lt = path.join(WORK, 'lt');
    fs.mkdirSync(lt, { recursive: true });
    fs.symlinkSync(sys, path.join(lt, 'lib'));
    const code = `const n = require(${JSON.stringify(path.join(ROOT, 'dist', 'native.js'))}); const i = n.nativeAddonInfo(); console.log(JSON.stringify(i));`;
    const out = execFileSync(process.execPath, ['-e', code], { env: { ...process.env, LIBTORCH: lt }, encoding: 'utf8', timeout: 120_000 });
    const info = JSON.parse(out) as { libtorchPreloaded: string; libtorchDir: string };
    expect(info.libtorchPreloaded).toBe(path.join(lt, 'lib'));
    expect(fs.realpathSync(info.libtorchDir)).toBe(fs.realpathSync(sys));
  }, 120_000);
});
