/**
 * HTTP request heads (shared/http.ts) and the rows shared/diff.ts adds when a proxy rewrote one:
 * squid's forwarded request (Via, X-Forwarded-For, Cache-Control added, Host kept but moved), an
 * absolute-form request line, a header whose case and spacing changed, and bytes that are no request.
 */
import { describe, expect, it } from 'vitest';
import { diffSegments, type DiffRow } from '../../shared/diff.js';
import { diffHttpHeads, parseRequestHead, startsLikeRequest } from '../../shared/http.js';
import { asPacket, decodePacket, encodePacket } from '../../shared/wire/index.js';
import { loadFixtures } from '../helpers/fixtures.js';

const bytes = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
const crlf = (...lines: string[]): Uint8Array => bytes(lines.map((l) => `${l}\r\n`).join(''));

/** What mbprobe-initiator sends on port 80 (payloadFor(80, 120, 'auto', 'responder.example.net')). */
const SENT = crlf('GET /mbprobe HTTP/1.1', 'Host: responder.example.net', 'User-Agent: mbprobe/1', 'Accept: */*', 'X-Pad: ghijklmnopqrstuvwxy', '');
/** The same request as squid 5.7 in intercept mode forwards it: Host rebuilt after the others, its own headers appended. */
const SQUID = crlf(
  'GET /mbprobe HTTP/1.1', 'User-Agent: mbprobe/1', 'Accept: */*', 'X-Pad: ghijklmnopqrstuvwxy', 'Host: responder.example.net',
  'Via: 1.1 proxy (squid/5.7)', 'X-Forwarded-For: 198.18.0.2', 'Cache-Control: max-age=259200', 'Connection: keep-alive', '',
);

describe('parseRequestHead', () => {
  it('reads the request line and every header line as written', () => {
    const head = parseRequestHead(SENT)!;
    expect(head.requestLine).toEqual({ method: 'GET', target: '/mbprobe', version: 'HTTP/1.1', line: 'GET /mbprobe HTTP/1.1' });
    expect(head.headers.map((h) => [h.name, h.key, h.value, h.line])).toEqual([
      ['Host', 'host', 'responder.example.net', 'Host: responder.example.net'],
      ['User-Agent', 'user-agent', 'mbprobe/1', 'User-Agent: mbprobe/1'],
      ['Accept', 'accept', '*/*', 'Accept: */*'],
      ['X-Pad', 'x-pad', 'ghijklmnopqrstuvwxy', 'X-Pad: ghijklmnopqrstuvwxy'],
    ]);
    expect(head).toMatchObject({ complete: true, length: SENT.length, otherLines: [] });
  });

  it('is tolerant: bare LF, a repeated name, a folded line, a line that is no header, a head cut short', () => {
    const text = 'POST  http://h/x   HTTP/1.0\nA: 1\nset-cookie: a\nSet-Cookie: b\n  more\nno colon here\nX:\n\nbody';
    const head = parseRequestHead(bytes(text))!;
    expect(head.requestLine).toMatchObject({ method: 'POST', target: 'http://h/x', version: 'HTTP/1.0' });
    expect(head.headers.map((h) => [h.key, h.value])).toEqual([['a', '1'], ['set-cookie', 'a'], ['set-cookie#2', 'b more'], ['x', '']]);
    expect(head.headers[2].line).toBe('Set-Cookie: b\r\n  more');
    expect(head.otherLines).toEqual(['no colon here']);
    expect(head.complete).toBe(true);
    expect(head.length).toBe(text.indexOf('body'));
    const cut = parseRequestHead(SENT.subarray(0, 60))!;
    expect(cut.complete).toBe(false);
    expect(cut.headers.map((h) => h.key)).toEqual(['host']);
    expect(cut.length).toBe('GET /mbprobe HTTP/1.1\r\nHost: responder.example.net\r\n'.length);
  });

  it('is undefined for bytes that do not start with a whole request line, and never throws', () => {
    for (const text of ['', 'GET /mbprobe HTTP/1.1', 'HTTP/1.1 200 OK\r\n\r\n', 'abcdefgh\r\n\r\n', 'GET /\r\n\r\n', '\u0016\u0003\u0001\u0000\u0020']) {
      expect(parseRequestHead(bytes(text)), JSON.stringify(text)).toBeUndefined();
    }
    const noise = new Uint8Array(4096).map((_, i) => (i * 2654435761) >>> 24);
    expect(() => parseRequestHead(noise)).not.toThrow();
    expect(parseRequestHead(new Uint8Array(200_000).fill(0x41))).toBeUndefined();
  });

  it('startsLikeRequest: a method and a space, whatever follows', () => {
    expect(startsLikeRequest(bytes('GET /mbprobe HTTP/1.1\r\n'))).toBe(true);
    expect(startsLikeRequest(bytes('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'))).toBe(true);
    expect(startsLikeRequest(bytes('nopqrstuvwxyz\r\n\r\n'))).toBe(false);
    expect(startsLikeRequest(bytes('Agent: mbprobe/1\r\n\r\n'))).toBe(false);
  });
});

describe('diffHttpHeads', () => {
  it('squid: Via, X-Forwarded-For, Cache-Control and Connection added, Host kept but moved, nothing removed or changed', () => {
    const diff = diffHttpHeads(parseRequestHead(SENT)!, parseRequestHead(SQUID)!);
    expect(diff.requestLine).toBeUndefined();
    expect(diff.added.map((h) => h.line)).toEqual(['Via: 1.1 proxy (squid/5.7)', 'X-Forwarded-For: 198.18.0.2', 'Cache-Control: max-age=259200', 'Connection: keep-alive']);
    expect(diff.removed).toEqual([]);
    expect(diff.changed).toEqual([]);
    expect(diff.reordered).toEqual({ sent: ['host', 'user-agent', 'accept', 'x-pad'], received: ['user-agent', 'accept', 'x-pad', 'host'] });
  });

  it('names a header whose case or spacing changed, one whose value changed, one removed, and an absolute-form request line', () => {
    const received = crlf('GET http://responder.example.net/mbprobe HTTP/1.1', 'host: responder.example.net', 'User-Agent:  mbprobe/1', 'X-Pad: ghijklmnopqrstuvwxy', '');
    const diff = diffHttpHeads(parseRequestHead(SENT)!, parseRequestHead(received)!);
    expect(diff.requestLine).toEqual({ sent: 'GET /mbprobe HTTP/1.1', received: 'GET http://responder.example.net/mbprobe HTTP/1.1' });
    expect(diff.changed.map((c) => [c.sent.line, c.received.line])).toEqual([
      ['Host: responder.example.net', 'host: responder.example.net'],
      ['User-Agent: mbprobe/1', 'User-Agent:  mbprobe/1'],
    ]);
    expect(diff.removed.map((h) => h.line)).toEqual(['Accept: */*']);
    expect(diff.added).toEqual([]);
    expect(diff.reordered).toBeUndefined();
  });

  it('compares only the request line when either head is cut short (its missing lines are unknown, not removed)', () => {
    const diff = diffHttpHeads(parseRequestHead(SENT)!, parseRequestHead(SQUID.subarray(0, 60))!);
    expect(diff).toMatchObject({ headersCompared: false, added: [], removed: [], changed: [] });
  });
});

describe('diffSegments on HTTP payloads', () => {
  const fixture = loadFixtures().find((f) => f.name === 'v4-normal-data-c2s')!.bytes;
  const withPayload = (payload: Uint8Array): Uint8Array => {
    const p = asPacket(decodePacket(fixture))!;
    p.payload = payload;
    return encodePacket(p, { fixLengths: true, computeChecksums: true });
  };
  const httpRows = (rows: DiffRow[]): DiffRow[] => rows.filter((r) => r.field.startsWith('http.'));

  it('adds a row per header line squid added and one for the order, beside the byte-level rows', () => {
    const rows = diffSegments(withPayload(SENT), withPayload(SQUID));
    expect(rows.filter((r) => r.layer === 'payload' && !r.field.startsWith('http.')).map((r) => r.field)).toEqual(['length', 'bytes']);
    expect(httpRows(rows)).toEqual([
      { layer: 'payload', field: 'http.header.via', sent: null, received: 'Via: 1.1 proxy (squid/5.7)', class: 'interference', change: 'added' },
      { layer: 'payload', field: 'http.header.x-forwarded-for', sent: null, received: 'X-Forwarded-For: 198.18.0.2', class: 'interference', change: 'added' },
      { layer: 'payload', field: 'http.header.cache-control', sent: null, received: 'Cache-Control: max-age=259200', class: 'interference', change: 'added' },
      { layer: 'payload', field: 'http.header.connection', sent: null, received: 'Connection: keep-alive', class: 'interference', change: 'added' },
      { layer: 'payload', field: 'http.header-order', sent: 'host,user-agent,accept,x-pad', received: 'user-agent,accept,x-pad,host', class: 'interference', change: 'reordered' },
    ]);
  });

  it('names the request line, a changed, a removed header and a line that is no header', () => {
    const received = crlf('GET http://responder.example.net/mbprobe HTTP/1.1', 'host: responder.example.net', 'User-Agent: mbprobe/1', 'X-Pad: ghijklmnopqrstuvwxy', 'garbage', '');
    expect(httpRows(diffSegments(withPayload(SENT), withPayload(received)))).toEqual([
      { layer: 'payload', field: 'http.request-line', sent: 'GET /mbprobe HTTP/1.1', received: 'GET http://responder.example.net/mbprobe HTTP/1.1', class: 'interference', change: 'modified' },
      { layer: 'payload', field: 'http.header.accept', sent: 'Accept: */*', received: null, class: 'interference', change: 'removed' },
      { layer: 'payload', field: 'http.header.host', sent: 'Host: responder.example.net', received: 'host: responder.example.net', class: 'interference', change: 'modified' },
      { layer: 'payload', field: 'http.line', sent: null, received: 'garbage', class: 'interference', change: 'added' },
    ]);
  });

  it('adds nothing when the payloads are equal, or when either is no HTTP request', () => {
    expect(diffSegments(withPayload(SENT), withPayload(SENT))).toEqual([]);
    expect(httpRows(diffSegments(withPayload(SENT), withPayload(bytes('HTTP/1.1 200 OK\r\n\r\n'))))).toEqual([]);
    expect(httpRows(diffSegments(withPayload(bytes('abcdefgh\r\n\r\n')), withPayload(bytes('abcdefgX\r\n\r\n'))))).toEqual([]);
  });

  it('shortens a very long line in its row', () => {
    const pad = (c: string): Uint8Array => crlf('GET /mbprobe HTTP/1.1', 'Host: h', `X-Pad: ${c.repeat(1000)}`, '');
    const [padRow] = httpRows(diffSegments(withPayload(pad('a')), withPayload(pad('b'))));
    expect(padRow.field).toBe('http.header.x-pad');
    expect(padRow.sent).toBe(`X-Pad: ${'a'.repeat(193)}…`);
  });
});
