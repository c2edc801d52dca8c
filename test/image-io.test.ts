import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, encodePng, toByte, toImageGrid } from '../lib/image-io';

/** Bit-by-bit CRC-32 (reflected polynomial 0xEDB88320), independent of the encoder's table. */
function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

interface DecodedPng {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
  chunkTypes: string[];
  pixels: Uint8Array;
}

/** A minimal PNG reader for the files encodePng writes (8-bit, filter type 0 rows). */
function decodePng(png: Buffer): DecodedPng {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let offset = 8;
  const chunkTypes: string[] = [];
  const idat: Buffer[] = [];
  let header: Buffer | undefined;
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const body = png.subarray(offset + 8, offset + 8 + length);
    const crc = png.readUInt32BE(offset + 8 + length);
    expect(crc, `CRC of ${type}`).toBe(referenceCrc32(png.subarray(offset + 4, offset + 8 + length)));
    chunkTypes.push(type);
    if (type === 'IHDR') header = body;
    if (type === 'IDAT') idat.push(body);
    offset += 12 + length;
  }
  expect(offset).toBe(png.length);
  if (!header) throw new Error('no IHDR chunk');
  const width = header.readUInt32BE(0);
  const height = header.readUInt32BE(4);
  const channels = header[9] === 2 ? 3 : 1;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  expect(raw.length).toBe(height * (stride + 1));
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (stride + 1)], `filter type of row ${y}`).toBe(0);
    pixels.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return {
    width,
    height,
    bitDepth: header[8],
    colorType: header[9],
    interlace: header[12],
    chunkTypes,
    pixels,
  };
}

describe('toByte', () => {
  it('maps [-1, 1] to [0, 255], clamps outside, NaN to 0', () => {
    expect([-1, 0, 1, 0.5, -0.5, 2, -7, Number.NaN].map(toByte)).toEqual([0, 128, 255, 191, 64, 255, 0, 0]);
  });
});

describe('toImageGrid', () => {
  // Three 2x2 gray images, 2 per row: 10 x 10 pixels with 2 px padding.
  const gray = new Float32Array([-1, 1, 0, 0.5, 2, -2, Number.NaN, -0.5, 1, 1, 1, 1]);

  it('tiles gray images with 2 px padding, row by row', () => {
    const grid = toImageGrid(gray, [3, 1, 2, 2], { cols: 2 });
    expect([grid.width, grid.height, grid.channels]).toEqual([10, 10, 1]);
    const expected = new Uint8Array(100);
    const put = (x: number, y: number, v: number) => (expected[y * 10 + x] = v);
    // image 0 at (2, 2), image 1 at (6, 2), image 2 at (2, 6); the fourth slot stays black
    put(2, 2, 0), put(3, 2, 255), put(2, 3, 128), put(3, 3, 191);
    put(6, 2, 255), put(7, 2, 0), put(6, 3, 0), put(7, 3, 64);
    put(2, 6, 255), put(3, 6, 255), put(2, 7, 255), put(3, 7, 255);
    expect([...grid.pixels]).toEqual([...expected]);
  });

  it('defaults to ceil(sqrt(n)) columns', () => {
    const grid = toImageGrid(new Float32Array(5 * 4 * 4), [5, 1, 4, 4]);
    expect([grid.width, grid.height]).toEqual([3 * 6 + 2, 2 * 6 + 2]);
  });

  it('interleaves RGB channels', () => {
    const rgb = new Float32Array([1, -1, /* G */ 0, 1, /* B */ -1, 0]);
    const grid = toImageGrid(rgb, [1, 3, 1, 2]);
    expect([grid.width, grid.height, grid.channels]).toEqual([6, 5, 3]);
    const at = (x: number, y: number) => [...grid.pixels.subarray((y * 6 + x) * 3, (y * 6 + x) * 3 + 3)];
    expect(at(2, 2)).toEqual([255, 128, 0]);
    expect(at(3, 2)).toEqual([0, 255, 128]);
    expect(at(1, 2)).toEqual([0, 0, 0]);
  });

  it('rejects bad shapes, data and options with the field named', () => {
    expect(() => toImageGrid(new Float32Array(8), [2, 2, 2])).toThrow(/shape must be \[n, c, h, w\]/);
    expect(() => toImageGrid(new Float32Array(16), [2, 2, 2, 2])).toThrow(/shape\[1\] \(channels\) must be 1 or 3/);
    expect(() => toImageGrid(new Float32Array(7), [2, 1, 2, 2])).toThrow(/data has 7 values but shape \[2, 1, 2, 2\] needs 8/);
    expect(() => toImageGrid(new Float32Array(8), [2, 1, 0, 2])).toThrow(/shape\[2\] must be a positive integer/);
    expect(() => toImageGrid(new Float32Array(8), [2, 1, 2, 2], { cols: 0 })).toThrow(/cols must be a positive integer/);
    expect(() => toImageGrid([1, 2] as unknown as Float32Array, [1, 1, 1, 2])).toThrow(TypeError);
  });
});

describe('encodePng', () => {
  it('writes a valid 8-bit grayscale PNG that decodes to the grid', () => {
    const grid = toImageGrid(new Float32Array([-1, 1, 0, 0.5, 2, -2, 0.25, -0.5]), [2, 1, 2, 2], { cols: 2 });
    const decoded = decodePng(encodePng(grid));
    expect(decoded.chunkTypes).toEqual(['IHDR', 'IDAT', 'IEND']);
    expect([decoded.width, decoded.height, decoded.bitDepth, decoded.colorType, decoded.interlace]).toEqual([10, 6, 8, 0, 0]);
    expect([...decoded.pixels]).toEqual([...grid.pixels]);
    expect(decoded.pixels[2 * 10 + 3]).toBe(255); // image 0, pixel (1, 0) = +1
    expect(decoded.pixels[3 * 10 + 6]).toBe(159); // image 1, pixel (0, 1) = 0.25 -> round(0.625 * 255)
  });

  it('writes a valid RGB PNG (color type 2)', () => {
    const pixels = new Uint8Array(4 * 3 * 3).map((_, i) => (i * 37) % 256);
    const decoded = decodePng(encodePng({ width: 4, height: 3, channels: 3, pixels }));
    expect([decoded.width, decoded.height, decoded.bitDepth, decoded.colorType]).toEqual([4, 3, 8, 2]);
    expect([...decoded.pixels]).toEqual([...pixels]);
  });

  it('rejects inconsistent grids', () => {
    const pixels = new Uint8Array(6);
    expect(() => encodePng({ width: 0, height: 3, channels: 1, pixels })).toThrow(/grid.width must be a positive integer/);
    expect(() => encodePng({ width: 2, height: 3, channels: 2 as 1, pixels })).toThrow(/grid.channels must be 1 \(gray\) or 3 \(RGB\)/);
    expect(() => encodePng({ width: 3, height: 3, channels: 1, pixels })).toThrow(/grid.pixels must be a Uint8Array of .* = 9 bytes/);
  });
});

describe('encodeNpy', () => {
  const values = new Float32Array([1.5, -0, 3.4e38, 1e-45, -2.75, 0.1, Math.PI, -1e-3, 42, 7, -7, 0.5]);
  const shape = [2, 1, 2, 3];
  const npy = encodeNpy(values, shape);

  it('writes an NPY 1.0 header for little-endian float32 in C order, 64-byte aligned', () => {
    expect([...npy.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = npy.readUInt16LE(8);
    expect((10 + headerLength) % 64).toBe(0);
    const header = npy.toString('latin1', 10, 10 + headerLength);
    expect(header.endsWith('\n')).toBe(true);
    expect(header.trimEnd()).toBe("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2, 3), }");
    expect(npy.length).toBe(10 + headerLength + 4 * values.length);
    const body = npy.subarray(10 + headerLength);
    for (let i = 0; i < values.length; i++) expect(Object.is(body.readFloatLE(4 * i), values[i])).toBe(true);
  });

  it('writes a one-element tuple for 1-D shapes', () => {
    const header = encodeNpy(new Float32Array(5), [5]).toString('latin1', 10, 80);
    expect(header).toContain("'shape': (5,)");
  });

  it('decodeNpy reads back the shape and every value bit for bit (also a 1-D file), and refuses what it cannot read', () => {
    const back = decodeNpy(npy);
    expect(back.shape).toEqual(shape);
    expect(back.data.length).toBe(values.length);
    for (let i = 0; i < values.length; i++) expect(Object.is(back.data[i], values[i])).toBe(true);
    expect(decodeNpy(encodeNpy(new Float32Array([1, 2, 3]), [3])).shape).toEqual([3]);
    expect(() => decodeNpy(new Uint8Array(4))).toThrow(/not an \.npy 1\.0 file/);
    const f8 = Buffer.from(npy);
    f8.write('<f8', f8.indexOf('<f4'), 'latin1');
    expect(() => decodeNpy(f8)).toThrow(/not a C-order little-endian float32 \.npy file/);
    expect(() => decodeNpy(npy.subarray(0, npy.length - 4))).toThrow(/has 11 values for shape \[2, 1, 2, 3\]/);
  });

  it('rejects a data length that does not match the shape', () => {
    expect(() => encodeNpy(new Float32Array(5), [2, 3])).toThrow(/data has 5 values but shape \[2, 3\] needs 6/);
    expect(() => encodeNpy(new Float32Array(6), [2, -3])).toThrow(/shape\[1\] must be a positive integer/);
  });

  const python = '/usr/bin/python3';
  const hasNumpy = spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
  const dir = mkdtempSync(join(tmpdir(), 'scire-npy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Skipped only when /usr/bin/python3 has no numpy (it comes with Debian's python3-torch).
  it.skipIf(!hasNumpy)('numpy.load reads it back bit for bit (needs numpy in /usr/bin/python3)', () => {
    const file = join(dir, 'x.npy');
    writeFileSync(file, npy);
    const script = [
      'import json, sys, numpy',
      'a = numpy.load(sys.argv[1])',
      'print(json.dumps({"dtype": a.dtype.str, "shape": list(a.shape), "c": bool(a.flags.c_contiguous),',
      '                  "bits": a.reshape(-1).view(numpy.uint32).tolist()}))',
    ].join('\n');
    const run = spawnSync(python, ['-c', script, file], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const loaded = JSON.parse(run.stdout) as { dtype: string; shape: number[]; c: boolean; bits: number[] };
    expect(loaded.dtype).toBe('<f4');
    expect(loaded.shape).toEqual(shape);
    expect(loaded.c).toBe(true);
    expect(loaded.bits).toEqual([...new Uint32Array(values.buffer)]);
  });
});
