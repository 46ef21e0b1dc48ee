/**
 * The lab's real-network pieces, checked with real traffic: the WAN emulator (measured round trip
 * and loss against what was asked) and the profiles built from real proxy software (squid, tinyproxy,
 * HAProxy), each doing what the deployments it imitates do. Needs root; all traffic stays inside the
 * lab's own namespaces, and every lab is destroyed afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, removeStaleLabs, type Lab } from '../../lab/index.js';

const isRoot = process.getuid?.() === 0;

/** ping from the initiator: [transmitted, received, average RTT ms]. */
async function ping(lab: Lab, host: string, count: number, intervalS: number): Promise<{ sent: number; received: number; avgMs: number }> {
  const r = await lab.exec('initiator', ['ping', '-q', '-n', '-c', String(count), '-i', String(intervalS), '-W', '2', host], { allowFailure: true, timeoutMs: 120_000 });
  const counts = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (!counts) throw new Error(`ping printed no statistics: ${r.stdout} ${r.stderr}`);
  return { sent: Number(counts[1]), received: Number(counts[2]), avgMs: rtt ? Number(rtt[1]) : NaN };
}

/** A TCP server on the responder (python3): prints, as one JSON line per connection, what it received; answers with `reply`. */
const PY_SERVER = String.raw`
import json, socket, sys
port, reply = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(('::', port)); s.listen(16)
print('listening', flush=True)
while True:
    c, a = s.accept(); c.settimeout(3); data = b''
    try:
        while True:
            d = c.recv(65536)
            if not d: break
            data += d
            if data.endswith(b'\r\n\r\n') or (data[:1] == b'\x16' and len(data) >= 5 + int.from_bytes(data[3:5], 'big')): break
    except Exception: pass
    try: c.sendall(reply)
    except Exception: pass
    c.close(); print(json.dumps({'peer': a[0], 'data': data.decode('latin1')}), flush=True)
`;

/** A client on the initiator: connects, sends `hex`, prints what came back (latin1) as JSON. */
const PY_CLIENT = String.raw`
import json, socket, sys
host, port, msg = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
c = socket.create_connection((host, port), timeout=5); c.sendall(msg); data = b''
try:
    while True:
        d = c.recv(65536)
        if not d: break
        data += d
except Exception: pass
print(json.dumps({'data': data.decode('latin1')}))
`;

interface Server {
  connections: Array<{ peer: string; data: string }>;
  stop(): void;
}

async function server(lab: Lab, port: number, reply: string): Promise<Server> {
  const child = lab.spawn('responder', ['python3', '-u', '-c', PY_SERVER, String(port), Buffer.from(reply, 'latin1').toString('hex')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const connections: Server['connections'] = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (l === 'listening') resolve();
        else if (l.startsWith('{')) connections.push(JSON.parse(l) as { peer: string; data: string });
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { connections, stop: () => child.kill('SIGKILL') };
}

async function client(lab: Lab, host: string, port: number, message: Uint8Array | string): Promise<string> {
  const hex = Buffer.from(typeof message === 'string' ? Buffer.from(message, 'latin1') : message).toString('hex');
  const r = await lab.exec('initiator', ['python3', '-c', PY_CLIENT, host, String(port), hex], { timeoutMs: 20_000 });
  return (JSON.parse(r.stdout) as { data: string }).data;
}

const until = async (check: () => boolean, timeoutMs = 3000): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return check();
};

const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n';
const request = (host: string): string => `GET /mbprobe HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: mbprobe/1\r\n\r\n`;
/** A minimal, well-formed ClientHello record (TLS 1.2, one suite, no extensions). */
const CLIENT_HELLO = Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0x2d, 0x01, 0x00, 0x00, 0x29, 0x03, 0x03, ...new Array(32).fill(7), 0x00, 0x00, 0x02, 0xc0, 0x2f, 0x01, 0x00]);
const TLS_ALERT = '\x15\x03\x03\x00\x02\x02\x28';

describe.skipIf(!isRoot).sequential('the WAN emulator', () => {
  let lab: Lab;
  beforeAll(async () => {
    await removeStaleLabs();
    lab = await createLab({ profile: 'clean', wan: 'delay=20ms,jitter=10ms,loss=10%,seed=5' });
    // Warm-up: neighbour discovery on both links before anything is measured.
    await ping(lab, lab.addresses.responder, 3, 0.2);
    await ping(lab, lab.addresses.responder6, 3, 0.2);
  }, 60_000);
  afterAll(async () => lab?.destroy());

  it('is a bridge in a namespace of its own, not a hop (TTL unchanged but for the router)', async () => {
    expect(lab.namespaces.wan).toBe(`mbp${lab.id}-wan`);
    const r = await lab.exec('initiator', ['ping', '-n', '-c', '5', '-i', '0.05', lab.addresses.responder], { allowFailure: true });
    // The responder answers with TTL 64; only the middlebox (a router) takes one off on the way back.
    expect(r.stdout).toMatch(/ttl=63/);
  }, 30_000);

  it('gives the asked round trip and loss, within a few percent (IPv4, 1000 pings)', async () => {
    const r = await ping(lab, lab.addresses.responder, 1000, 0.005);
    // 10% each way: a ping and its answer both survive with probability 0.81.
    expect(1 - r.received / r.sent).toBeGreaterThan(0.19 - 0.03);
    expect(1 - r.received / r.sent).toBeLessThan(0.19 + 0.03);
    // 20 ms each way plus on average half of the 10 ms jitter each way: 50 ms.
    expect(r.avgMs).toBeGreaterThan(50 * 0.95);
    expect(r.avgMs).toBeLessThan(50 * 1.1);
  }, 60_000);

  it('does the same over IPv6 (400 pings)', async () => {
    const r = await ping(lab, lab.addresses.responder6, 400, 0.005);
    expect(1 - r.received / r.sent).toBeGreaterThan(0.19 - 0.06);
    expect(1 - r.received / r.sent).toBeLessThan(0.19 + 0.06);
    expect(r.avgMs).toBeGreaterThan(50 * 0.95);
    expect(r.avgMs).toBeLessThan(50 * 1.1);
  }, 60_000);

  it('reorders packets sent closer together than the jitter', async () => {
    const r = await lab.exec('initiator', ['ping', '-n', '-c', '200', '-i', '0.002', lab.addresses.responder], { allowFailure: true, timeoutMs: 30_000 });
    const seqs = [...r.stdout.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
    const outOfOrder = seqs.filter((s, i) => i > 0 && s < seqs[i - 1]).length;
    expect(outOfOrder).toBeGreaterThan(0);
  }, 30_000);
});

describe.skipIf(!isRoot).sequential('interception proxies from Debian', () => {
  beforeAll(async () => {
    await removeStaleLabs();
  });

  it('http-intercept: squid answers the handshake, connects only once the request is whole, adds Via and X-Forwarded-For, relays the answer', async () => {
    const lab = await createLab({ profile: 'http-intercept' });
    try {
      const srv = await server(lab, 80, RESPONSE);
      const answer = await client(lab, lab.addresses.responder, 80, request(lab.addresses.responder));
      expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(answer).toMatch(/\r\nVia: 1\.1 proxy\.lab\d+\.mbprobe\.test \(squid\/[\d.]+\)\r\n/);
      expect(await until(() => srv.connections.length === 1)).toBe(true);
      const seen = srv.connections[0];
      expect(seen.peer).toMatch(/198\.19\.\d+\.1$/); // the proxy's own address, not the initiator's
      expect(seen.data).toContain(`X-Forwarded-For: ${lab.addresses.initiator}\r\n`);
      expect(seen.data).toMatch(/\r\nVia: 1\.1 proxy/);
      // A connection that sends nothing is answered by the proxy and never reaches the server.
      await client(lab, lab.addresses.responder, 80, '');
      expect(await until(() => srv.connections.length > 1, 1000)).toBe(false);
      // Port 34343 is not intercepted: the server sees the initiator itself.
      const plain = await server(lab, 34343, 'pong');
      expect(await client(lab, lab.addresses.responder, 34343, 'ping\r\n\r\n')).toBe('pong');
      expect(await until(() => plain.connections.length === 1)).toBe(true);
      expect(plain.connections[0].peer).toContain(lab.addresses.initiator);
      srv.stop();
      plain.stop();
    } finally {
      await lab.destroy();
    }
  }, 60_000);

  it('http-intercept-error: tinyproxy cannot resolve the name the volunteer uses and answers with its own error page, never connecting', async () => {
    const lab = await createLab({ profile: 'http-intercept-error' });
    try {
      const srv = await server(lab, 80, RESPONSE);
      const name = lab.responderNames[4];
      const answer = await client(lab, name, 80, request(name));
      expect(answer).toMatch(/^HTTP\/1\.[01] 5\d\d /);
      expect(answer).toMatch(/\r\nServer: tinyproxy\//);
      expect(await until(() => srv.connections.length > 0, 1000)).toBe(false);
      srv.stop();
    } finally {
      await lab.destroy();
    }
  }, 60_000);

  it('tls-passthrough: HAProxy relays TCP on 34343 at once, and on 443 connects only after a ClientHello, relaying records untouched', async () => {
    const lab = await createLab({ profile: 'tls-passthrough' });
    try {
      const tls = await server(lab, 443, TLS_ALERT);
      const tcp = await server(lab, 34343, 'pong');
      // 443 without a ClientHello: no server connection
      await client(lab, lab.addresses.responder, 443, 'hello?\r\n\r\n');
      expect(await until(() => tls.connections.length > 0, 1000)).toBe(false);
      // with one: relayed as sent, the answer relayed back; over IPv6 too
      for (const host of [lab.addresses.responder, lab.addresses.responder6]) {
        const before = tls.connections.length;
        expect(await client(lab, host, 443, CLIENT_HELLO)).toBe(TLS_ALERT);
        expect(await until(() => tls.connections.length === before + 1)).toBe(true);
        expect(Buffer.from(tls.connections[before].data, 'latin1')).toEqual(Buffer.from(CLIENT_HELLO));
      }
      expect(await client(lab, lab.addresses.responder, 34343, 'ping\r\n\r\n')).toBe('pong');
      expect(await until(() => tcp.connections.length === 1)).toBe(true);
      expect(tcp.connections[0].peer).toMatch(/198\.19\.\d+\.1$/);
      tls.stop();
      tcp.stop();
    } finally {
      await lab.destroy();
    }
  }, 60_000);
});
