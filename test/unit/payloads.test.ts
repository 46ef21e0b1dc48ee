/**
 * The port-shaped payloads: an HTTP request a forwarding proxy accepts (checked with Node's own HTTP
 * parser over loopback) and a ClientHello an SNI router parses (checked with tshark on a pcapng
 * written by our writer). Every payload is exactly the length asked for, and the same every time.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_USER_AGENT, payloadFor, responderHost, TlsExtension } from '../../initiator/payloads.js';
import { LINKTYPE_RAW, writePcapng } from '../../shared/pcapng.js';
import { encodePacket, TcpFlag } from '../../shared/wire/index.js';
import { installed } from '../helpers/tools.js';

const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const HOSTS = [
  { typed: 'responder.example.net', host: 'responder.example.net', sni: 'responder.example.net' },
  { typed: 'mbprobe.example.org.', host: 'mbprobe.example.org', sni: 'mbprobe.example.org' },
  { typed: '198.19.0.2', host: '198.19.0.2', sni: undefined },
  { typed: '2001:db8:1::2', host: '[2001:db8:1::2]', sni: undefined },
] as const;
/** The probe sizes the catalogue uses (64: syn-data; 100: most data tests; 800: coalesce; 1448: split) and a few more. */
const LENGTHS = [64, 100, 121, 200, 517, 800, 1448];

describe('responderHost', () => {
  it('tells DNS names from IPv4 and IPv6 literals', () => {
    expect(responderHost('probe.example.net')).toEqual({ kind: 'dns', name: 'probe.example.net' });
    expect(responderHost('probe.example.net.')).toEqual({ kind: 'dns', name: 'probe.example.net' });
    expect(responderHost('localhost')).toEqual({ kind: 'dns', name: 'localhost' });
    expect(responderHost('198.19.0.2')).toEqual({ kind: 'ipv4', address: '198.19.0.2' });
    expect(responderHost('2001:db8::1')).toEqual({ kind: 'ipv6', address: '2001:db8::1' });
    expect(responderHost('[2001:db8::1]')).toEqual({ kind: 'ipv6', address: '2001:db8::1' });
    expect(responderHost('fe80::1%eth0')).toEqual({ kind: 'ipv6', address: 'fe80::1' });
  });

  it('is undefined for what is none of them, so nothing the user typed reaches a header unchecked', () => {
    for (const bad of ['', '1.2.3', 'a..b', '-x.example', 'bad host', 'x.example\r\nX-Injected: 1', `${'a'.repeat(64)}.example`]) {
      expect(responderHost(bad), bad).toBeUndefined();
    }
    expect(responderHost(undefined)).toBeUndefined();
  });
});

describe('HTTP request on port 80', () => {
  it('is exactly `length` bytes, deterministic, one header block naming the responder', () => {
    for (const { typed, host } of HOSTS) {
      for (const length of LENGTHS) {
        const payload = payloadFor(80, length, 'auto', typed);
        expect(payload.length).toBe(length);
        expect(payloadFor(80, length, 'auto', typed)).toEqual(payload);
        const request = text(payload);
        expect(request.startsWith(`GET /mbprobe HTTP/1.1\r\nHost: ${host}\r\n`), `${typed} ${length}: ${JSON.stringify(request)}`).toBe(true);
        expect(request.indexOf('\r\n\r\n')).toBe(length - 4);
        expect(request).toMatch(/^[\x20-\x7e\r\n]*$/);
        expect(request).toMatch(/\r\nX-Pad: [a-z]*\r\n\r\n$/);
      }
    }
  });

  it('has User-Agent and Accept when they fit, and leaves out Accept, then User-Agent, for a long name in a short probe', () => {
    const full = (host: string): number => `GET /mbprobe HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${HTTP_USER_AGENT}\r\nAccept: */*\r\nX-Pad: \r\n\r\n`.length;
    const host = 'responder.example.net';
    expect(text(payloadFor(80, full(host), 'auto', host))).toBe(`GET /mbprobe HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${HTTP_USER_AGENT}\r\nAccept: */*\r\nX-Pad: \r\n\r\n`);
    expect(text(payloadFor(80, full(host) + 3, 'auto', host))).toMatch(/\r\nAccept: \*\/\*\r\nX-Pad: [a-z]{3}\r\n\r\n$/);
    expect(text(payloadFor(80, full(host) - 1, 'auto', host))).toMatch(new RegExp(`^GET /mbprobe HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${HTTP_USER_AGENT}\r\nX-Pad: [a-z]{12}\r\n\r\n$`));
    const longName = 'a-rather-long-responder-name.example.org';
    expect(text(payloadFor(80, 100, 'auto', longName))).toMatch(new RegExp(`^GET /mbprobe HTTP/1.1\r\nHost: ${longName}\r\nX-Pad: [a-z]+\r\n\r\n$`));
  });

  it('falls back to the plain pattern below the shortest request, and with --payload raw', () => {
    const shortest = 'GET /mbprobe HTTP/1.1\r\nHost: 198.19.0.2\r\nX-Pad: \r\n\r\n'.length;
    expect(text(payloadFor(80, shortest, 'auto', '198.19.0.2'))).toBe('GET /mbprobe HTTP/1.1\r\nHost: 198.19.0.2\r\nX-Pad: \r\n\r\n');
    expect(payloadFor(80, shortest - 1, 'auto', '198.19.0.2')).toEqual(payloadFor(34343, shortest - 1));
    expect(text(payloadFor(80, 30, 'raw', '198.19.0.2'))).toBe('abcdefghijklmnopqrstuvwxyzabcd');
    expect(payloadFor(80, 100, 'raw', 'responder.example.net')).toEqual(payloadFor(34343, 100));
  });

  it('names a placeholder host when no usable name was given', () => {
    expect(text(payloadFor(80, 100))).toMatch(/^GET \/mbprobe HTTP\/1.1\r\nHost: mbprobe\.test\r\n/);
    expect(text(payloadFor(80, 100, 'auto', 'x.example\r\nX-Injected: 1'))).toMatch(/^GET \/mbprobe HTTP\/1.1\r\nHost: mbprobe\.test\r\n/);
  });

  describe('Node\'s HTTP parser accepts it', () => {
    let server: Server;
    let port: number;
    const seen: Array<{ method?: string; url?: string; headers: IncomingHttpHeaders; httpVersion: string }> = [];

    beforeAll(async () => {
      server = createServer((req, res) => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, httpVersion: req.httpVersion });
        res.writeHead(204, { Connection: 'close' }).end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    /** Sends the bytes as they are on a plain socket; resolves with what the server answered. */
    const exchange = (bytes: Uint8Array): Promise<string> => new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
      socket.on('data', (c) => chunks.push(c));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
    });

    it('as a GET of /mbprobe with the responder as Host, for every name kind and probe size', async () => {
      for (const { typed, host } of HOSTS) {
        for (const length of LENGTHS) {
          const payload = payloadFor(80, length, 'auto', typed);
          if (!text(payload).startsWith('GET ')) continue;
          seen.length = 0;
          const answer = await exchange(payload);
          expect(answer, `${typed} ${length}`).toMatch(/^HTTP\/1\.1 204 /);
          expect(seen).toHaveLength(1);
          expect(seen[0]).toMatchObject({ method: 'GET', url: '/mbprobe', httpVersion: '1.1' });
          expect(seen[0].headers.host).toBe(host);
          expect(seen[0].headers['x-pad']).toMatch(/^[a-z]*$/);
          if (length >= 100 && typed.length < 20) expect(seen[0].headers['user-agent']).toBe(HTTP_USER_AGENT);
        }
      }
    });
  });
});

// ---- TLS ----

interface ParsedHello {
  recordType: number;
  recordVersion: number;
  recordLength: number;
  handshakeType: number;
  handshakeLength: number;
  clientVersion: number;
  random: Uint8Array;
  sessionId: Uint8Array;
  cipherSuites: number[];
  compression: number[];
  extensions: Array<{ type: number; data: Uint8Array }>;
  /** Bytes left over after the extensions block (0 for a well-formed record). */
  trailing: number;
}

/** A strict reading of the record, independent of the writer: every length must add up. */
function parseHello(b: Uint8Array): ParsedHello {
  const u16 = (at: number): number => (b[at] << 8) | b[at + 1];
  let at = 9;
  const clientVersion = u16(at);
  const random = b.subarray(at + 2, at + 34);
  at += 34;
  const sessionId = b.subarray(at + 1, at + 1 + b[at]);
  at += 1 + b[at];
  const cipherSuites = Array.from({ length: u16(at) / 2 }, (_, i) => u16(at + 2 + 2 * i));
  at += 2 + u16(at);
  const compression = Array.from(b.subarray(at + 1, at + 1 + b[at]));
  at += 1 + b[at];
  const extensionsEnd = at + 2 + u16(at);
  at += 2;
  const extensions: ParsedHello['extensions'] = [];
  while (at + 4 <= extensionsEnd) {
    extensions.push({ type: u16(at), data: b.subarray(at + 4, at + 4 + u16(at + 2)) });
    at += 4 + u16(at + 2);
  }
  expect(at).toBe(extensionsEnd);
  return {
    recordType: b[0], recordVersion: u16(1), recordLength: u16(3), handshakeType: b[5], handshakeLength: (b[6] << 16) | u16(7),
    clientVersion, random, sessionId, cipherSuites, compression, extensions, trailing: b.length - extensionsEnd,
  };
}

const serverNameOf = (hello: ParsedHello): string | undefined => {
  const ext = hello.extensions.find((e) => e.type === TlsExtension.SERVER_NAME);
  if (!ext) return undefined;
  expect(ext.data[2]).toBe(0); // host_name
  expect((ext.data[0] << 8) | ext.data[1]).toBe(ext.data.length - 2);
  return text(ext.data.subarray(5, 5 + ((ext.data[3] << 8) | ext.data[4])));
};

/** The smallest full hello without a server name: 68 bytes before the extensions, 49 of them, 4 of padding header. */
const FULL_HELLO_MIN = 121;

describe('TLS ClientHello on port 443', () => {
  it('is one well-formed record of exactly `length` bytes, padded by its last extension', () => {
    for (const { typed, sni } of HOSTS) {
      for (const length of [...LENGTHS.filter((l) => l >= 100), 16389]) {
        const payload = payloadFor(443, length, 'auto', typed);
        expect(payload.length).toBe(length);
        expect(payloadFor(443, length, 'auto', typed)).toEqual(payload);
        const hello = parseHello(payload);
        expect(hello).toMatchObject({ recordType: 22, recordVersion: 0x0301, recordLength: length - 5, handshakeType: 1, handshakeLength: length - 9, clientVersion: 0x0303, trailing: 0 });
        expect(hello.random).toHaveLength(32);
        expect(hello.sessionId).toHaveLength(0);
        expect(hello.compression).toEqual([0]);
        expect(hello.extensions.at(-1)!.type).toBe(TlsExtension.PADDING);
        expect(hello.extensions.at(-1)!.data.every((x) => x === 0)).toBe(true);
        expect(serverNameOf(hello), `${typed} ${length}`).toBe(sni);
      }
    }
  });

  it('offers TLS 1.3 and 1.2 (versions, groups with an empty key_share, signature algorithms) when the full hello fits', () => {
    const hello = parseHello(payloadFor(443, 517, 'auto', 'responder.example.net'));
    expect(hello.extensions.map((e) => e.type)).toEqual([
      TlsExtension.SERVER_NAME, TlsExtension.SUPPORTED_VERSIONS, TlsExtension.SUPPORTED_GROUPS, TlsExtension.KEY_SHARE, TlsExtension.SIGNATURE_ALGORITHMS, TlsExtension.PADDING,
    ]);
    expect(hello.cipherSuites).toEqual([0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8]);
    expect(Array.from(hello.extensions[1].data)).toEqual([4, 0x03, 0x04, 0x03, 0x03]);
    expect(Array.from(hello.extensions[3].data)).toEqual([0, 0]);
    // The smallest full hello has an empty padding extension; one byte less takes the compact one.
    const smallest = parseHello(payloadFor(443, FULL_HELLO_MIN, 'auto', '198.19.0.2'));
    expect(smallest.extensions.at(-1)!.data).toHaveLength(0);
    expect(smallest.cipherSuites).toHaveLength(9);
    expect(parseHello(payloadFor(443, FULL_HELLO_MIN - 1, 'auto', '198.19.0.2')).cipherSuites).toEqual([0xc02b, 0xc02f]);
  });

  it('keeps the server name in a 100-byte probe by offering less, and falls back to the bare headers below that', () => {
    const compact = parseHello(payloadFor(443, 100, 'auto', 'rp.example'));
    expect(compact.extensions.map((e) => e.type)).toEqual([TlsExtension.SERVER_NAME, TlsExtension.SUPPORTED_GROUPS, TlsExtension.SIGNATURE_ALGORITHMS, TlsExtension.PADDING]);
    const minimal = parseHello(payloadFor(443, 100, 'auto', 'responder.example.net'));
    expect(minimal.extensions.map((e) => e.type)).toEqual([TlsExtension.SERVER_NAME, TlsExtension.PADDING]);
    expect(minimal.cipherSuites).toEqual([0xc02f, 0x009c]);
    expect(serverNameOf(minimal)).toBe('responder.example.net');
    const fallback = payloadFor(443, 55, 'auto', '198.19.0.2');
    expect(Array.from(fallback.subarray(0, 11))).toEqual([0x16, 0x03, 0x01, 0, 50, 1, 0, 0, 46, 0x03, 0x03]);
    expect(text(fallback.subarray(11))).toMatch(/^[a-z]+$/);
    expect(payloadFor(443, 8, 'auto', '198.19.0.2')).toEqual(payloadFor(34343, 8));
    expect(payloadFor(443, 200, 'raw', 'responder.example.net')).toEqual(payloadFor(34343, 200));
  });
});

// ---- tshark ----

const TSHARK = installed('tshark');

describe.skipIf(!TSHARK)('tshark dissects the ClientHello as we built it', () => {
  const cases = HOSTS.flatMap(({ typed, sni }) => [100, 200, 517, 1448].map((length) => ({ typed, sni, length })));
  let dir: string;
  let rows: string[][] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mbprobe-payloads-'));
    const file = join(dir, 'hellos.pcapng');
    // One TCP stream per hello (its own source port), to port 443 where tshark expects TLS.
    const packets = cases.map(({ typed, length }, i) => ({
      interfaceId: 0,
      timestampNs: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n,
      data: encodePacket({
        ip: { version: 4, tos: 0, id: i + 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '192.0.2.1', dst: '198.51.100.2' },
        tcp: { srcPort: 40000 + i, dstPort: 443, seq: 1000, ack: 1, flags: TcpFlag.ACK | TcpFlag.PSH, window: 64240 },
        payload: payloadFor(443, length, 'auto', typed),
      }),
    }));
    writeFileSync(file, writePcapng({ application: 'mbprobe payloads.test.ts', interfaces: [{ linkType: LINKTYPE_RAW, resolution: 'ns', name: 'crafted' }], packets }));
    const fields = [
      'tls.record.content_type', 'tls.record.version', 'tls.record.length', 'tls.handshake.type', 'tls.handshake.version',
      'tls.handshake.extensions_server_name', 'tls.handshake.extension.type', 'tls.handshake.extensions.supported_version',
      '_ws.malformed', '_ws.expert.message',
    ];
    const out = execFileSync(TSHARK!, ['-r', file, '-n', '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f])], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    rows = out.trimEnd().split('\n').map((line) => line.split('|'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('one ClientHello record per packet, the right server name, nothing malformed and no expert warnings', () => {
    expect(rows).toHaveLength(cases.length);
    for (const [i, { typed, sni, length }] of cases.entries()) {
      const [contentType, recordVersion, recordLength, handshakeType, helloVersion, serverName, extensionTypes, supportedVersions, malformed, expert] = rows[i];
      const label = `${typed} ${length}: ${rows[i].join('|')}`;
      expect({ contentType, recordVersion, recordLength, handshakeType, helloVersion, malformed, expert }, label).toEqual({
        contentType: '22', recordVersion: '0x0301', recordLength: String(length - 5), handshakeType: '1', helloVersion: '0x0303', malformed: '', expert: '',
      });
      expect(serverName, label).toBe(sni ?? '');
      const types = extensionTypes.split(',').map(Number);
      expect(types.at(-1), label).toBe(TlsExtension.PADDING);
      if (length >= 200) expect(supportedVersions, label).toBe('0x0304,0x0303');
    }
  });
});
