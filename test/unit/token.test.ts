import { describe, expect, it } from 'vitest';
import { CONNECTION_TOKEN_SCHEMA, newConnectionToken, tokenBytes, tokensIn } from '../../shared/token.js';
import { payloadFor } from '../../initiator/payloads.js';

describe('connection tokens (shared/token.ts)', () => {
  it('are mbp- and 12 base32 characters, different each time', () => {
    const tokens = new Set(Array.from({ length: 200 }, newConnectionToken));
    expect(tokens.size).toBe(200);
    for (const t of tokens) expect(t).toMatch(CONNECTION_TOKEN_SCHEMA);
  });

  it('are found anywhere in a stream start, several in order, and never in the payload patterns alone', () => {
    const a = newConnectionToken();
    const b = newConnectionToken();
    const bytes = Uint8Array.from([...tokenBytes('xx'), ...tokenBytes(a), ...tokenBytes(' mbp-'), ...tokenBytes(b)]);
    expect(tokensIn(bytes)).toEqual([a, b]);
    // a prefix cut short, or one with a character outside the alphabet, is no token
    expect(tokensIn(tokenBytes(a.slice(0, 15)))).toEqual([]);
    expect(tokensIn(tokenBytes('mbp-abcdefghijk1'))).toEqual([]);
    for (const port of [34343, 80, 443]) expect(tokensIn(payloadFor(port, 1448, 'auto', 'responder.example'))).toEqual([]);
  });
});

describe('payloads carrying a token (initiator/payloads.ts)', () => {
  const token = 'mbp-abcdefgh2345';
  it('puts it in the request path on 80, the ClientHello random on 443, after the pattern\'s first 16 bytes elsewhere, at the same length', () => {
    for (const port of [34343, 80, 443]) {
      const plain = payloadFor(port, 100, 'auto', '198.19.0.2');
      const marked = payloadFor(port, 100, 'auto', '198.19.0.2', token);
      expect(marked.length).toBe(100);
      expect(tokensIn(marked)).toEqual([token]);
      // the shape the port's boxes act on is kept
      expect(marked.subarray(0, 4)).toEqual(plain.subarray(0, 4));
    }
    expect(new TextDecoder().decode(payloadFor(80, 100, 'auto', '198.19.0.2', token))).toMatch(/^GET \/mbp-abcdefgh2345 HTTP\/1\.1\r\n/);
    const hello = payloadFor(443, 200, 'auto', 'responder.example', token);
    // record (5) + handshake header (4) + client_version (2): the random
    expect(new TextDecoder().decode(hello.subarray(11, 27))).toBe(token);
    const pattern = payloadFor(34343, 64, 'auto', undefined, token);
    expect(new TextDecoder().decode(pattern.subarray(0, 16))).toBe('abcdefghijklmnop');
    expect(new TextDecoder().decode(pattern.subarray(16, 32))).toBe(token);
  });

  it('keeps a short HTTP request a request: without the token when only the plain path fits', () => {
    // 75 bytes: "GET /mbprobe HTTP/1.1", Host and X-Pad fit (71); with the token's longer path (80) they would not
    const host = 'responder-with-a-name.example';
    const marked = new TextDecoder().decode(payloadFor(80, 75, 'auto', host, token));
    expect(marked).toMatch(/^GET \/mbprobe HTTP\/1\.1\r\nHost: responder-with-a-name\.example\r\nX-Pad: /);
    expect(marked.endsWith('\r\n\r\n')).toBe(true);
    // and a pattern too short to hold one after its first 16 bytes carries none
    expect(tokensIn(payloadFor(34343, 20, 'auto', undefined, token))).toEqual([]);
  });
});
