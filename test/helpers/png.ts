/**
 * A small PNG decoder for tests (screenshots): 8-bit truecolour (RGB) or truecolour with alpha
 * (RGBA), greyscale and greyscale+alpha, not interlaced. Checks the signature and each chunk's CRC,
 * concatenates the IDAT chunks, inflates them (node:zlib) and undoes the per-row filters 0-4.
 */
import { inflateSync } from 'node:zlib';

export interface Image {
  width: number;
  height: number;
  /** width * height * 4 bytes, RGBA. */
  rgba: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Bytes per pixel of the supported 8-bit colour types. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

export function decodePng(file: Uint8Array): Image {
  if (file.length < 8 || SIGNATURE.some((b, i) => file[i] !== b)) throw new Error('not a PNG: bad signature');
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = 8;
  let header: { width: number; height: number; depth: number; colour: number; interlace: number } | undefined;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (at + 12 <= file.length && !ended) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...file.subarray(at + 4, at + 8));
    if (at + 12 + length > file.length) throw new Error(`PNG truncated in chunk ${type}`);
    const data = file.subarray(at + 8, at + 8 + length);
    if (crc32(file.subarray(at + 4, at + 8 + length)) !== view.getUint32(at + 8 + length)) throw new Error(`PNG chunk ${type}: bad CRC`);
    if (type === 'IHDR') {
      const d = new DataView(data.buffer, data.byteOffset, data.byteLength);
      header = { width: d.getUint32(0), height: d.getUint32(4), depth: data[8], colour: data[9], interlace: data[12] };
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      ended = true;
    }
    at += 12 + length;
  }
  if (!header) throw new Error('PNG without IHDR');
  if (!ended) throw new Error('PNG without IEND');
  const { width, height, depth, colour, interlace } = header;
  const channels = CHANNELS[colour];
  if (depth !== 8 || channels === undefined) throw new Error(`unsupported PNG: bit depth ${depth}, colour type ${colour}`);
  if (interlace !== 0) throw new Error('unsupported PNG: interlaced');

  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new Error(`PNG data too short: ${raw.length} bytes for ${width}x${height}`);
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = y * stride;
    const prev = y - 1;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[out + x - channels] : 0;
      const b = prev >= 0 ? pixels[prev * stride + x] : 0;
      const c = x >= channels && prev >= 0 ? pixels[prev * stride + x - channels] : 0;
      let predictor: number;
      switch (filter) {
        case 0: predictor = 0; break;
        case 1: predictor = a; break;
        case 2: predictor = b; break;
        case 3: predictor = (a + b) >>> 1; break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new Error(`PNG row ${y}: unknown filter ${filter}`);
      }
      pixels[out + x] = (line[x] + predictor) & 0xff;
    }
  }

  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const p = i * channels;
    const [r, g, b, alpha] = channels === 4 ? [pixels[p], pixels[p + 1], pixels[p + 2], pixels[p + 3]]
      : channels === 3 ? [pixels[p], pixels[p + 1], pixels[p + 2], 255]
      : channels === 2 ? [pixels[p], pixels[p], pixels[p], pixels[p + 1]]
      : [pixels[p], pixels[p], pixels[p], 255];
    rgba.set([r, g, b, alpha], i * 4);
  }
  return { width, height, rgba };
}

/** How many pixels are within `tolerance` (per channel) of the colour '#rrggbb'. */
export function countColour(image: Image, hex: string, tolerance = 4): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < image.rgba.length; i += 4) {
    if (Math.abs(image.rgba[i] - r) <= tolerance && Math.abs(image.rgba[i + 1] - g) <= tolerance && Math.abs(image.rgba[i + 2] - b) <= tolerance) n++;
  }
  return n;
}
