/**
 * Writing samples to files without dependencies: a tiled image grid from NCHW float data,
 * an 8-bit PNG encoder (node:zlib for the deflate stream) and a NumPy .npy encoder.
 */

import { endianness } from 'node:os';
import { deflateSync } from 'node:zlib';

/** An 8-bit image, rows top to bottom, channels interleaved (gray, or R, G, B). */
export interface ImageGrid {
  width: number;
  height: number;
  channels: 1 | 3;
  pixels: Uint8Array;
}

export interface ImageGridOptions {
  /** Tiles per row; default ceil(sqrt(n)). */
  cols?: number;
}

/** Pixels between tiles and around the border of the grid. */
export const GRID_PADDING = 2;

function checkPositiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function checkShape(shape: readonly number[], name: string): number {
  if (!Array.isArray(shape)) {
    throw new TypeError(`${name} must be an array of positive integers, got ${typeof shape}`);
  }
  return shape.reduce((numel, dim, i) => numel * checkPositiveInteger(dim, `${name}[${i}]`), 1);
}

/** Maps a value in [-1, 1] to a byte in [0, 255] (clamped; NaN becomes 0). */
export function toByte(value: number): number {
  if (Number.isNaN(value)) return 0;
  const unit = (Math.min(Math.max(value, -1), 1) + 1) / 2;
  return Math.round(unit * 255);
}

/**
 * Maps samples from the model's data range [lo, hi] to [-1, 1], the range toImageGrid expects
 * (returns the data itself when the range is [-1, 1] or unknown).
 */
export function toUnitRange(data: Float32Array, range: readonly [number, number] | undefined): Float32Array {
  if (!range || (range[0] === -1 && range[1] === 1)) return data;
  const [lo, hi] = range;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = ((data[i] - lo) / (hi - lo)) * 2 - 1;
  return out;
}

/** Little-endian float32 bytes of `data` (a view when the machine is little-endian). */
export function float32Bytes(data: Float32Array): Uint8Array {
  if (endianness() === 'LE') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) out.writeFloatLE(data[i], i * 4);
  return out;
}

/**
 * Tiles n images of shape [c, h, w] (c = 1 gray or 3 RGB, values in [-1, 1]) into one
 * grid, row by row, `cols` tiles per row, with GRID_PADDING black pixels between tiles and
 * around the border.
 */
export function toImageGrid(
  data: Float32Array,
  shape: readonly number[],
  options: ImageGridOptions = {},
): ImageGrid {
  if (!(data instanceof Float32Array)) {
    throw new TypeError('data must be a Float32Array');
  }
  const numel = checkShape(shape, 'shape');
  if (shape.length !== 4) {
    throw new RangeError(`shape must be [n, c, h, w] (4 entries), got ${shape.length} entries`);
  }
  const [n, c, h, w] = shape;
  if (c !== 1 && c !== 3) {
    throw new RangeError(`shape[1] (channels) must be 1 or 3 for an image grid, got ${c}`);
  }
  if (data.length !== numel) {
    throw new RangeError(`data has ${data.length} values but shape [${shape.join(', ')}] needs ${numel}`);
  }
  const cols = Math.min(
    options.cols === undefined ? Math.ceil(Math.sqrt(n)) : checkPositiveInteger(options.cols, 'cols'),
    n,
  );
  const rows = Math.ceil(n / cols);
  const width = cols * (w + GRID_PADDING) + GRID_PADDING;
  const height = rows * (h + GRID_PADDING) + GRID_PADDING;
  const pixels = new Uint8Array(width * height * c);
  for (let img = 0; img < n; img++) {
    const left = (img % cols) * (w + GRID_PADDING) + GRID_PADDING;
    const top = Math.floor(img / cols) * (h + GRID_PADDING) + GRID_PADDING;
    for (let ch = 0; ch < c; ch++) {
      const plane = (img * c + ch) * h * w;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          pixels[((top + y) * width + left + x) * c + ch] = toByte(data[plane + y * w + x]);
        }
      }
    }
  }
  return { width, height, channels: c, pixels };
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO 3309, as PNG chunks use) of the given bytes. */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, body: Uint8Array): Buffer {
  const chunk = Buffer.alloc(12 + body.length);
  chunk.writeUInt32BE(body.length, 0);
  chunk.write(type, 4, 'latin1');
  chunk.set(body, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + body.length)), 8 + body.length);
  return chunk;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_COLOR_TYPE = { 1: 0, 3: 2 } as const; // grayscale, truecolour
const PNG_MAX_DIMENSION = 2 ** 31 - 1;

/** Encodes an 8-bit grayscale (channels 1) or RGB (channels 3) PNG, no interlacing. */
export function encodePng(grid: ImageGrid): Uint8Array {
  const { width, height, channels, pixels } = grid;
  checkPositiveInteger(width, 'grid.width');
  checkPositiveInteger(height, 'grid.height');
  if (width > PNG_MAX_DIMENSION || height > PNG_MAX_DIMENSION) {
    throw new RangeError(`PNG width and height must be at most 2^31 - 1, got ${width} x ${height}`);
  }
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`grid.channels must be 1 (gray) or 3 (RGB), got ${String(channels)}`);
  }
  if (!(pixels instanceof Uint8Array) || pixels.length !== width * height * channels) {
    throw new RangeError(
      `grid.pixels must be a Uint8Array of width * height * channels = ${width * height * channels} bytes`,
    );
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = PNG_COLOR_TYPE[channels];
  // bytes 10..12: compression 0 (deflate), filter method 0, interlace 0 (none)

  const stride = width * channels;
  const scanlines = Buffer.alloc(height * (stride + 1)); // each row: filter type 0, then bytes
  for (let y = 0; y < height; y++) {
    scanlines.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(scanlines)),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]); // \x93NUMPY v1.0
const NPY_ALIGNMENT = 64;

/** Encodes float32 data of the given shape as a NumPy .npy file (format 1.0, '<f4', C order). */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  if (!(data instanceof Float32Array)) {
    throw new TypeError('data must be a Float32Array');
  }
  const numel = checkShape(shape, 'shape');
  if (data.length !== numel) {
    throw new RangeError(`data has ${data.length} values but shape [${shape.join(', ')}] needs ${numel}`);
  }
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
  // Pad with spaces and a final newline so the data starts on a 64-byte boundary.
  const unpadded = NPY_MAGIC.length + 2 + dict.length + 1;
  const headerText = dict + ' '.repeat((NPY_ALIGNMENT - (unpadded % NPY_ALIGNMENT)) % NPY_ALIGNMENT) + '\n';
  if (headerText.length > 0xffff) {
    throw new RangeError(`shape has too many dimensions for an .npy 1.0 header (${shape.length})`);
  }
  const lengthField = Buffer.alloc(2);
  lengthField.writeUInt16LE(headerText.length, 0);

  return Buffer.concat([NPY_MAGIC, lengthField, Buffer.from(headerText, 'latin1'), float32Bytes(data)]);
}

/** Reads what encodeNpy writes (an .npy 1.0 file of little-endian float32 in C order): its shape and values. */
export function decodeNpy(bytes: Uint8Array): { shape: number[]; data: Float32Array } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 7).equals(NPY_MAGIC.subarray(0, 7))) throw new RangeError('not an .npy 1.0 file');
  const start = 10 + buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, start);
  const shape = /'descr': '<f4', 'fortran_order': False, 'shape': \(([^)]*)\)/.exec(header);
  if (!shape) throw new RangeError(`not a C-order little-endian float32 .npy file (header ${header.trim()})`);
  const dims = shape[1].split(',').filter((d) => d.trim() !== '').map(Number);
  const body = buf.subarray(start);
  const data = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new RangeError(`.npy data has ${data.length} values for shape [${dims.join(', ')}]`);
  return { shape: dims, data };
}
