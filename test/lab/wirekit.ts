/**
 * Byte-level helpers for lab tests: a capture whose packets come back decoded by our own codec
 * (tcpdump -x in a namespace, so nothing of the host is involved), and hand-made segments sent
 * from a namespace through dist/test/lab/send-raw.js (needs `npm run build`).
 */
import { join } from 'node:path';
import type { Lab } from '../../lab/index.js';
import { projectRoot } from '../../lab/index.js';
import { fromHex, toHex } from '../../shared/wire/bytes.js';
import { decodePacket, encodePacket, type DecodedPacket, type Packet } from '../../shared/wire/packet.js';
import type { TcpHeader } from '../../shared/wire/tcp.js';

export interface WireCapture {
  /**
   * stop tcpdump and return every captured packet, decoded; with `atLeast`, first wait (up to 3 s)
   * until that many packets were captured: the first packets of a path may wait for neighbour
   * discovery or a busy user-space middlebox longer than the fixed 100 ms allowed for in-flight ones
   */
  stop(options?: { atLeast?: number }): Promise<DecodedPacket[]>;
}

/** packets in tcpdump -x output so far: each starts with an unindented line */
const packetCount = (out: string): number => out.split('\n').filter((line) => /^\S/.test(line)).length;

/** tcpdump -x in `ns` on `iface`; resolves once it is capturing */
export async function wireCapture(lab: Lab, ns: string, iface: string, filter: string): Promise<WireCapture> {
  const child = lab.spawn(ns, ['tcpdump', '-i', iface, '-n', '-l', '-t', '-x', '-s', '0', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump on ${iface}: not capturing after 10 s: ${err}`)), 10_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump on ${iface} exited (${code}): ${err}`));
    });
  });
  return {
    async stop(options = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('close', () => r()));
        for (const until = Date.now() + 3000; packetCount(out) < (options.atLeast ?? 0) && Date.now() < until; ) {
          await new Promise((r) => setTimeout(r, 20));
        }
        await new Promise((r) => setTimeout(r, 100)); // in-flight packets
        child.kill('SIGINT');
        await exited;
      }
      // "IP ..." starts a packet, indented "0x0010:  4500 0034 ..." lines carry its bytes (no link header)
      const packets: string[] = [];
      for (const line of out.split('\n')) {
        const hex = /^\s+0x[0-9a-f]+:\s+([0-9a-f ]+)/.exec(line);
        if (hex) packets[packets.length - 1] += hex[1].replace(/ /g, '');
        else if (/^\S/.test(line)) packets.push('');
      }
      return packets.filter((p) => p.length > 0).map((p) => decodePacket(fromHex(p)));
    },
  };
}

export type Side = 'initiator' | 'responder';

/**
 * A TCP segment between the lab's initiator and responder (TTL / hop limit 64, DF), sent `from`
 * one side to the other; `tcp` fields default to an ACK with window 1000.
 */
export function segment(lab: Lab, family: 4 | 6, from: Side, tcp: Partial<TcpHeader> & Pick<TcpHeader, 'srcPort' | 'dstPort'>, payload: Uint8Array = new Uint8Array(0)): Packet {
  const a = lab.addresses;
  const [ini, rsp] = family === 4 ? [a.initiator, a.responder] : [a.initiator6, a.responder6];
  const [src, dst] = from === 'initiator' ? [ini, rsp] : [rsp, ini];
  const ip: Packet['ip'] =
    family === 4
      ? { version: 4, tos: 0, id: 0x6d62, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src, dst }
      : { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, protocol: 6, src, dst };
  return { ip, tcp: { seq: 1, ack: 0, flags: 0x10, window: 1000, ...tcp }, payload };
}

/** send the packets, in order, from `ns` through a raw socket */
export async function sendPackets(lab: Lab, ns: string, packets: Packet[]): Promise<void> {
  const script = join(projectRoot(), 'dist/test/lab/send-raw.js');
  await lab.exec(ns, [process.execPath, script, ...packets.map((p) => toHex(encodePacket(p)))], { timeoutMs: 10_000 });
}

export const ttlOf = (p: DecodedPacket): number | undefined => (p.ip?.version === 4 ? p.ip.ttl : p.ip?.hopLimit);
