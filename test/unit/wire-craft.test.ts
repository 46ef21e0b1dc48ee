import { describe, expect, it } from 'vitest';
import {
  decodePacket, encodePacket, formatPacket, asPacket, toHex, fromHex, TcpFlag, mss, sackPermitted, timestamps, nop,
  windowScale, rawOption, sack, fastOpen, mptcpCapable, mptcpDss, experimental, viewOption, type Packet, ipv6ToBytes,
  ipv6ToString, internetChecksum, eol,
} from '../../shared/wire/index.js';

function syn(overrides: Partial<Packet['tcp'] & object> = {}): Packet {
  return {
    ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '10.0.0.1', dst: '10.0.0.2' },
    tcp: { srcPort: 40000, dstPort: 80, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 64240, options: [mss(1460), sackPermitted(), timestamps(1, 0), nop(), windowScale(7)], ...overrides },
    payload: new Uint8Array(0),
  };
}

describe('crafting segments', () => {
  it('computes lengths and checksums that the decoder accepts', () => {
    const bytes = encodePacket(syn());
    expect(bytes.length).toBe(60);
    const d = decodePacket(bytes);
    expect(d.issues).toEqual([]);
    expect(d.checksums).toEqual({ ip: true, tcp: true });
    expect(d.tcp?.dataOffset).toBe(10);
    expect(formatPacket(d)).toBe('IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1000, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0');
  });

  it('never mutates its input', () => {
    const p = syn();
    const before = JSON.stringify(p, (_k, v) => (v instanceof Uint8Array ? toHex(v) : v));
    encodePacket(p, { fixLengths: true, computeChecksums: true });
    expect(JSON.stringify(p, (_k, v) => (v instanceof Uint8Array ? toHex(v) : v))).toBe(before);
    expect(p.tcp?.dataOffset).toBeUndefined();
  });

  it('writes a wrong checksum as given and reports it on decode', () => {
    const d = decodePacket(encodePacket(syn({ checksum: 0xbeef })));
    expect(d.tcp?.checksum).toBe(0xbeef);
    expect(d.checksums.tcp).toBe(false);
    expect(d.issues.map((i) => i.code)).toEqual(['bad-checksum']);
  });

  it('pads options to 32 bits and decodes the padding as EOL', () => {
    const d = decodePacket(encodePacket(syn({ options: [rawOption(200, Uint8Array.of(1, 2, 3, 4, 5))] })));
    // The zero pad byte is an EOL; whatever follows an EOL is kept as the tail.
    expect(d.tcp?.options).toEqual([{ kind: 200, length: 7, data: Uint8Array.of(1, 2, 3, 4, 5) }, eol()]);
    expect(d.tcp?.optionsTail).toEqual(new Uint8Array(0));
    expect(d.tcp?.dataOffset).toBe(7);
  });

  it.each([0, 1])('crafts option length %i and decodes it as a bad-option-length issue, round-tripping', (length) => {
    const bytes = encodePacket(syn({ options: [mss(1460), rawOption(200, Uint8Array.of(9, 9), length)] }));
    const d = decodePacket(bytes);
    expect(d.issues.map((i) => i.code)).toContain('bad-option-length');
    expect(d.tcp?.options?.[1]).toMatchObject({ kind: 200, length });
    expect(toHex(encodePacket(asPacket(d)!))).toBe(toHex(bytes));
  });

  it('crafts an option running past the header', () => {
    const bytes = encodePacket(syn({ options: [rawOption(200, Uint8Array.of(1, 2), 30)] }));
    const d = decodePacket(bytes);
    expect(d.issues[0]).toMatchObject({ code: 'bad-option-length', layer: 'option', offset: 20 });
    expect(toHex(encodePacket(asPacket(d)!))).toBe(toHex(bytes));
  });

  it.each([[2, 'below'], [15, 'runs past']])('crafts data offset %i and reports it', (dataOffset, words) => {
    const bytes = encodePacket({ ...syn({ dataOffset, options: [] }), payload: Uint8Array.of(1, 2, 3, 4) });
    const d = decodePacket(bytes);
    const problem = d.issues.find((i) => i.code === 'bad-data-offset');
    expect(problem?.message).toContain(words);
    expect(d.tcp?.dataOffset).toBe(dataOffset);
    expect(toHex(encodePacket(asPacket(d)!))).toBe(toHex(bytes));
  });

  it('recomputes set lengths and checksums with fixLengths/computeChecksums', () => {
    const broken = syn({ dataOffset: 2, checksum: 1 });
    const d = decodePacket(encodePacket(broken, { fixLengths: true, computeChecksums: true }));
    expect(d.issues).toEqual([]);
    expect(d.tcp?.dataOffset).toBe(10);
  });

  it('keeps reserved bits, AE and the urgent pointer', () => {
    const d = decodePacket(encodePacket(syn({ reserved: 5, flags: TcpFlag.ACK | TcpFlag.URG | TcpFlag.AE, urgentPointer: 77 })));
    expect(d.tcp).toMatchObject({ reserved: 5, flags: TcpFlag.ACK | TcpFlag.URG | TcpFlag.AE, urgentPointer: 77 });
  });

  it('rejects values a field cannot hold, naming the field', () => {
    expect(() => encodePacket(syn({ srcPort: 70000 }))).toThrow(/srcPort = 70000/);
    expect(() => encodePacket(syn({ options: new Array(11).fill(timestamps(1, 1)) }))).toThrow(/at most 40/);
  });

  it('builds IPv6 segments with a pseudo-header checksum', () => {
    const p: Packet = {
      ip: { version: 6, trafficClass: 0xb8, flowLabel: 0x12345, hopLimit: 64, protocol: 6, src: 'fd00::1', dst: 'fd00::2' },
      tcp: { srcPort: 1, dstPort: 2, seq: 3, ack: 4, flags: TcpFlag.ACK | TcpFlag.PSH, window: 5 },
      payload: new TextEncoder().encode('hello'),
    };
    const d = decodePacket(encodePacket(p));
    expect(d.issues).toEqual([]);
    expect(d.checksums.tcp).toBe(true);
    expect(d.ip).toMatchObject({ version: 6, trafficClass: 0xb8, flowLabel: 0x12345, payloadLength: 25 });
    expect(formatPacket(d)).toBe('IP6 fd00::1.1 > fd00::2.2: Flags [P.], seq 3:8, ack 4, win 5, length 5');
  });
});

describe('option views', () => {
  it('derives typed views from raw options', () => {
    expect(viewOption(sack([[1, 2], [5, 9]]))).toEqual({ type: 'sack', blocks: [[1, 2], [5, 9]] });
    expect(viewOption(fastOpen())).toMatchObject({ type: 'tfo', cookie: new Uint8Array(0) });
    expect(viewOption(mptcpCapable())).toMatchObject({ type: 'mptcp', subtypeName: 'mp-capable', mpCapable: { version: 1, flags: 0x81 } });
    expect(viewOption(mptcpCapable({ version: 1, senderKey: 0x0102030405060708n }))).toMatchObject({ mpCapable: { senderKey: 0x0102030405060708n } });
    expect(viewOption(mptcpDss({ dataAck: 7, dataSequence: 100, subflowSequence: 1, dataLength: 64 }))).toMatchObject({
      type: 'mptcp', dss: { dataAck: 7n, dataSequence: 100n, subflowSequence: 1, dataLength: 64 },
    });
    expect(viewOption(experimental(0xf989, Uint8Array.of(1, 2, 3, 4)))).toMatchObject({ type: 'experimental', exid: 0xf989 });
    expect(viewOption(rawOption(200, Uint8Array.of(1)))).toMatchObject({ type: 'unknown', kind: 200 });
    expect(viewOption(rawOption(2, Uint8Array.of(1)))).toMatchObject({ type: 'malformed', kind: 2 });
    expect(viewOption(eol())).toEqual({ type: 'eol' });
  });
});

describe('addresses and checksums', () => {
  it.each(['::', '::1', 'fd00::1', '2001:db8::1:0:0:1', '2001:db8:0:1:1:1:1:1', 'fe80::1:2:3:4', '1::'])('round-trips IPv6 %s (RFC 5952 form)', (a) => {
    expect(ipv6ToString(ipv6ToBytes(a))).toBe(a);
  });
  it('formats the RFC 1071 example checksum', () => {
    expect(internetChecksum(fromHex('0001 f203 f4f5 f6f7'))).toBe(~0xddf2 & 0xffff);
  });
  it('decodes garbage without throwing', () => {
    for (const hex of ['', '45', '60', '4f00', '00'.repeat(40), '4500001c' + '00'.repeat(16)]) {
      const d = decodePacket(fromHex(hex));
      expect(d.issues.length).toBeGreaterThan(0);
    }
  });
});
