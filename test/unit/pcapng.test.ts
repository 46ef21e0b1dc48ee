import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  PcapngWriteError,
  readPcapng,
  writePcapng,
  type PcapngFile,
  type PcapngPacket,
} from '../../shared/pcapng.js';
import { installed } from '../helpers/tools.js';

function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

type Field = { u16: number } | { u32: number } | { i64: bigint } | { bytes: Uint8Array };

/** Encodes fields in either byte order, padding byte runs to 32 bits, so tests can build blocks the writer never emits. */
function fields(littleEndian: boolean, ...parts: Field[]): Uint8Array {
  return concat(
    ...parts.map((part) => {
      if ('bytes' in part) {
        const padded = new Uint8Array((part.bytes.length + 3) & ~3);
        padded.set(part.bytes);
        return padded;
      }
      const buffer = Buffer.alloc('u16' in part ? 2 : 'u32' in part ? 4 : 8);
      if ('u16' in part) littleEndian ? buffer.writeUInt16LE(part.u16) : buffer.writeUInt16BE(part.u16);
      else if ('u32' in part) littleEndian ? buffer.writeUInt32LE(part.u32) : buffer.writeUInt32BE(part.u32);
      else littleEndian ? buffer.writeBigInt64LE(part.i64) : buffer.writeBigInt64BE(part.i64);
      return Uint8Array.from(buffer);
    }),
  );
}

function block(littleEndian: boolean, blockType: number, body: Uint8Array): Uint8Array {
  const totalLength = 12 + body.length;
  return concat(fields(littleEndian, { u32: blockType }, { u32: totalLength }), body, fields(littleEndian, { u32: totalLength }));
}

function option(littleEndian: boolean, code: number, value: Uint8Array): Uint8Array {
  return fields(littleEndian, { u16: code }, { u16: value.length }, { bytes: value });
}

const END_OF_OPTIONS = new Uint8Array(4);
const utf8 = (text: string) => new TextEncoder().encode(text);

function internetChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** A 40-byte IPv4+TCP SYN from 192.0.2.1:srcPort to 198.51.100.2:80 with valid checksums. */
function ipv4TcpSyn(srcPort: number): Uint8Array {
  const packet = hex(
    '4500 0028 1234 4000 4006 0000 c000 0201 c633 6402' + // IPv4: len 40, DF, TTL 64, TCP, checksum 0 for now
      '0000 0050 0000 0001 0000 0000 5002 ffff 0000 0000', // TCP: ports, seq 1, SYN, window 65535, checksum 0 for now
  );
  const view = new DataView(packet.buffer);
  view.setUint16(20, srcPort);
  view.setUint16(10, internetChecksum(packet.subarray(0, 20)));
  const pseudoHeader = concat(packet.subarray(12, 20), hex('0006 0014'));
  view.setUint16(36, internetChecksum(concat(pseudoHeader, packet.subarray(20))));
  return packet;
}

function sampleFile(): PcapngFile {
  return {
    comment: 'mbprobe run 7 — ünïcödé',
    application: 'mbprobe 0.1.0',
    interfaces: [
      { linkType: LINKTYPE_ETHERNET, name: 'eth0', description: 'uplink', resolution: 'us' },
      { linkType: LINKTYPE_RAW, name: 'probe-ns', resolution: 'ns', snapLen: 1500 },
      { linkType: LINKTYPE_RAW },
      { linkType: LINKTYPE_ETHERNET, name: '', snapLen: 0, resolution: 'ns' },
    ],
    packets: [
      { interfaceId: 0, timestampNs: 1_700_000_000_123_456_000n, data: hex('ffffffffffff0200000000010800'), comments: ['arp?'] },
      { interfaceId: 1, timestampNs: 1_700_000_000_123_456_789n, data: ipv4TcpSyn(40000), comments: ['SYN', '日本語 ✓ 🚀', ''] },
      { interfaceId: 2, timestampNs: 5_000n, data: new Uint8Array(0), originalLength: 60 },
      { interfaceId: 3, timestampNs: 1n, data: hex('010203'), originalLength: 1_000_000 },
      { interfaceId: 1, timestampNs: (1n << 64n) - 1n, data: hex('0a0b0c0d0e'), comments: ['max timestamp'] },
    ],
  };
}

describe('writePcapng byte layout', () => {
  it('writes a bare little-endian Section Header Block for an empty file', () => {
    expect(toHex(writePcapng({ interfaces: [], packets: [] }))).toBe(
      '0a0d0d0a' + // block type: Section Header
        '1c000000' + // total length 28
        '4d3c2b1a' + // byte-order magic 0x1A2B3C4D, little-endian
        '0100' + '0000' + // version 1.0
        'ffffffffffffffff' + // section length: unspecified
        '1c000000', // total length again
    );
  });

  it('writes SHB options, an IDB and an EPB exactly as hand-computed', () => {
    const bytes = writePcapng({
      application: 'mbprobe',
      interfaces: [{ linkType: LINKTYPE_RAW, resolution: 'ns' }],
      packets: [{ interfaceId: 0, timestampNs: 0x1_0000_0002n, data: hex('deadbeef01'), comments: ['hi'] }],
    });
    const sectionHeader =
      '0a0d0d0a 2c000000 4d3c2b1a 0100 0000 ffffffffffffffff' +
      '0400 0700 6d6270726f626500' + // shb_userappl, 7 bytes "mbprobe" + 1 pad
      '0000 0000' + // opt_endofopt
      '2c000000';
    const interfaceDescription =
      '01000000 20000000' +
      '6500 0000 00000400' + // LINKTYPE_RAW, reserved, snaplen 262144
      '0900 0100 09000000' + // if_tsresol = 9 (ns), 3 pad
      '0000 0000 20000000';
    const enhancedPacket =
      '06000000 34000000' +
      '00000000 01000000 02000000' + // interface 0, timestamp high 1, low 2
      '05000000 05000000 deadbeef01000000' + // captured 5, original 5, data + 3 pad
      '0100 0200 68690000' + // opt_comment "hi" + 2 pad
      '0000 0000 34000000';
    expect(toHex(bytes)).toBe((sectionHeader + interfaceDescription + enhancedPacket).replace(/\s+/g, ''));
  });

  it('writes microsecond timestamps as whole microseconds, truncating sub-microsecond parts', () => {
    const bytes = writePcapng({
      interfaces: [{ linkType: LINKTYPE_RAW }],
      packets: [{ interfaceId: 0, timestampNs: 1_700_000_000_123_456_789n, data: new Uint8Array(0) }],
    });
    const view = new DataView(bytes.buffer);
    const epbOffset = 28 + 32;
    const units = (BigInt(view.getUint32(epbOffset + 12, true)) << 32n) | BigInt(view.getUint32(epbOffset + 16, true));
    expect(units).toBe(1_700_000_000_123_456n);
    expect(readPcapng(bytes).packets[0].timestampNs).toBe(1_700_000_000_123_456_000n);
  });
});

describe('readPcapng', () => {
  it('round-trips several interfaces, resolutions, lengths and UTF-8 comments', () => {
    const file = sampleFile();
    const read = readPcapng(writePcapng(file));
    expect(read.issues).toEqual([]);
    expect(read.comment).toBe(file.comment);
    expect(read.application).toBe(file.application);
    expect(read.interfaces).toStrictEqual([
      { linkType: LINKTYPE_ETHERNET, name: 'eth0', description: 'uplink', resolution: 'us', snapLen: 262144 },
      { linkType: LINKTYPE_RAW, name: 'probe-ns', resolution: 'ns', snapLen: 1500 },
      { linkType: LINKTYPE_RAW, resolution: 'us', snapLen: 262144 },
      { linkType: LINKTYPE_ETHERNET, name: '', resolution: 'ns', snapLen: 0 },
    ]);
    const expectedPackets: PcapngPacket[] = file.packets.map((packet) => {
      const expected: PcapngPacket = { ...packet, originalLength: packet.originalLength ?? packet.data.length };
      if (packet.comments === undefined) delete expected.comments;
      return expected;
    });
    expect(read.packets).toStrictEqual(expectedPackets);
  });

  it('reads big-endian sections, power-of-2 resolution, if_tsoffset, Simple Packet Blocks and later sections', () => {
    const littleEndian = false;
    const bigEndianSection = concat(
      block(littleEndian, 0x0a0d0d0a, concat(
        fields(littleEndian, { u32: 0x1a2b3c4d }, { u16: 1 }, { u16: 0 }, { i64: -1n }),
        option(littleEndian, 1, utf8('big endian')),
        END_OF_OPTIONS,
      )),
      block(littleEndian, 1, concat(
        fields(littleEndian, { u16: LINKTYPE_ETHERNET }, { u16: 0 }, { u32: 4 }),
        option(littleEndian, 2, utf8('be0')),
        option(littleEndian, 9, Uint8Array.of(0x80 | 10)), // 2^-10 s per unit
        END_OF_OPTIONS,
      )),
      block(littleEndian, 1, concat(
        fields(littleEndian, { u16: LINKTYPE_RAW }, { u16: 0 }, { u32: 0 }),
        option(littleEndian, 14, fields(littleEndian, { i64: 100n })), // if_tsoffset: +100 s, resolution left at default 10^-6
        END_OF_OPTIONS,
      )),
      block(littleEndian, 6, fields(littleEndian, { u32: 0 }, { u32: 0 }, { u32: 1024 * 5 + 512 }, { u32: 4 }, { u32: 4 }, { bytes: hex('c0ffee00') })),
      block(littleEndian, 0x0bad, hex('01020304')), // unknown block type
      block(littleEndian, 3, fields(littleEndian, { u32: 6 }, { bytes: hex('a1a2a3a4a5a6') })), // SPB cut to interface 0's snaplen 4
      block(littleEndian, 6, fields(littleEndian, { u32: 1 }, { u32: 0 }, { u32: 7_000_001 }, { u32: 1 }, { u32: 1 }, { bytes: hex('ee') })),
    );
    const littleEndianSection = writePcapng({
      comment: 'second section',
      interfaces: [{ linkType: LINKTYPE_RAW, resolution: 'ns' }],
      packets: [{ interfaceId: 0, timestampNs: 42n, data: hex('45'), comments: ['le'] }],
    });

    const read = readPcapng(concat(bigEndianSection, littleEndianSection));
    expect(read.issues).toEqual([]);
    expect(read.comment).toBe('big endian');
    expect(read.interfaces).toStrictEqual([
      { linkType: LINKTYPE_ETHERNET, name: 'be0', snapLen: 4 },
      { linkType: LINKTYPE_RAW, resolution: 'us', snapLen: 0 },
      { linkType: LINKTYPE_RAW, resolution: 'ns', snapLen: 262144 },
    ]);
    expect(read.packets).toStrictEqual([
      { interfaceId: 0, timestampNs: 5_500_000_000n, data: hex('c0ffee00'), originalLength: 4 },
      { interfaceId: 0, timestampNs: 0n, data: hex('a1a2a3a4'), originalLength: 6 },
      { interfaceId: 1, timestampNs: 107_000_001_000n, data: hex('ee'), originalLength: 1 },
      { interfaceId: 2, timestampNs: 42n, data: hex('45'), originalLength: 1, comments: ['le'] },
    ]);
  });

  it('reports empty input, non-pcapng input and a bad byte-order magic without reading anything', () => {
    expect(readPcapng(new Uint8Array(0)).issues.map((issue) => issue.code)).toEqual(['truncated']);
    const classicPcap = hex('d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000');
    expect(readPcapng(classicPcap)).toStrictEqual({
      interfaces: [],
      packets: [],
      issues: [expect.objectContaining({ code: 'bad-magic', offset: 0 })],
    });
    const badMagic = writePcapng({ interfaces: [], packets: [] });
    badMagic[8] = 0x00;
    expect(readPcapng(badMagic).issues).toEqual([expect.objectContaining({ code: 'bad-magic', offset: 0 })]);
  });

  it('stops at an unsupported major version', () => {
    const bytes = writePcapng(sampleFile());
    bytes[12] = 2; // major version low byte
    const read = readPcapng(bytes);
    expect(read.packets).toEqual([]);
    expect(read.issues).toEqual([expect.objectContaining({ code: 'unsupported', offset: 0 })]);
  });

  it('returns the packets before a truncation and reports where it happened', () => {
    const file = sampleFile();
    const bytes = writePcapng(file);
    const lastBlockLength = new DataView(bytes.buffer).getUint32(bytes.length - 4, true);
    const lastBlockOffset = bytes.length - lastBlockLength;
    const read = readPcapng(bytes.subarray(0, bytes.length - 10));
    expect(read.packets.map((packet) => packet.timestampNs)).toEqual(file.packets.slice(0, -1).map((packet) => packet.timestampNs));
    expect(read.issues).toEqual([expect.objectContaining({ code: 'truncated', offset: lastBlockOffset })]);
  });

  it('stops at a block whose trailing length disagrees with its leading length', () => {
    const bytes = writePcapng(sampleFile());
    bytes[bytes.length - 4] ^= 0xff;
    const read = readPcapng(bytes);
    expect(read.packets).toHaveLength(sampleFile().packets.length - 1);
    expect(read.issues).toEqual([expect.objectContaining({ code: 'bad-block' })]);
  });

  it('skips a packet that references an undefined interface and keeps reading', () => {
    const bytes = writePcapng({
      interfaces: [{ linkType: LINKTYPE_RAW }],
      packets: [
        { interfaceId: 0, timestampNs: 1000n, data: hex('01') },
        { interfaceId: 0, timestampNs: 2000n, data: hex('02') },
        { interfaceId: 0, timestampNs: 3000n, data: hex('03') },
      ],
    });
    const secondPacketOffset = 28 + 32 + 36; // SHB, IDB with if_tsresol, first 1-byte EPB
    bytes[secondPacketOffset + 8] = 7; // interface id 7
    const read = readPcapng(bytes);
    expect(read.packets.map((packet) => packet.data[0])).toEqual([1, 3]);
    expect(read.issues).toEqual([expect.objectContaining({ code: 'bad-block', offset: secondPacketOffset })]);
  });
});

describe('writePcapng argument errors', () => {
  const oneInterface = [{ linkType: LINKTYPE_RAW }];
  const packet = { interfaceId: 0, timestampNs: 0n, data: hex('45') };
  const cases: Array<[string, PcapngFile, string]> = [
    ['unknown interface', { interfaces: oneInterface, packets: [{ ...packet, interfaceId: 1 }] }, 'PCAPNG_UNKNOWN_INTERFACE'],
    ['negative interface', { interfaces: oneInterface, packets: [{ ...packet, interfaceId: -1 }] }, 'PCAPNG_UNKNOWN_INTERFACE'],
    ['link type too large', { interfaces: [{ linkType: 70_000 }], packets: [] }, 'PCAPNG_INVALID_LINK_TYPE'],
    ['fractional snap length', { interfaces: [{ linkType: 1, snapLen: 1.5 }], packets: [] }, 'PCAPNG_INVALID_SNAP_LEN'],
    ['data longer than snap length', { interfaces: [{ linkType: 1, snapLen: 2 }], packets: [{ ...packet, data: hex('010203') }] }, 'PCAPNG_PACKET_EXCEEDS_SNAP_LEN'],
    ['original length below captured length', { interfaces: oneInterface, packets: [{ ...packet, data: hex('0102'), originalLength: 1 }] }, 'PCAPNG_INVALID_ORIGINAL_LENGTH'],
    ['negative timestamp', { interfaces: oneInterface, packets: [{ ...packet, timestampNs: -1n }] }, 'PCAPNG_TIMESTAMP_OUT_OF_RANGE'],
    ['timestamp beyond 64 bits', { interfaces: [{ linkType: 1, resolution: 'ns' }], packets: [{ ...packet, timestampNs: 1n << 64n }] }, 'PCAPNG_TIMESTAMP_OUT_OF_RANGE'],
    ['comment too long', { interfaces: oneInterface, packets: [{ ...packet, comments: ['é'.repeat(40_000)] }] }, 'PCAPNG_OPTION_TOO_LONG'],
    ['resolution from untyped caller', { interfaces: [{ linkType: 1, resolution: 'ms' as 'us' }], packets: [] }, 'PCAPNG_INVALID_RESOLUTION'],
  ];

  it.each(cases)('rejects %s', (_name, file, code) => {
    let thrown: unknown;
    try {
      writePcapng(file);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect(thrown).toBeInstanceOf(PcapngWriteError);
    expect((thrown as PcapngWriteError).code).toBe(code);
    expect((thrown as Error).message.length).toBeGreaterThan(20);
  });

  it('names the offending packet and the valid interface range', () => {
    expect(() => writePcapng({ interfaces: oneInterface, packets: [packet, { ...packet, interfaceId: 3 }] })).toThrow(
      /packet 1 references interface 3, but only 1 interface\(s\) are defined.*0\.\.0/,
    );
  });
});

describe('readPcapng on hostile input', () => {
  const validFile = writePcapng(sampleFile());
  const sectionHeaderOnly = writePcapng({ interfaces: [], packets: [] });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const read = readPcapng(bytes);
        expect(Array.isArray(read.issues)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on random blocks after a valid section header, in either byte order', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.boolean(), (tail, bigEndian) => {
        const header = Uint8Array.from(sectionHeaderOnly);
        if (bigEndian) header.set(hex('0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c'), 4);
        readPcapng(concat(header, tail));
      }),
      { numRuns: 2000 },
    );
  });

  it('returns a prefix of the packets for every truncation of a valid file', () => {
    const allPackets = readPcapng(validFile).packets;
    const blockEnds = new Set<number>();
    const view = new DataView(validFile.buffer);
    for (let offset = 0; offset < validFile.length; offset += view.getUint32(offset + 4, true)) {
      blockEnds.add(offset + view.getUint32(offset + 4, true));
    }
    for (let length = 0; length < validFile.length; length++) {
      const read = readPcapng(validFile.subarray(0, length));
      expect(read.packets).toStrictEqual(allPackets.slice(0, read.packets.length));
      // Cutting exactly between blocks leaves a valid, shorter file.
      expect(read.issues.length > 0).toBe(!blockEnds.has(length));
    }
  });

  it('never throws when bytes of a valid file are overwritten', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(validFile.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const mutated = Uint8Array.from(validFile);
        for (const [index, value] of edits) mutated[index] = value;
        readPcapng(mutated);
      }),
      { numRuns: 2000 },
    );
  });
});

const tsharkOnPath = installed('tshark') !== undefined;

describe('tshark interoperability', () => {
  it.skipIf(!tsharkOnPath)('opens the file and sees the interface ids, comments, exact timestamps and ports written', () => {
    const packets: PcapngPacket[] = [
      { interfaceId: 0, timestampNs: 1_700_000_000_123_456_000n, data: ipv4TcpSyn(40001), comments: ['first SYN'] },
      { interfaceId: 1, timestampNs: 1_700_000_000_123_456_789n, data: ipv4TcpSyn(40002), comments: ['naïve ✓ 日本'] },
      { interfaceId: 1, timestampNs: 1_700_000_001_000_000_001n, data: ipv4TcpSyn(40003), comments: ['two', 'comments'] },
      { interfaceId: 0, timestampNs: 1_700_000_002_000_001_000n, data: ipv4TcpSyn(40004) },
    ];
    const directory = mkdtempSync(join(tmpdir(), 'mbprobe-pcapng-'));
    try {
      const path = join(directory, 'probe.pcapng');
      writeFileSync(path, writePcapng({
        application: 'mbprobe test',
        interfaces: [
          { linkType: LINKTYPE_RAW, name: 'probe-us', resolution: 'us' },
          { linkType: LINKTYPE_RAW, name: 'probe-ns', resolution: 'ns' },
        ],
        packets,
      }));
      // Wireshark 4.0 names the packet comment field frame.comment (pkt_comment is only the protocol tree node).
      const output = execFileSync(
        'tshark',
        ['-r', path, '-T', 'fields', '-E', 'aggregator=|', '-e', 'frame.interface_id', '-e', 'frame.comment', '-e', 'frame.time_epoch', '-e', 'tcp.srcport'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const rows = output.trimEnd().split('\n').map((line) => line.split('\t'));
      expect(rows).toStrictEqual(
        packets.map((packet) => [
          String(packet.interfaceId),
          (packet.comments ?? []).join('|'),
          `${packet.timestampNs / 1_000_000_000n}.${String(packet.timestampNs % 1_000_000_000n).padStart(9, '0')}`,
          String(new DataView(packet.data.buffer).getUint16(20)),
        ]),
      );
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
