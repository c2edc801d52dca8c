/**
 * Reading PNG files without dependencies (node:zlib for the deflate stream): what
 * `scire inpaint` needs for its --image and --mask.
 *
 * Supported: every non-interlaced PNG of the standard's colour types (grayscale, RGB,
 * palette, grayscale + alpha, RGBA) at bit depths 1-16, with all five row filters. The pixels
 * come back as 8-bit values (16-bit samples keep their high byte; low bit depths are scaled to
 * 0..255) in the channels asked for: 1 (gray: ITU-R BT.601 luma of RGB) or 3 (RGB; gray is
 * repeated). Alpha is ignored. Interlaced (Adam7) files and anything malformed are refused
 * with an Error that names the file's problem.
 */
import { inflateSync } from 'node:zlib';
import type { ImageGrid } from './image-io';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Samples per pixel of each colour type. */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
/** Largest image accepted (pixels), so a corrupt header cannot ask for gigabytes. */
const MAX_PIXELS = 1 << 26;

function fail(what: string, problem: string): never {
  throw new Error(`${what}: ${problem}`);
}

/** The Paeth predictor of the PNG standard. */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Decodes a PNG into an 8-bit image with `channels` channels (1 or 3). `what` names the input
 * in error messages (e.g. "--image in.png").
 */
export function decodePng(bytes: Uint8Array, channels: 1 | 3, what = 'PNG'): ImageGrid {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) fail(what, 'not a PNG file (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = -1;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (pos + 8 <= bytes.length) {
    const length = view.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    const start = pos + 8;
    if (start + length + 4 > bytes.length) fail(what, `truncated ${type} chunk`);
    const data = bytes.subarray(start, start + length);
    if (type === 'IHDR') {
      if (length !== 13) fail(what, 'bad IHDR chunk');
      width = view.getUint32(start);
      height = view.getUint32(start + 4);
      depth = data[8];
      colorType = data[9];
      if (data[10] !== 0 || data[11] !== 0) fail(what, 'unknown compression or filter method');
      if (data[12] !== 0) fail(what, 'interlaced PNGs are not supported (save it without interlacing)');
      if (!(colorType in SAMPLES) || !DEPTHS[colorType].includes(depth)) fail(what, `unsupported colour type ${colorType} at bit depth ${depth}`);
      if (width < 1 || height < 1 || width * height > MAX_PIXELS) fail(what, `bad image size ${width}x${height}`);
    } else if (type === 'PLTE') {
      palette = data;
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      ended = true;
      break;
    }
    pos = start + length + 4; // skip the CRC
  }
  if (colorType < 0) fail(what, 'no IHDR chunk');
  if (!ended && idat.length === 0) fail(what, 'no image data');
  if (colorType === 3 && !palette) fail(what, 'palette image without a PLTE chunk');
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    fail(what, `corrupt image data (${(e as Error).message})`);
  }
  const samples = SAMPLES[colorType];
  const bitsPerPixel = samples * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3); // filter distance in bytes
  if (raw.length < height * (stride + 1)) fail(what, 'image data shorter than the image');
  // Undo the row filters in place into `rows`.
  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = rows.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : undefined;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[i - bpp] : 0;
      const b = up ? up[i] : 0;
      const c = up && i >= bpp ? up[i - bpp] : 0;
      let v: number;
      switch (filter) {
        case 0: v = src[i]; break;
        case 1: v = src[i] + a; break;
        case 2: v = src[i] + b; break;
        case 3: v = src[i] + ((a + b) >> 1); break;
        case 4: v = src[i] + paeth(a, b, c); break;
        default: fail(what, `bad row filter ${filter} in row ${y}`);
      }
      out[i] = v & 0xff;
    }
  }
  // Sample k of pixel x in row y, as 0..255.
  const sample = (y: number, x: number, k: number): number => {
    const row = y * stride;
    if (depth === 8) return rows[row + x * samples + k];
    if (depth === 16) return rows[row + 2 * (x * samples + k)];
    const bit = (x * samples + k) * depth;
    const v = (rows[row + (bit >> 3)] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
    return colorType === 3 ? v : Math.round((v * 255) / ((1 << depth) - 1));
  };
  const pixels = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r: number;
      let g: number;
      let b: number;
      if (colorType === 3) {
        const i = sample(y, x, 0);
        if (3 * i + 2 >= (palette as Uint8Array).length) fail(what, `palette index ${i} out of range`);
        [r, g, b] = [(palette as Uint8Array)[3 * i], (palette as Uint8Array)[3 * i + 1], (palette as Uint8Array)[3 * i + 2]];
      } else if (colorType === 2 || colorType === 6) {
        [r, g, b] = [sample(y, x, 0), sample(y, x, 1), sample(y, x, 2)];
      } else {
        r = g = b = sample(y, x, 0);
      }
      const o = (y * width + x) * channels;
      if (channels === 1) pixels[o] = r === g && g === b ? r : Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      else [pixels[o], pixels[o + 1], pixels[o + 2]] = [r, g, b];
    }
  }
  return { width, height, channels, pixels };
}
