/**
 * The scan's packet plumbing: captures and raw senders shared by every connection, and received
 * segments dispatched by their whole 4-tuple. Unlike `run`'s Prober (one responder, so the local port
 * alone says whose a segment is), a scan talks to many servers at once and reuses a local port for
 * different servers, so the server's address and port are part of the key.
 */
import { randomInt } from 'node:crypto';
import type { CapturedPacket, PacketSource } from '../../shared/net/capture.js';
import type { PacketSink } from '../../shared/net/raw-send.js';
import { ipv4ToString, ipv6ToString } from '../../shared/wire/address.js';
import { observe } from '../observed.js';
import { ProbeConnection, type Timing } from '../probe.js';

const key = (remoteAddress: string, remotePort: number, localPort: number): string => `${remoteAddress}|${remotePort}|${localPort}`;

/** The dispatch key of a captured TCP segment (its source is the server), read from the bytes without decoding; undefined for anything else. */
export function keyOfSegment(bytes: Uint8Array): string | undefined {
  const version = bytes[0] >> 4;
  let source: string;
  let tcp: number;
  if (version === 4 && bytes.length >= 20) {
    if (bytes[9] !== 6) return undefined;
    source = ipv4ToString(bytes, 12);
    tcp = (bytes[0] & 0x0f) * 4;
  } else if (version === 6 && bytes.length >= 40) {
    // No extension headers: what the capture filter's `tcp` lets through for IPv6.
    if (bytes[6] !== 6) return undefined;
    source = ipv6ToString(bytes, 8);
    tcp = 40;
  } else return undefined;
  if (bytes.length < tcp + 4) return undefined;
  return key(source, (bytes[tcp] << 8) | bytes[tcp + 1], (bytes[tcp + 2] << 8) | bytes[tcp + 3]);
}

export class ScanProber {
  private readonly connections = new Map<string, ProbeConnection>();
  private readonly sources: PacketSource[] = [];

  constructor(private readonly sinks: { 4?: PacketSink; 6?: PacketSink }) {}

  /** Segments from this source reach their connections (one source per interface the scan uses). */
  attach(source: PacketSource): void {
    this.sources.push(source);
    source.onPacket((p: CapturedPacket) => {
      const k = keyOfSegment(p.bytes);
      const connection = k === undefined ? undefined : this.connections.get(k);
      if (connection) connection.deliver(observe(p.bytes, p.atUs));
    });
  }

  /** Connections open now (what the progress display shows; bounded by the scan's concurrency). */
  get open(): number {
    return this.connections.size;
  }

  connect(local: { address: string; port: number }, remote: { address: string; port: number }, timing: Timing): ProbeConnection {
    const k = key(remote.address, remote.port, local.port);
    if (this.connections.has(k)) throw new Error(`a connection from port ${local.port} to ${remote.address} port ${remote.port} is already open`);
    const sink = this.sinks[remote.address.includes(':') ? 6 : 4];
    if (!sink) throw new Error(`no raw sender for ${remote.address}`);
    const connection = new ProbeConnection(local, remote, timing, randomInt(0, 2 ** 32), sink, () => this.connections.delete(k));
    this.connections.set(k, connection);
    return connection;
  }

  close(): void {
    for (const source of this.sources) source.close();
  }
}
