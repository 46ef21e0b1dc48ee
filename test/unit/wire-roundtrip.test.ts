/**
 * Round trips on real bytes: every segment of test/fixtures/linux-segments.txt (captured from Linux
 * between two namespaces) decodes without issues, with valid checksums, to the fields tcpdump
 * printed for it, and encodes back to exactly the captured bytes.
 */
import { describe, expect, it } from 'vitest';
import {
  asPacket, decodePacket, ecnOf, encodePacket, formatPacket, OptionKind, TcpFlag, toHex, viewOption, type DecodedPacket,
  type OptionView, type TcpOption,
} from '../../shared/wire/index.js';
import { FixtureFormatError, loadFixtures, parseFixtures, type Fixture } from '../helpers/fixtures.js';

const fixtures = loadFixtures();
const decoded = new Map(fixtures.map((f) => [f.name, decodePacket(f.bytes)] as const));
const byName = new Map(fixtures.map((f) => [f.name, f] as const));
const PADDED = 'v4-nots-ack-c2s-eth-padded';

function get(name: string): { fixture: Fixture; d: DecodedPacket } {
  const fixture = byName.get(name);
  if (!fixture) throw new Error(`no fixture ${name}`);
  return { fixture, d: decoded.get(name)! };
}

// ---------------------------------------------------------------------------------------------
// A parser for the `tcpdump -nn -v` lines stored with every fixture.
// ---------------------------------------------------------------------------------------------

interface TcpdumpOption {
  /** The option's name as tcpdump prints it: mss, sackOK, TS, nop, wscale, sack, tfo, mptcp, eol. */
  name: string;
  args: string;
}

interface TcpdumpLine {
  family: 4 | 6;
  ip: Record<string, string>;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  flags: number;
  cksum: number;
  cksumCorrect: boolean;
  /** As printed: absolute for the first ACK-bearing segment of a connection and for segments without ACK, else relative. */
  seq?: number;
  seqEnd?: number;
  ack?: number;
  win: number;
  urg?: number;
  options: TcpdumpOption[];
  length: number;
}

/** tcpdump's flag letters ("." is ACK; "e" is AE in tcpdump 4.99). */
const TCPDUMP_FLAGS: Record<string, number> = {
  F: TcpFlag.FIN, S: TcpFlag.SYN, R: TcpFlag.RST, P: TcpFlag.PSH, '.': TcpFlag.ACK, U: TcpFlag.URG, E: TcpFlag.ECE, W: TcpFlag.CWR, e: TcpFlag.AE,
};

const OPTION_KIND_BY_TCPDUMP_NAME: Record<string, number> = {
  eol: OptionKind.EOL, nop: OptionKind.NOP, mss: OptionKind.MSS, wscale: OptionKind.WINDOW_SCALE, sackOK: OptionKind.SACK_PERMITTED,
  sack: OptionKind.SACK, TS: OptionKind.TIMESTAMPS, mptcp: OptionKind.MPTCP, tfo: OptionKind.TFO,
};

/** Splits at commas that are not inside [] or {}. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '[' || c === '{' || c === '(') depth++;
    else if (c === ']' || c === '}' || c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(s.slice(start).trim());
  return parts.filter((p) => p !== '');
}

function parseTcpdump(line: string): TcpdumpLine {
  const m = /^(IP6?) \((.+)\) ([0-9a-f:.]+)\.(\d+) > ([0-9a-f:.]+)\.(\d+): (.+)$/.exec(line);
  if (!m) throw new Error(`not a tcpdump -v TCP line: ${line}`);
  const [, family, ipPart, src, srcPort, dst, dstPort, tcpPart] = m;
  const ip: Record<string, string> = {};
  for (const item of splitTopLevel(ipPart)) {
    // "tos 0x2,ECT(0)" was split at the comma before ECT: re-attach ECN names to the tos.
    if (/^(ECT\([01]\)|CE)$/.test(item)) ip.ecn = item;
    else if (item.startsWith('next-header ')) {
      const nh = /^next-header (\S+) \((\d+)\) payload length: (\d+)$/.exec(item);
      if (!nh) throw new Error(`unexpected IPv6 item ${item}`);
      ip['next-header'] = nh[2];
      ip['payload length'] = nh[3];
    } else {
      const kv = /^(\S+) (.+)$/.exec(item);
      if (!kv) throw new Error(`unexpected IP item ${item}`);
      ip[kv[1]] = kv[2];
    }
  }
  const out: Partial<TcpdumpLine> = { family: family === 'IP6' ? 6 : 4, ip, src, srcPort: Number(srcPort), dst, dstPort: Number(dstPort), options: [] };
  for (const item of splitTopLevel(tcpPart)) {
    let v: RegExpExecArray | null;
    if ((v = /^Flags \[([^\]]*)\]$/.exec(item))) {
      out.flags = v[1] === 'none' ? 0 : [...v[1]].reduce((acc, letter) => {
        const bit = TCPDUMP_FLAGS[letter];
        if (bit === undefined) throw new Error(`unknown tcpdump flag letter ${letter} in ${item}`);
        return acc | bit;
      }, 0);
    } else if ((v = /^cksum 0x([0-9a-f]{4}) \((correct|incorrect[^)]*)\)$/.exec(item))) {
      out.cksum = parseInt(v[1], 16);
      out.cksumCorrect = v[2] === 'correct';
    } else if ((v = /^seq (\d+)(?::(\d+))?$/.exec(item))) {
      out.seq = Number(v[1]);
      if (v[2] !== undefined) out.seqEnd = Number(v[2]);
    } else if ((v = /^ack (\d+)$/.exec(item))) out.ack = Number(v[1]);
    else if ((v = /^win (\d+)$/.exec(item))) out.win = Number(v[1]);
    else if ((v = /^urg (\d+)$/.exec(item))) out.urg = Number(v[1]);
    else if ((v = /^length (\d+)$/.exec(item))) out.length = Number(v[1]);
    else if ((v = /^options \[(.*)\]$/.exec(item))) {
      out.options = splitTopLevel(v[1]).map((o) => {
        const [name, ...rest] = o.split(' ');
        if (!(name in OPTION_KIND_BY_TCPDUMP_NAME)) throw new Error(`unknown tcpdump option "${o}" in ${line}`);
        return { name, args: rest.join(' ').trim() };
      });
    } else throw new Error(`unexpected tcpdump item "${item}" in ${line}`);
  }
  for (const key of ['flags', 'cksum', 'win', 'length'] as const) if (out[key] === undefined) throw new Error(`tcpdump line without ${key}: ${line}`);
  return out as TcpdumpLine;
}

const lines = new Map(fixtures.map((f) => [f.name, parseTcpdump(f.tcpdump)] as const));

// ---------------------------------------------------------------------------------------------

describe('the fixture file', () => {
  it('holds the segments its header announces (the loader checks the count), IPv4 and IPv6', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(70);
    expect(new Set(fixtures.map((f) => f.name)).size).toBe(fixtures.length);
    expect(fixtures.filter((f) => f.name.startsWith('v4-')).length).toBeGreaterThan(30);
    expect(fixtures.filter((f) => f.name.startsWith('v6-')).length).toBeGreaterThan(30);
  });

  it.each([
    ['no blocks', '# 0 segments;\n', /no fixtures/],
    ['a wrong count', '# 2 segments;\n\n## a\n# IP x\n4500\n', /says 2 segments but the file holds 1/],
    ['odd hex', '# 1 segments;\n\n## a\n# IP x\n450\n', /not a line of lowercase hex/],
    ['a missing tcpdump line', '# 1 segments;\n\n## a\n4500\n', /expected one "# tcpdump line"/],
    ['two comment lines', '# 1 segments;\n\n## a\n# IP x\n# IP y\n4500\n', /comment line among the hex/],
    ['no hex', '# 1 segments;\n\n## a\n# IP x\n', /no hex lines/],
    ['a duplicate name', '# 2 segments;\n\n## a\n# IP x\n4500\n\n## a\n# IP x\n4500\n', /duplicate fixture name a/],
    ['a short line mid-block', '# 1 segments;\n\n## a\n# IP x\n4500\n' + '00'.repeat(32) + '\n', /short hex line in the middle/],
    ['blocks not separated', '# 2 segments;\n\n## a\n# IP x\n4500\n## b\n# IP x\n4500\n', /block a is not followed by a blank line/],
    ['a trailing blank line', '# 1 segments;\n\n## a\n# IP x\n4500\n\n', /blank line at the end/],
    ['text before the first block', 'hello\n## a\n# IP x\n4500\n', /expected a header comment/],
    ['uppercase hex', '# 1 segments;\n\n## a\n# IP x\n45AB\n', /not a line of lowercase hex/],
  ])('rejects a file with %s', (_what, text, message) => {
    expect(() => parseFixtures(text)).toThrow(FixtureFormatError);
    expect(() => parseFixtures(text)).toThrow(message);
  });
});

describe.each(fixtures.map((f) => [f.name, f] as const))('%s', (name, f) => {
  const d = decoded.get(name)!;
  const line = lines.get(name)!;

  it('decodes without issues, with valid checksums', () => {
    expect(d.issues).toEqual([]);
    expect(d.ip).toBeDefined();
    expect(d.tcp).toBeDefined();
    expect(d.checksums).toEqual(d.ip?.version === 4 ? { ip: true, tcp: true } : { tcp: true });
    if (name === PADDED) {
      expect(d.trailer.length).toBeGreaterThan(0);
      expect(d.trailer.every((b) => b === 0)).toBe(true);
      expect(f.bytes.length + 14).toBe(60); // padded to the Ethernet minimum frame
    } else {
      expect(d.trailer.length).toBe(0);
    }
  });

  it('encodes back to exactly the captured bytes, as decoded and with lengths and checksums recomputed', () => {
    const packet = asPacket(d)!;
    expect(toHex(encodePacket(packet))).toBe(toHex(f.bytes));
    expect(toHex(encodePacket(packet, { fixLengths: true, computeChecksums: true }))).toBe(toHex(f.bytes));
    // Without the fields a crafted packet leaves unset (lengths, checksums), the encoder computes the same values.
    const { ip, tcp } = packet;
    const crafted = {
      ...packet,
      ip: ip.version === 4 ? { ...ip, ihl: undefined, totalLength: undefined, checksum: undefined } : { ...ip, payloadLength: undefined },
      tcp: { ...tcp!, dataOffset: undefined, checksum: undefined, options: tcp!.options!.map((o) => ({ ...o, length: undefined })) },
    };
    expect(toHex(encodePacket(crafted))).toBe(toHex(f.bytes));
  });

  it('decodes to what tcpdump printed', () => {
    const ip = d.ip!;
    const tcp = d.tcp!;
    expect(ip.version).toBe(line.family);
    expect([ip.src, tcp.srcPort, ip.dst, tcp.dstPort]).toEqual([line.src, line.srcPort, line.dst, line.dstPort]);
    if (ip.version === 4) {
      expect(ip.ttl).toBe(Number(line.ip.ttl));
      expect(ip.id).toBe(Number(line.ip.id));
      expect(ip.totalLength).toBe(Number(line.ip.length));
      expect(ip.tos).toBe(parseInt(line.ip.tos, 16));
      expect(ip.fragmentOffset).toBe(Number(line.ip.offset));
      expect(line.ip.flags).toBe(ip.flags === 2 ? '[DF]' : '[none]');
    } else {
      expect(ip.hopLimit).toBe(Number(line.ip.hlim));
      expect(ip.flowLabel).toBe(parseInt(line.ip.flowlabel, 16));
      expect(ip.trafficClass).toBe(line.ip.class === undefined ? 0 : parseInt(line.ip.class, 16));
      expect(ip.payloadLength).toBe(Number(line.ip['payload length']));
      expect(ip.nextHeader).toBe(Number(line.ip['next-header']));
    }
    // tcpdump names the ECN codepoint after an IPv4 TOS ("tos 0x2,ECT(0)"); for IPv6 it prints only "class 0x02".
    const printedClass = ip.version === 4 ? parseInt(line.ip.tos, 16) : parseInt(line.ip.class ?? '0', 16);
    expect(ecnOf(ip)).toBe(printedClass & 0x03);
    if (ip.version === 4) expect(line.ip.ecn).toBe([undefined, 'ECT(1)', 'ECT(0)', 'CE'][ecnOf(ip)]);

    expect(tcp.flags).toBe(line.flags);
    expect(tcp.reserved).toBe(0);
    expect(tcp.checksum).toBe(line.cksum);
    expect(line.cksumCorrect).toBe(true);
    expect(tcp.window).toBe(line.win);
    expect(d.payload.length).toBe(line.length);
    if (line.seqEnd !== undefined) expect(line.seqEnd - line.seq!).toBe(d.payload.length);
    if (line.urg !== undefined || tcp.flags & TcpFlag.URG) expect(tcp.urgentPointer).toBe(line.urg);
    // tcpdump prints seq only for segments with data, SYN, FIN or RST, and ack only with ACK.
    expect(line.seq !== undefined).toBe(d.payload.length > 0 || (tcp.flags & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) !== 0);
    expect(line.ack !== undefined).toBe((tcp.flags & TcpFlag.ACK) !== 0);
    // Without ACK tcpdump prints sequence numbers as they are.
    if (!(tcp.flags & TcpFlag.ACK)) expect(line.seq).toBe(tcp.seq);

    // Options: the same kinds in the same order, and the same values.
    expect(tcp.options!.map((o) => o.kind)).toEqual(line.options.map((o) => OPTION_KIND_BY_TCPDUMP_NAME[o.name]));
    expect(tcp.optionsTail!.length).toBe(0);
    const ackBase = line.ack === undefined ? 0 : (tcp.ack - line.ack) >>> 0;
    tcp.options!.forEach((option, i) => checkOption(option, line.options[i], ackBase, d.payload.length));
  });

  it('formats without throwing, with the same flags, ports, window and length as tcpdump', () => {
    const text = formatPacket(d);
    expect(text).toContain(`${d.ip!.src}.${line.srcPort} > ${d.ip!.dst}.${line.dstPort}: Flags [`);
    expect(text).toContain(`win ${line.win}`);
    expect(text.endsWith(`length ${line.length}`)).toBe(true);
  });
});

/** One option against tcpdump's rendering of it. SACK edges are printed relative to the ack base. */
function checkOption(option: TcpOption, printed: TcpdumpOption, ackBase: number, payloadLength: number): void {
  const view: OptionView = viewOption(option);
  const args = printed.args;
  switch (view.type) {
    case 'nop':
    case 'eol':
    case 'sack-permitted':
      expect(args).toBe('');
      break;
    case 'mss':
      expect(args).toBe(String(view.mss));
      break;
    case 'window-scale':
      expect(args).toBe(String(view.shift));
      break;
    case 'timestamps':
      expect(args).toBe(`val ${view.value} ecr ${view.echo}`);
      break;
    case 'sack':
      expect(args).toBe(`${view.blocks.length} ${view.blocks.map(([l, r]) => `{${(l - ackBase) >>> 0}:${(r - ackBase) >>> 0}}`).join('')}`);
      break;
    case 'tfo':
      expect(args).toBe(view.cookie.length === 0 ? 'cookiereq' : `cookie ${toHex(view.cookie)}`);
      break;
    case 'mptcp': {
      // "mptcp <length> capable v1 {0xkey,0xkey}" / "mptcp <length> dss [fin] ack N seq N subseq N len N"
      const [length, subtype, ...rest] = args.split(' ');
      expect(Number(length)).toBe(option.length);
      if (view.mpCapable) {
        const c = view.mpCapable;
        expect(subtype).toBe('capable');
        expect(rest[0]).toBe(`v${c.version}`);
        const keys = [c.senderKey, c.receiverKey].filter((k) => k !== undefined).map((k) => `0x${k!.toString(16).padStart(16, '0')}`);
        expect(rest.slice(1).join(' ')).toBe(keys.length ? `{${keys.join(',')}}` : '');
        if (c.dataLength !== undefined) expect(c.dataLength).toBe(payloadLength);
      } else if (view.dss) {
        const dss = view.dss;
        expect(subtype).toBe('dss');
        const words = [...((dss.flags & 0x10) !== 0 ? ['fin'] : [])];
        if (dss.dataAck !== undefined) words.push('ack', String(dss.dataAck));
        if (dss.dataSequence !== undefined) words.push('seq', String(dss.dataSequence), 'subseq', String(dss.subflowSequence), 'len', String(dss.dataLength));
        expect(rest.join(' ')).toBe(words.join(' '));
      } else {
        expect.fail(`MPTCP subtype ${view.subtypeName} in a fixture: ${args}`);
      }
      break;
    }
    default:
      expect.fail(`option ${JSON.stringify(view)} has no tcpdump rendering to compare with ("${printed.name} ${args}")`);
  }
}

describe('sequence numbers across the corpus (tcpdump prints them relative to each direction\'s ISN)', () => {
  it('every segment of a connection direction implies the same ISN, equal to its SYN\'s sequence number where the SYN is a fixture', () => {
    // base = raw - printed: 0 where tcpdump printed the absolute number (segments without ACK and the
    // first ACK-bearing segment of a connection), the direction's ISN otherwise.
    const isn = new Map<string, Set<number>>();
    const note = (key: string, base: number): void => {
      if (base === 0) return;
      if (!isn.has(key)) isn.set(key, new Set());
      isn.get(key)!.add(base);
    };
    const synSeq = new Map<string, number>();
    for (const f of fixtures) {
      const { ip, tcp } = decoded.get(f.name)!;
      const line = lines.get(f.name)!;
      const forward = `${ip!.src}.${tcp!.srcPort}>${ip!.dst}.${tcp!.dstPort}`;
      const reverse = `${ip!.dst}.${tcp!.dstPort}>${ip!.src}.${tcp!.srcPort}`;
      if (line.seq !== undefined) note(forward, (tcp!.seq - line.seq) >>> 0);
      if (line.ack !== undefined) note(reverse, (tcp!.ack - line.ack) >>> 0);
      if (tcp!.flags & TcpFlag.SYN) synSeq.set(forward, tcp!.seq);
      // An absolute number on an ACK-bearing segment only for the one that opens tcpdump's conversation.
      if (line.ack !== undefined && line.ack === tcp!.ack) expect(tcp!.flags & (TcpFlag.SYN | TcpFlag.RST), f.name).not.toBe(0);
    }
    expect(isn.size).toBeGreaterThan(20);
    let checkedAgainstSyn = 0;
    for (const [direction, bases] of isn) {
      expect([...bases], direction).toHaveLength(1);
      if (synSeq.has(direction)) {
        expect([...bases][0], direction).toBe(synSeq.get(direction));
        checkedAgainstSyn++;
      }
    }
    expect(checkedAgainstSyn).toBeGreaterThanOrEqual(20);
  });
});

describe('specific fixtures', () => {
  const mptcpOf = (name: string): Extract<OptionView, { type: 'mptcp' }> => {
    const option = get(name).d.tcp!.options!.find((o) => o.kind === OptionKind.MPTCP);
    const view = option && viewOption(option);
    if (!view || view.type !== 'mptcp') throw new Error(`${name}: no MPTCP option`);
    return view;
  };

  it.each([
    ['v4-mptcp-syn-mpc', 4], ['v6-mptcp-syn-mpc', 4],
    ['v4-mptcp-synack-mpc', 12], ['v6-mptcp-synack-mpc', 12],
    ['v4-mptcp-ack-c2s-mpc', 20], ['v6-mptcp-ack-c2s-mpc', 20],
    ['v4-mptcp-data-c2s-mpc', 22], ['v6-mptcp-data-c2s-mpc', 22],
  ])('%s: MP_CAPABLE of length %i has the fields of that length', (name, length) => {
    const option = get(name).d.tcp!.options!.find((o) => o.kind === OptionKind.MPTCP)!;
    expect(option.length).toBe(length);
    const view = mptcpOf(name);
    expect(view.subtypeName).toBe('mp-capable');
    const c = view.mpCapable!;
    expect(c.version).toBe(1);
    expect(c.flags & 0x01).toBe(1); // HMAC-SHA256
    expect(Object.keys(c).sort()).toEqual(
      { 4: ['flags', 'version'], 12: ['flags', 'senderKey', 'version'], 20: ['flags', 'receiverKey', 'senderKey', 'version'], 22: ['dataLength', 'flags', 'receiverKey', 'senderKey', 'version'] }[length]!,
    );
    if (length === 22) expect(c.dataLength).toBe(get(name).d.payload.length);
  });

  it.each(['v4', 'v6'])('%s: the keys of the MPTCP handshake are echoed: SYN-ACK key = receiver key of the third ACK', (family) => {
    const server = mptcpOf(`${family}-mptcp-synack-mpc`).mpCapable!.senderKey!;
    const ack = mptcpOf(`${family}-mptcp-ack-c2s-mpc`).mpCapable!;
    const data = mptcpOf(`${family}-mptcp-data-c2s-mpc`).mpCapable!;
    expect(ack.receiverKey).toBe(server);
    expect(data.receiverKey).toBe(server);
    expect(data.senderKey).toBe(ack.senderKey);
  });

  it.each(['v4', 'v6'])('%s: DSS views carry the data ACK and the mapping', (family) => {
    const ackOnly = mptcpOf(`${family}-mptcp-ack-s2c-dss`).dss!;
    expect(ackOnly.flags & 0x03).toBe(0x03); // 8-byte data ACK present
    expect(typeof ackOnly.dataAck).toBe('bigint');
    expect(ackOnly.dataSequence).toBeUndefined();

    const data = get(`${family}-mptcp-data-s2c-dss`);
    const mapping = mptcpOf(`${family}-mptcp-data-s2c-dss`).dss!;
    expect(mapping.dataAck).toBe(ackOnly.dataAck);
    expect(typeof mapping.dataSequence).toBe('bigint');
    expect(mapping.subflowSequence).toBe(1);
    expect(mapping.dataLength).toBe(data.d.payload.length);
    expect(mapping.checksum).toBeUndefined();

    const fin = mptcpOf(`${family}-mptcp-ack-c2s-dss-datafin`).dss!;
    expect(fin.flags & 0x10).toBe(0x10); // DATA_FIN
    expect(fin.subflowSequence).toBe(0);
    expect(fin.dataLength).toBe(1);
    // The client's DATA_FIN acknowledges the server's data: data ACK = server DSN + its 17 bytes + ... ≥ mapping end.
    expect(fin.dataAck! >= mapping.dataSequence! + BigInt(mapping.dataLength!)).toBe(true);
  });

  it.each(['v4', 'v6'])('%s: TFO: cookie request, then the cookie, then the cookie with data in the SYN', (family) => {
    const tfo = (name: string): Uint8Array => {
      const option = get(name).d.tcp!.options!.find((o) => o.kind === OptionKind.TFO)!;
      const view = viewOption(option);
      if (view.type !== 'tfo') throw new Error(`${name}: TFO view is ${view.type}`);
      return view.cookie;
    };
    expect(tfo(`${family}-tfo1-syn-tfo-req`).length).toBe(0);
    const cookie = tfo(`${family}-tfo1-synack-tfo-cookie`);
    expect(cookie.length).toBe(8);
    expect(toHex(tfo(`${family}-tfo2-syn-data-tfo-cookie`))).toBe(toHex(cookie));
    const synData = get(`${family}-tfo2-syn-data-tfo-cookie`).d;
    expect(synData.tcp!.flags).toBe(TcpFlag.SYN);
    expect(synData.payload.length).toBeGreaterThan(0);
  });

  it.each([['v4-sack-ack-s2c-sack1', 1], ['v4-sack-ack-s2c-sack2', 2], ['v6-sack-ack-s2c-sack1', 1], ['v6-sack-ack-s2c-sack2', 2]])(
    '%s: SACK view with %i block(s) above the cumulative ACK',
    (name, count) => {
      const { tcp } = get(name).d;
      const view = viewOption(tcp!.options!.find((o) => o.kind === OptionKind.SACK)!);
      if (view.type !== 'sack') throw new Error(`SACK view is ${view.type}`);
      expect(view.blocks).toHaveLength(count);
      for (const [left, right] of view.blocks) {
        expect(((right - left) >>> 0) % 1448 === 0 || ((right - left) >>> 0) % 1428 === 0).toBe(true);
        expect((left - tcp!.ack) >>> 0).toBeLessThan(1 << 20); // above the ACK, not wrapped
      }
    },
  );

  it.each(['v4', 'v6'])('%s: ECN: ECE+CWR in the SYN, ECE in the SYN-ACK, ECT(0) on data', (family) => {
    const syn = get(`${family}-ecn-syn-ece-cwr`).d;
    const synAck = get(`${family}-ecn-synack-ece`).d;
    const data = get(`${family}-ecn-data-c2s-ect0`).d;
    expect(syn.tcp!.flags).toBe(TcpFlag.SYN | TcpFlag.ECE | TcpFlag.CWR);
    expect(synAck.tcp!.flags).toBe(TcpFlag.SYN | TcpFlag.ACK | TcpFlag.ECE);
    expect(ecnOf(syn.ip!)).toBe(0); // SYNs are not ECN-capable (RFC 3168)
    expect(ecnOf(data.ip!)).toBe(2); // ECT(0)
    expect(formatPacket(data)).toMatch(/^IP6? \[ECT\(0\)\] /);
    for (const f of fixtures.filter((x) => !x.name.includes('-ecn-'))) expect(ecnOf(decoded.get(f.name)!.ip!), f.name).toBe(0);
  });

  it.each(['v4', 'v6'])('%s: URG with an urgent pointer of 1 over one byte of data', (family) => {
    const { tcp, payload } = get(`${family}-urg-data-c2s-urg`).d;
    expect(tcp!.flags & TcpFlag.URG).toBe(TcpFlag.URG);
    expect(tcp!.urgentPointer).toBe(1);
    expect(payload.length).toBe(1);
    for (const f of fixtures.filter((x) => !x.name.includes('-urg-'))) expect(decoded.get(f.name)!.tcp!.urgentPointer, f.name).toBe(0);
  });

  it('the eth-padded segment is the plain ACK plus a trailer, and the trailer survives the round trip', () => {
    const plain = get('v4-nots-ack-c2s');
    const padded = get(PADDED);
    expect(toHex(padded.fixture.bytes).startsWith(toHex(plain.fixture.bytes))).toBe(true);
    expect(padded.d.trailer.length).toBe(padded.fixture.bytes.length - plain.fixture.bytes.length);
    expect({ ...padded.d, trailer: undefined }).toEqual({ ...plain.d, trailer: undefined });
    expect(toHex(encodePacket({ ...asPacket(padded.d)!, trailer: undefined }))).toBe(toHex(plain.fixture.bytes));
  });

  it('full-size segments carry the MSS the peer announced, less the timestamps', () => {
    for (const family of ['v4', 'v6']) {
      const d = get(`${family}-sack-data-c2s-fullsize`).d;
      expect(d.payload.length).toBe((family === 'v4' ? 1460 : 1440) - 12);
      expect(encodePacket(asPacket(d)!).length).toBe(1500);
    }
  });
});
