/**
 * The responder's answers to the port's protocol: after the pure ACK, an HTTP response to the segment
 * that ends a request head on port 80 and a TLS alert to a whole ClientHello record on port 443, so a
 * proxy that waits for the server's answer has one to relay. Both are pure functions of the segment.
 */
import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { payloadFor } from '../../initiator/payloads.js';
import { endsHttpRequest, httpResponse, isClientHelloRecord, protocolFor, replyTo, TLS_HANDSHAKE_FAILURE_ALERT, type EngineConfig } from '../../responder/engine.js';
import { startControlApi } from '../../responder/control-api.js';
import { ResponderService } from '../../responder/service.js';
import { Store } from '../../shared/store.js';
import { decodePacket, encodePacket, type Packet } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { mss, nop, sackPermitted, timestamps, windowScale } from '../../shared/wire/tcp-options.js';

const config: EngineConfig = { secret: new Uint8Array(32).fill(7), mss: 1460, windowScale: 7, ttl: 64, nowMs: () => 5000 };
const bytes = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

function segment(port: number, tcp: Partial<NonNullable<Packet['tcp']>>, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  return encodePacket({
    ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '198.18.0.2', dst: '198.19.0.2' },
    tcp: { srcPort: 40000, dstPort: port, seq: 1001, ack: 5000, flags: TcpFlag.ACK | TcpFlag.PSH, window: 502, ...tcp },
    payload,
  });
}
const dataTo = (port: number, payload: Uint8Array, tcp: Partial<NonNullable<Packet['tcp']>> = {}) => decodePacket(segment(port, tcp, payload));
const summary = (replies: Packet[]) => replies.map((p) => ({ flags: p.tcp!.flags, seq: p.tcp!.seq, ack: p.tcp!.ack, payload: text(p.payload) }));

const REQUEST = payloadFor(80, 100, 'auto', '198.19.0.2');
const HELLO = payloadFor(443, 517, 'auto', 'responder.example.net');

describe('protocolFor', () => {
  it('answers HTTP on 80 and TLS on 443, nothing elsewhere', () => {
    expect([80, 443, 34343, 8080].map(protocolFor)).toEqual(['http', 'tls', undefined, undefined]);
  });
});

describe('HTTP on port 80', () => {
  it('answers the segment ending a request head: the usual pure ACK, then the response at the same seq', () => {
    const replies = replyTo(dataTo(80, REQUEST), {}, config);
    expect(summary(replies)).toEqual([
      { flags: TcpFlag.ACK, seq: 5000, ack: 1101, payload: '' },
      { flags: TcpFlag.ACK | TcpFlag.PSH, seq: 5000, ack: 1101, payload: text(httpResponse(REQUEST)) },
    ]);
    expect(replies[1].tcp!.srcPort).toBe(80);
    expect(replies[1].payload.length).toBeLessThan(300);
  });

  it('the response is these exact bytes: 200, text/plain, Content-Length, no-store, close; the length, a SHA-256 prefix and the request line', () => {
    const response = text(httpResponse(REQUEST));
    const body = `mbprobe 100 ${createHash('sha256').update(REQUEST).digest('hex').slice(0, 16)}\nGET /mbprobe HTTP/1.1\n`;
    expect(response).toBe(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`);
    // The longest echoed request line still leaves the response well under 300 bytes.
    const long = httpResponse(bytes(`GET /${'x'.repeat(2000)}\u0001 HTTP/1.1\r\nHost: h\r\n\r\n`));
    expect(long.length).toBeLessThan(220);
    expect(text(long)).toMatch(/\nGET \/x{59}\n$/);
  });

  it('is byte-identical for the same segment (pure, like the ISN), and differs with the request', () => {
    const encoded = () => replyTo(dataTo(80, REQUEST), {}, config).map((p) => encodePacket(p));
    expect(encoded()).toEqual(encoded());
    expect(httpResponse(payloadFor(80, 101, 'auto', '198.19.0.2'))).not.toEqual(httpResponse(REQUEST));
  });

  it('carries the same timestamps and plan options as the ACK before it', () => {
    const replies = replyTo(dataTo(80, REQUEST, { options: [nop(), nop(), timestamps(77, 5)] }), { ackOptions: [{ kind: 200, data: '0102' }] }, config);
    expect(replies).toHaveLength(2);
    expect(replies[1].tcp!.options).toEqual(replies[0].tcp!.options);
    expect(replies[0].tcp!.options!.length).toBe(4);
  });

  it('answers a head split across segments once: at the segment that ends it', () => {
    const [first, rest] = [REQUEST.subarray(0, 60), REQUEST.subarray(60)];
    expect(summary(replyTo(dataTo(80, first), {}, config))).toEqual([{ flags: TcpFlag.ACK, seq: 5000, ack: 1061, payload: '' }]);
    const replies = replyTo(dataTo(80, rest, { seq: 1061 }), {}, config);
    expect(summary(replies).map((r) => [r.flags, r.seq, r.ack])).toEqual([[TcpFlag.ACK, 5000, 1101], [TcpFlag.ACK | TcpFlag.PSH, 5000, 1101]]);
    expect(text(replies[1].payload)).toMatch(/\r\n\r\nmbprobe 40 [0-9a-f]{16}\n-\n$/);
  });

  it('only ACKs a partial request, a request line that is not HTTP/1.x, a request with FIN; withholdAck gets nothing', () => {
    const onlyAck = (payload: Uint8Array, tcp: Partial<NonNullable<Packet['tcp']>> = {}) => replyTo(dataTo(80, payload, tcp), {}, config).map((p) => p.payload.length);
    expect(onlyAck(REQUEST.subarray(0, 98))).toEqual([0]);
    expect(onlyAck(bytes('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'))).toEqual([0]);
    expect(onlyAck(bytes('GET / HTTP/2\r\nHost: h\r\n\r\n'))).toEqual([0]);
    expect(onlyAck(REQUEST, { flags: TcpFlag.ACK | TcpFlag.FIN })).toEqual([0]);
    expect(replyTo(dataTo(80, REQUEST), { withholdAck: true }, config)).toEqual([]);
    expect(endsHttpRequest(bytes('GET /mbprobe HTTP/1.0\r\n\r\n'))).toBe(true);
    expect(endsHttpRequest(bytes('\r\n\r\n'))).toBe(true);
    expect(endsHttpRequest(bytes('\r\n\r'))).toBe(false);
  });

  it('never answers a request on a port without a protocol', () => {
    expect(summary(replyTo(dataTo(34343, REQUEST), {}, config))).toEqual([{ flags: TcpFlag.ACK, seq: 5000, ack: 1101, payload: '' }]);
    expect(replyTo(dataTo(34343, HELLO), {}, config)).toHaveLength(1);
  });

  describe('Node\'s HTTP client parses the response', () => {
    let server: ReturnType<typeof createTcpServer>;
    let port: number;
    beforeAll(async () => {
      // A raw TCP server that writes the responder's bytes as they are, whatever it is asked.
      server = createTcpServer((socket) => {
        socket.once('data', () => socket.end(Buffer.from(replyTo(dataTo(80, REQUEST), {}, config)[1].payload)));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('status, headers and body', async () => {
      const { status, headers, body } = await new Promise<{ status?: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        get({ host: '127.0.0.1', port, path: '/mbprobe' }, (res) => {
          let data = '';
          res.setEncoding('latin1');
          res.on('data', (c: string) => (data += c));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
        }).on('error', reject);
      });
      expect(status).toBe(200);
      expect(headers).toMatchObject({ 'content-type': 'text/plain', 'cache-control': 'no-store', connection: 'close', 'content-length': String(body.length) });
      expect(body).toMatch(/^mbprobe 100 [0-9a-f]{16}\nGET \/mbprobe HTTP\/1\.1\n$/);
    });
  });
});

describe('TLS on port 443', () => {
  it('answers a whole ClientHello record with the ACK, then a fatal handshake_failure alert', () => {
    expect(isClientHelloRecord(HELLO)).toBe(true);
    expect(summary(replyTo(dataTo(443, HELLO), {}, config))).toEqual([
      { flags: TcpFlag.ACK, seq: 5000, ack: 1001 + 517, payload: '' },
      { flags: TcpFlag.ACK | TcpFlag.PSH, seq: 5000, ack: 1001 + 517, payload: text(Uint8Array.of(0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28)) },
    ]);
    expect(TLS_HANDSHAKE_FAILURE_ALERT).toEqual(Uint8Array.of(0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28));
    expect(replyTo(dataTo(443, payloadFor(443, 100, 'auto', '198.19.0.2')), {}, config)).toHaveLength(2);
  });

  it('only ACKs part of a ClientHello, anything else, and nothing at all under withholdAck', () => {
    const replies = (payload: Uint8Array) => replyTo(dataTo(443, payload), {}, config).map((p) => p.payload.length);
    expect(replies(HELLO.subarray(0, 300))).toEqual([0]);
    expect(replies(HELLO.subarray(300))).toEqual([0]);
    expect(replies(REQUEST)).toEqual([0]);
    const serverHello = HELLO.slice();
    serverHello[5] = 2;
    expect(replies(serverHello)).toEqual([0]);
    expect(replyTo(dataTo(443, HELLO), { withholdAck: true }, config)).toEqual([]);
    expect(isClientHelloRecord(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x03, 0x01, 0, 0))).toBe(false);
  });
});

describe('the byte budget leaves room for the response', () => {
  let api: Awaited<ReturnType<typeof startControlApi>>;
  let store: Store;
  let service: ResponderService;
  const sent: Uint8Array[] = [];
  const source = { listener: undefined as undefined | ((p: { bytes: Uint8Array; atUs: number; truncated: boolean }) => void), onPacket(l: never) { this.listener = l; }, close() {} };
  let base: string;
  beforeAll(async () => {
    store = Store.open(':memory:');
    store.insertRun({ id: 'r', startedAt: new Date().toISOString(), toolVersion: 'test' });
    service = new ResponderService({ ports: [80, 443], source: source as never, sinks: { 4: { send: async (b: Uint8Array) => void sent.push(b), close() {} } }, store, runId: 'r' });
    api = await startControlApi({ port: 0, host: '127.0.0.1', service, ports: [80, 443] });
    base = `http://127.0.0.1:${api.port}/v1`;
  });
  afterAll(async () => {
    await api.close();
    store.close();
  });
  const post = async (path: string, body: unknown): Promise<Record<string, unknown>> =>
    (await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<Record<string, unknown>>;

  it.each([[80, REQUEST], [443, payloadFor(443, 100, 'auto', '198.19.0.2')]])('port %i: one 100-byte probe in a fresh session, Linux options: SYN-ACK, ACK, answer, FIN-ACK all sent', async (port, payload) => {
    sent.length = 0;
    const { sessionId } = await post('/sessions', { initiatorAddress: '198.18.0.2', toolVersion: 't' });
    // The smallest registration the initiator makes: the shortest test name, an empty plan.
    await post(`/sessions/${sessionId}/tests`, { testId: `0-nat-${port}`, name: 'nat', port, initiatorPort: 40000 + port, initiatorIsn: 1000, plan: {} });
    const feed = (tcp: Partial<NonNullable<Packet['tcp']>>, data: Uint8Array = new Uint8Array(0)) =>
      source.listener!({ bytes: segment(port, { srcPort: 40000 + port, ...tcp }, data), atUs: 1, truncated: false });
    feed({ flags: TcpFlag.SYN, seq: 1000, ack: 0, options: [mss(1460), sackPermitted(), timestamps(1, 0), nop(), windowScale(7)] });
    const isn = decodePacket(sent[0]).tcp!.seq;
    const ts = [nop(), nop(), timestamps(2, 5000)];
    feed({ flags: TcpFlag.ACK, seq: 1001, ack: (isn + 1) >>> 0, options: ts });
    feed({ seq: 1001, ack: (isn + 1) >>> 0, options: ts }, payload);
    feed({ flags: TcpFlag.ACK | TcpFlag.FIN, seq: 1101, ack: (isn + 1) >>> 0, options: ts });
    expect(sent.map((b) => decodePacket(b).tcp!.flags)).toEqual([TcpFlag.SYN | TcpFlag.ACK, TcpFlag.ACK, TcpFlag.ACK | TcpFlag.PSH, TcpFlag.FIN | TcpFlag.ACK]);
    expect(service.stats.budgetLimited).toBe(0);
  });
});
