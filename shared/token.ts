import { randomBytes } from 'node:crypto';

/**
 * Connection tokens: how the responder knows a test's connection behind a box that rewrites
 * everything (a split-connection proxy, which opens its own connection to the responder with its own
 * address, port and ISN). The box relays the stream, so a token in the stream's first bytes (the
 * path of the HTTP request on 80, the ClientHello's random on 443, the pattern's head elsewhere:
 * initiator/payloads.ts) names the test its connection belongs to, whatever else it changed.
 *
 * A token is `mbp-` and 12 characters of base32 (60 random bits): printable, so an HTTP proxy relays
 * it in a request path; never in a payload pattern (lowercase letters only) by chance.
 */
export const CONNECTION_TOKEN_LENGTH = 16;
const PREFIX = 'mbp-';
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
export const CONNECTION_TOKEN_SCHEMA = /^mbp-[a-z2-7]{12}$/;

export function newConnectionToken(): string {
  const bytes = randomBytes(12);
  return PREFIX + [...bytes].map((b) => ALPHABET[b & 31]).join('');
}

/** The bytes of a token as they go on the wire (ASCII). */
export const tokenBytes = (token: string): Uint8Array => Uint8Array.from(token, (c) => c.charCodeAt(0));

const isTokenChar = (b: number): boolean => (b >= 0x61 && b <= 0x7a) || (b >= 0x32 && b <= 0x37);

/** Every token in `bytes` (the start of a stream), in order. */
export function tokensIn(bytes: Uint8Array): string[] {
  const found: string[] = [];
  for (let i = 0; i + CONNECTION_TOKEN_LENGTH <= bytes.length; i++) {
    if (bytes[i] !== 0x6d || bytes[i + 1] !== 0x62 || bytes[i + 2] !== 0x70 || bytes[i + 3] !== 0x2d) continue;
    let ok = true;
    for (let k = 4; k < CONNECTION_TOKEN_LENGTH && ok; k++) ok = isTokenChar(bytes[i + k]);
    if (!ok) continue;
    found.push(String.fromCharCode(...bytes.subarray(i, i + CONNECTION_TOKEN_LENGTH)));
    i += CONNECTION_TOKEN_LENGTH - 1;
  }
  return found;
}
