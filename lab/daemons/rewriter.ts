/**
 * A user-space rewriting middlebox, for the lab profiles whose behaviour Linux netfilter cannot
 * produce (sequence-number shifting, option rewriting, normalising).  Run on the middlebox:
 *
 *   node dist/lab/daemons/rewriter.js --left mb-left --right mb-right --transform isn-shift-forward[,...]
 *                                  [--exit-on-stdin-end]
 *
 * It captures (libpcap, which sees a packet before netfilter) the test traffic arriving on the
 * left interface (initiator → responder, TCP to ports 34343/80/443) and on the right interface
 * (responder → initiator, TCP from those ports), lets each named transform rewrite the segment,
 * decrements the TTL / hop limit like a router and sends the result through a raw socket.  The
 * profile's nft rule drops the originals in the FORWARD chain; the rewritten copies leave through
 * OUTPUT and are not dropped.
 *
 * Frames whose Ethernet source is the interface's own address are not captured, so our own sends
 * are never picked up again.  (Not pcap's `inbound`: with it, libpcap 1.10 through cap hands over
 * the first packet of a capture only when a second one arrives.)  A segment the codec reports
 * problems with (bad checksum, malformed option, fragment, ...) is passed on unchanged but for the
 * TTL, so tests sending malformed segments on purpose are not "repaired" here.  Prints `ready` on
 * stdout once both captures are open.
 */
import { readFileSync } from 'node:fs';
import { openCapture } from '../../shared/net/capture.js';
import { argValue, runDaemon, type Stop } from './lifecycle.js';
import { TEST_PORTS } from '../../shared/ports.js';
import { openRawSender, type PacketSink } from '../../shared/net/raw-send.js';
import { asPacket, decodePacket, encodePacket, type Packet } from '../../shared/wire/packet.js';
import { TcpFlag, type TcpHeader } from '../../shared/wire/tcp.js';
import { encodeOptions, mss, sack, timestamps, viewOption, windowScale, type TcpOption } from '../../shared/wire/tcp-options.js';

export const REWRITER_PORTS: readonly number[] = TEST_PORTS;
/** What the isn-shift transforms add to the shifted side's sequence numbers. */
export const ISN_SHIFT = 0x01000000;
/** What option-modify adds to the initiator's timestamp values (and takes off their echo on the way back). */
export const TS_SHIFT = 0x00100000;
/** The window window-rewrite writes into every segment. */
export const FIXED_WINDOW = 8192;
/** The cookie option-modify puts into a TFO cookie request. */
const FAKE_TFO_COOKIE = Uint8Array.of(0x6d, 0x62, 0x70, 0x72);
/** How many payload bytes old-data remembers per flow and direction. */
const OLD_DATA_LIMIT = 256 * 1024;
/** How many segment lengths resize-retransmission remembers per flow and direction. */
const LENGTHS_LIMIT = 4096;
const MAX_FLOWS = 4096;

/** forward: initiator → responder (arrived on the left); reverse: responder → initiator. */
export type Direction = 'forward' | 'reverse';

interface Stored {
  seq: number;
  data: Uint8Array;
}

/** Per connection (both directions share one), what the stateful transforms remember. */
export interface FlowState {
  /** Highest sequence number the responder has sent (seq + length, SYN and FIN count one). */
  responderEnd?: number;
  /** The first bytes seen, per direction. */
  firstBytes: Record<Direction, { segments: Stored[]; bytes: number }>;
  /** The length of the first segment seen at each sequence number, per direction. */
  firstLengths: Record<Direction, Map<number, number>>;
}

/** Rewrites the decoded packet in place (a fresh copy made by the caller). */
export type Transform = (packet: Packet & { tcp: TcpHeader }, direction: Direction, flow: FlowState) => void;

/** a is after b in sequence space */
const after = (a: number, b: number): boolean => ((a - b) | 0) > 0;
const u32 = (n: number): number => n >>> 0;
const hasFlag = (tcp: TcpHeader, flag: number): boolean => (tcp.flags & flag) !== 0;

/**
 * A sequence-number randomising firewall protecting one side (forward: the initiator, reverse: the
 * responder): that side's seq is shifted on the way out, the other side's ack shifted back; with
 * translateSack the other side's SACK blocks (which name shifted sequence numbers too) as well.
 */
function isnShift(shifted: Direction, translateSack: boolean): Transform {
  return ({ tcp }, direction) => {
    if (direction === shifted) {
      tcp.seq = u32(tcp.seq + ISN_SHIFT);
      return;
    }
    if (hasFlag(tcp, TcpFlag.ACK)) tcp.ack = u32(tcp.ack - ISN_SHIFT);
    if (translateSack) {
      tcp.options = tcp.options?.map((o) => {
        const v = viewOption(o);
        return v.type === 'sack' ? sack(v.blocks.map(([l, r]) => [u32(l - ISN_SHIFT), u32(r - ISN_SHIFT)] as const)) : o;
      });
    }
  };
}

/** one option, changed so a receiver can tell (see optionModify) */
function modifyOption(o: TcpOption, tcp: TcpHeader, direction: Direction): TcpOption {
  const v = viewOption(o);
  const flipped = (): TcpOption => ({ kind: o.kind, data: o.data.map((b) => b ^ 0xff) });
  switch (v.type) {
    case 'mss':
      return mss(v.mss > 1000 ? v.mss - 60 : v.mss + 60);
    case 'window-scale':
      return windowScale(v.shift > 0 ? v.shift - 1 : 1);
    case 'timestamps':
      // the initiator's clock shifted, the responder's echo of it shifted back: the connection keeps working
      if (direction === 'forward') return timestamps(u32(v.value + TS_SHIFT), v.echo);
      return hasFlag(tcp, TcpFlag.ACK) && v.echo !== 0 ? timestamps(v.value, u32(v.echo - TS_SHIFT)) : o;
    case 'mptcp': {
      // MP_CAPABLE's C flag / a reserved DSS flag: the option keeps its structure
      const data = o.data.slice();
      data[data.length >= 2 ? 1 : 0] ^= data.length >= 2 ? 0x20 : 0x01;
      return { kind: o.kind, data };
    }
    case 'tfo':
      return v.cookie.length === 0 ? { kind: o.kind, data: FAKE_TFO_COOKIE.slice() } : flipped();
    case 'unknown':
      return flipped();
    case 'sack-permitted':
      // It has no content to change: the rewriter gives it two bytes (a length its kind does not allow).
      return { kind: o.kind, data: Uint8Array.of(0x6d, 0x62) };
    default:
      return o;
  }
}

/**
 * option-modify, both ways: MSS 1460 → 1400, window scale shift one less, an MPTCP flag flipped, a
 * TFO cookie request turned into a 4-byte cookie (a cookie's bytes flipped), the data bytes of
 * unknown kinds (200) flipped, SACK-permitted padded with two bytes; and the initiator's TS val +
 * TS_SHIFT (only the initiator's, so the SYN-ACK's timestamp still says it is the responder's).
 * A change that would not fit into 40 bytes is left out.
 */
const optionModify: Transform = ({ tcp }, direction) => {
  const options = tcp.options ?? [];
  const out = options.slice();
  for (let i = 0; i < out.length; i++) {
    const changed = modifyOption(out[i], tcp, direction);
    const trial = out.slice();
    trial[i] = changed;
    if (encodeOptions(trial, true).length + (tcp.optionsTail?.length ?? 0) <= 40) out[i] = changed;
  }
  tcp.options = out;
};

const windowRewrite: Transform = ({ tcp }) => {
  tcp.window = FIXED_WINDOW;
};

const clearUrgReserved: Transform = ({ tcp }) => {
  tcp.flags &= ~(TcpFlag.URG | TcpFlag.AE);
  tcp.urgentPointer = 0;
  tcp.reserved = 0;
};

/** ack-correct: an initiator ack beyond anything the responder sent is lowered to what it sent. */
const ackCorrect: Transform = ({ tcp, payload }, direction, flow) => {
  if (direction === 'reverse') {
    const end = u32(tcp.seq + payload.length + (hasFlag(tcp, TcpFlag.SYN) ? 1 : 0) + (hasFlag(tcp, TcpFlag.FIN) ? 1 : 0));
    if (flow.responderEnd === undefined || after(end, flow.responderEnd)) flow.responderEnd = end;
  } else if (hasFlag(tcp, TcpFlag.ACK) && flow.responderEnd !== undefined && after(tcp.ack, flow.responderEnd)) {
    tcp.ack = flow.responderEnd;
  }
};

/** old-data: a retransmission carrying other bytes than the first transmission gets the first bytes. */
const oldData: Transform = (packet, direction, flow) => {
  const { tcp, payload } = packet;
  if (payload.length === 0) return;
  const seq = u32(tcp.seq + (hasFlag(tcp, TcpFlag.SYN) ? 1 : 0));
  const memory = flow.firstBytes[direction];
  const out = payload.slice();
  const taken = new Uint8Array(payload.length);
  for (const s of memory.segments) {
    const at = (s.seq - seq) | 0; // where s starts within this payload
    for (let i = Math.max(0, at); i < Math.min(payload.length, at + s.data.length); i++) {
      if (!taken[i]) {
        out[i] = s.data[i - at];
        taken[i] = 1;
      }
    }
  }
  if (!taken.every((t) => t === 1) && memory.bytes + out.length <= OLD_DATA_LIMIT) {
    memory.segments.push({ seq, data: out });
    memory.bytes += out.length;
  }
  packet.payload = out;
};

/** resize-retransmission: a retransmission longer than the first segment at its sequence number is cut to that length (keeping its own bytes). */
const resizeRetransmission: Transform = (packet, direction, flow) => {
  const { tcp, payload } = packet;
  if (payload.length === 0) return;
  const seq = u32(tcp.seq + (hasFlag(tcp, TcpFlag.SYN) ? 1 : 0));
  const lengths = flow.firstLengths[direction];
  const first = lengths.get(seq);
  if (first === undefined) {
    if (lengths.size < LENGTHS_LIMIT) lengths.set(seq, payload.length);
  } else if (payload.length > first) {
    packet.payload = payload.slice(0, first);
    tcp.flags &= ~TcpFlag.FIN; // the FIN came after the bytes cut off
  }
};

export const TRANSFORMS: Record<string, Transform> = {
  'isn-shift-forward': isnShift('forward', false),
  'isn-shift-forward-sack': isnShift('forward', true),
  'isn-shift-reverse': isnShift('reverse', false),
  'isn-shift-reverse-sack': isnShift('reverse', true),
  'option-modify': optionModify,
  'window-rewrite': windowRewrite,
  'clear-urg-reserved': clearUrgReserved,
  'ack-correct': ackCorrect,
  'old-data': oldData,
  'resize-retransmission': resizeRetransmission,
};

/**
 * The rewriting pipeline for the named transforms: bytes of a captured IP packet in, bytes to
 * send out (undefined: drop, the TTL ran out or it is not IP).
 */
export function createRewriter(names: readonly string[]): (bytes: Uint8Array, direction: Direction) => Uint8Array | undefined {
  const transforms = names.map((n) => {
    const t = TRANSFORMS[n];
    if (!t) throw new Error(`unknown transform ${n} (known: ${Object.keys(TRANSFORMS).join(', ')})`);
    return t;
  });
  const flows = new Map<string, FlowState>();
  const flowOf = (p: Packet & { tcp: TcpHeader }, direction: Direction): FlowState => {
    const [ini, rsp] = direction === 'forward' ? [p.ip.src, p.ip.dst] : [p.ip.dst, p.ip.src];
    const [iniPort, rspPort] = direction === 'forward' ? [p.tcp.srcPort, p.tcp.dstPort] : [p.tcp.dstPort, p.tcp.srcPort];
    const key = `${ini} ${iniPort} ${rsp} ${rspPort}`;
    let flow = flows.get(key);
    if (!flow) {
      if (flows.size >= MAX_FLOWS) flows.delete(flows.keys().next().value!);
      flow = {
        firstBytes: { forward: { segments: [], bytes: 0 }, reverse: { segments: [], bytes: 0 } },
        firstLengths: { forward: new Map(), reverse: new Map() },
      };
      flows.set(key, flow);
    }
    return flow;
  };
  return (bytes, direction) => {
    const decoded = decodePacket(bytes);
    const packet = asPacket(decoded);
    if (!packet) return undefined;
    const ttl = packet.ip.version === 4 ? packet.ip.ttl : packet.ip.hopLimit;
    if (ttl <= 1) return undefined;
    // a copy to rewrite: header objects and option lists are fresh, byte arrays are replaced, never written
    const ip = packet.ip.version === 4 ? { ...packet.ip, ttl: ttl - 1 } : { ...packet.ip, hopLimit: ttl - 1 };
    const out: Packet = { ip, payload: packet.payload };
    if (packet.tcp) out.tcp = { ...packet.tcp, options: packet.tcp.options?.slice() };
    // as it came but for the TTL (the kernel rewrites the IPv4 header checksum of raw sends)
    if (!out.tcp || decoded.issues.length > 0) return encodePacket(out);
    const segment = out as Packet & { tcp: TcpHeader };
    const flow = flowOf(segment, direction);
    for (const t of transforms) t(segment, direction, flow);
    return encodePacket(segment, { fixLengths: true, computeChecksums: true });
  };
}

function main(argv: string[]): Stop {
  const left = argValue(argv, '--left');
  const right = argValue(argv, '--right');
  const rewrite = createRewriter(argValue(argv, '--transform').split(','));
  const ports = (dir: 'src' | 'dst') => REWRITER_PORTS.map((p) => `${dir} port ${p}`).join(' or ');
  const notOwn = (iface: string) => `not ether src ${readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim()}`;
  const sinks: Record<4 | 6, PacketSink> = { 4: openRawSender({ family: 4 }), 6: openRawSender({ family: 6 }) };
  let errors = 0;
  const forward = (bytes: Uint8Array, direction: Direction): void => {
    let out: Uint8Array | undefined;
    try {
      out = rewrite(bytes, direction);
    } catch (e) {
      if (errors++ < 20) process.stderr.write(`rewriter: cannot rewrite a ${direction} packet: ${(e as Error).message}\n`);
      return;
    }
    if (!out) return;
    sinks[out[0] >> 4 === 6 ? 6 : 4].send(out).catch((e: Error) => {
      if (errors++ < 20) process.stderr.write(`rewriter: ${e.message}\n`);
    });
  };
  const fromLeft = openCapture({ iface: left, filter: `${notOwn(left)} and tcp and (${ports('dst')})` });
  const fromRight = openCapture({ iface: right, filter: `${notOwn(right)} and tcp and (${ports('src')})` });
  fromLeft.onPacket((p) => forward(p.bytes, 'forward'));
  fromRight.onPacket((p) => forward(p.bytes, 'reverse'));
  return () => {
    fromLeft.close();
    fromRight.close();
    sinks[4].close();
    sinks[6].close();
  };
}

runDaemon('rewriter', import.meta.url, main);
