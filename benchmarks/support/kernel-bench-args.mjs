/**
 * What the kernel benchmarks (benchmarks/kernels.mjs, benchmarks/masked-kernel.mjs) share: the
 * testing addon (a superset of scire.node with the bench* entries of native/testing/
 * kernel_bindings.cc, unless SCIRE_NATIVE_PATH names another addon) and their command line.
 */
import { createRequire } from 'module';

const require = createRequire(import.meta.url);
process.env.SCIRE_NATIVE_PATH ??= new URL('../../build/Release/scire_testing.node', import.meta.url).pathname;
export const { nativeBinding, nativeBindingPath } = require('../../dist/native.js');

const args = process.argv.slice(2);

/** The value after --name on the command line, or dflt. */
export const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};

/** Whether --name is on the command line. */
export const flag = (name) => args.includes(`--${name}`);

/** Powers of 1024 by suffix. */
export const UNITS = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** --sizes: a comma-separated list of element counts with an optional K/M/G (powers of 1024). */
export const parseSizes = (list) =>
  list.split(',').map((s) => {
    const m = /^(\d+)([KMG])?$/i.exec(s.trim());
    if (!m) throw new RangeError(`--sizes: expected e.g. 64K,1M,256M but received '${s}'`);
    return Number(m[1]) * (m[2] ? UNITS[m[2].toUpperCase()] : 1);
  });
