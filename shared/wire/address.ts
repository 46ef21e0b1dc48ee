import { EncodeError } from './errors.js';

/** Addresses are kept as their usual text form: "192.0.2.1", "2001:db8::1" (RFC 5952 compressed). */
export function ipv4ToString(b: Uint8Array, at = 0): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

export function ipv4ToBytes(address: string): Uint8Array {
  // Hot path (every checksum of every segment the responder sends): parse by hand, strictly.
  const out4 = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= address.length; i++) {
    const c = i < address.length ? address.charCodeAt(i) : 46;
    if (c >= 48 && c <= 57 && digits < 3) {
      value = value * 10 + (c - 48);
      digits++;
    } else if (c === 46 && digits > 0 && value <= 255 && part < 4) {
      out4[part++] = value;
      value = 0;
      digits = 0;
    } else {
      part = -1;
      break;
    }
  }
  if (part === 4) return out4;
  const parts = address.split('.');
  const out = new Uint8Array(4);
  if (parts.length !== 4) throw badAddress(address, 'IPv4');
  parts.forEach((p, i) => {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw badAddress(address, 'IPv4');
    out[i] = Number(p);
  });
  return out;
}

export function ipv6ToString(b: Uint8Array, at = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[at + 2 * i] << 8) | b[at + 2 * i + 1]);
  // RFC 5952: compress the longest run (first if tied) of two or more zero groups.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

export function ipv6ToBytes(address: string): Uint8Array {
  const out = new Uint8Array(16);
  let text = address;
  // An embedded IPv4 tail ("::ffff:192.0.2.1") becomes two hex groups.
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail) {
    const v4 = ipv4ToBytes(v4Tail[1]);
    text = text.slice(0, v4Tail.index) + `${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) throw badAddress(address, 'IPv6');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw badAddress(address, 'IPv6');
    return parseInt(g, 16);
  }));
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) throw badAddress(address, 'IPv6');
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  groups.forEach((g, i) => {
    out[2 * i] = g >>> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

export function isIpv6(address: string): boolean {
  return address.includes(':');
}

export function addressToBytes(address: string): Uint8Array {
  return isIpv6(address) ? ipv6ToBytes(address) : ipv4ToBytes(address);
}

function badAddress(address: string, family: string): EncodeError {
  return new EncodeError('BAD_ADDRESS', `"${address}" is not a valid ${family} address`);
}
