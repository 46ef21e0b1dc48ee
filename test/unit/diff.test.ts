import { describe, expect, it } from 'vitest';
import { diffSegments, interferenceRows, type DiffClass, type DiffRow } from '../../shared/diff.js';
import {
  asPacket, decodePacket, encodePacket, mss, nop, rawOption, sack, timestamps, toHex, findOption, OptionKind, viewOption,
  type EncodeOptions, type Packet, type TcpHeader, type WireLayer,
} from '../../shared/wire/index.js';
import { loadFixtures } from '../helpers/fixtures.js';

/**
 * Every case starts from a real Linux segment of test/fixtures/linux-segments.txt, applies one known
 * middlebox change with the codec, and re-encodes with fixed lengths and checksums, so the modified
 * segment is self-consistent, as a middlebox would emit it.
 */
const FIXTURES = new Map(loadFixtures().map((f) => [f.name, f.bytes]));

function real(name: string): Uint8Array {
  const bytes = FIXTURES.get(name);
  if (!bytes) throw new Error(`no fixture ${name}`);
  return bytes.slice();
}

type TcpPacket = Packet & { tcp: TcpHeader & { options: NonNullable<TcpHeader['options']> } };

const CONSISTENT: EncodeOptions = { fixLengths: true, computeChecksums: true };

/** Decode a fixture (or bytes), let `change` edit it, encode it again. */
function rewrite(from: string | Uint8Array, change: (p: TcpPacket) => void, opts: EncodeOptions = CONSISTENT): Uint8Array {
  const p = asPacket(decodePacket(typeof from === 'string' ? real(from) : from.slice())) as TcpPacket;
  change(p);
  return encodePacket(p, opts);
}

const hex16 = (v: number): string => `0x${v.toString(16).padStart(4, '0')}`;
const ipChecksum = (b: Uint8Array): string => {
  const ip = decodePacket(b).ip!;
  return hex16(ip.version === 4 ? ip.checksum! : 0);
};
const tcpChecksum = (b: Uint8Array): string => hex16(decodePacket(b).tcp!.checksum!);

function row(layer: WireLayer, field: string, sent: string | null, received: string | null, cls: DiffClass, change?: string): DiffRow {
  return change === undefined ? { layer, field, sent, received, class: cls } : { layer, field, sent, received, class: cls, change };
}

/** The fixture segment every payload/ISN case uses: 23 bytes of "mbprobe-request normal\n". */
const DATA = 'v4-normal-data-c2s';
const DATA_SEQ = 359839365;
const DATA_ISN = DATA_SEQ - 1;
const DATA_TS = 'TS val 902903378 ecr 4142435130';

describe('fixture sanity', () => {
  it('holds the segments these tests rely on', () => {
    const d = decodePacket(real(DATA));
    expect(new TextDecoder().decode(d.payload)).toBe('mbprobe-request normal\n');
    expect(d.tcp).toMatchObject({ seq: DATA_SEQ, window: 63, checksum: 0xdd34 });
    expect(d.ip).toMatchObject({ id: 58383, ttl: 64, checksum: 0x4201, totalLength: 75 });
    expect(FIXTURES.size).toBe(73);
  });
});

describe('diffSegments: nothing changed', () => {
  it.each([...FIXTURES.keys()])('%s against itself gives no rows', (name) => {
    expect(diffSegments(real(name), real(name))).toEqual([]);
    expect(diffSegments(decodePacket(real(name)), decodePacket(real(name)), { seq: { sent: 1, received: 1 }, ack: { sent: 2, received: 2 } })).toEqual([]);
  });

  it('ignores the Ethernet padding of a short frame', () => {
    expect(diffSegments(real('v4-nots-ack-c2s'), real('v4-nots-ack-c2s-eth-padded'))).toEqual([]);
  });

  it('decoding and re-encoding with fixed lengths and checksums changes nothing', () => {
    for (const name of FIXTURES.keys()) {
      if (name.includes('eth-padded')) continue;
      expect(diffSegments(real(name), rewrite(name, () => {}))).toEqual([]);
    }
  });
});

describe('diffSegments: fields every path changes', () => {
  it('reports TTL, IP ID and the IP checksum as expected, nothing as interference', () => {
    const received = rewrite(DATA, (p) => {
      if (p.ip.version !== 4) throw new Error('v4 fixture');
      p.ip.ttl = 57;
      p.ip.id = 4242;
    });
    const rows = diffSegments(real(DATA), received);
    expect(rows).toEqual([
      row('ip', 'id', '58383', '4242', 'expected'),
      row('ip', 'ttl', '64', '57', 'expected'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
    ]);
    expect(interferenceRows(rows)).toEqual([]);
  });

  it('reports the IPv6 hop limit as expected (no IP checksum to change)', () => {
    const received = rewrite('v6-normal-data-c2s', (p) => {
      if (p.ip.version !== 6) throw new Error('v6 fixture');
      p.ip.hopLimit = 52;
    });
    expect(diffSegments(real('v6-normal-data-c2s'), received)).toEqual([row('ip', 'hopLimit', '64', '52', 'expected')]);
  });
});

describe('diffSegments: NAT', () => {
  const nat = (p: TcpPacket): void => {
    if (p.ip.version !== 4) throw new Error('v4 fixture');
    p.ip.src = '192.0.2.7';
    p.ip.ttl = 63;
    p.tcp.srcPort = 61000;
  };

  it('classes rewritten addresses and ports as interference, the fixed checksums as expected', () => {
    const received = rewrite(DATA, nat);
    const rows = diffSegments(real(DATA), received);
    expect(rows).toEqual([
      row('ip', 'ttl', '64', '63', 'expected'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
      row('ip', 'src', '10.77.0.1', '192.0.2.7', 'interference'),
      row('tcp', 'srcPort', '39860', '61000', 'interference'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
    ]);
    expect(interferenceRows(rows).map((r) => r.field)).toEqual(['src', 'srcPort']);
  });

  it('flags a TCP checksum the NAT left unchanged, now invalid for the new addresses', () => {
    // IP checksum recomputed (left unset), TCP checksum written as it was.
    const received = rewrite(DATA, (p) => {
      nat(p);
      if (p.ip.version === 4) p.ip.checksum = undefined;
    }, { fixLengths: true });
    expect(decodePacket(received).checksums).toEqual({ ip: true, tcp: false });
    expect(diffSegments(real(DATA), received)).toEqual([
      row('ip', 'ttl', '64', '63', 'expected'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
      row('ip', 'src', '10.77.0.1', '192.0.2.7', 'interference'),
      row('tcp', 'srcPort', '39860', '61000', 'interference'),
      row('tcp', 'checksum', '0xdd34', '0xdd34', 'interference', 'invalid'),
    ]);
  });
});

describe('diffSegments: checksums', () => {
  it('a checksum that arrives invalid is interference', () => {
    const received = rewrite(DATA, (p) => void (p.tcp.checksum = 0x1234), { fixLengths: true });
    expect(diffSegments(real(DATA), received)).toEqual([row('tcp', 'checksum', '0xdd34', '0x1234', 'interference', 'invalid')]);
  });

  it('a deliberately bad checksum that arrives corrected is interference (something recomputed it)', () => {
    const sent = rewrite(DATA, (p) => void (p.tcp.checksum = 0xbeef), { fixLengths: true });
    expect(diffSegments(sent, real(DATA))).toEqual([row('tcp', 'checksum', '0xbeef', '0xdd34', 'interference', 'corrected')]);
  });

  it('a deliberately bad checksum that arrives as sent is no change', () => {
    const sent = rewrite(DATA, (p) => void (p.tcp.checksum = 0xbeef), { fixLengths: true });
    expect(diffSegments(sent, sent)).toEqual([]);
  });
});

describe('diffSegments: options', () => {
  const SYN = 'v4-normal-syn';

  it('option removed, header shortened: the removal is the finding, lengths and NOP padding follow', () => {
    const received = rewrite(DATA, (p) => void (p.tcp.options = []));
    expect(diffSegments(real(DATA), received)).toEqual([
      row('ip', 'totalLength', '75', '63', 'expected'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
      row('tcp', 'dataOffset', '8', '5', 'expected'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
      row('option', 'timestamps', DATA_TS, null, 'interference', 'removed'),
      row('option', 'nop', '2', '0', 'expected', 'removed'),
    ]);
  });

  it('window scale stripped from a SYN together with its NOP', () => {
    const received = rewrite(SYN, (p) => void p.tcp.options.splice(3, 2));
    expect(diffSegments(real(SYN), received)).toEqual([
      row('ip', 'totalLength', '60', '56', 'expected'),
      row('ip', 'checksum', '0x4212', ipChecksum(received), 'expected'),
      row('tcp', 'dataOffset', '10', '9', 'expected'),
      row('tcp', 'checksum', '0x5118', tcpChecksum(received), 'expected'),
      row('option', 'window-scale', 'wscale 10', null, 'interference', 'removed'),
      row('option', 'nop', '1', '0', 'expected', 'removed'),
    ]);
  });

  it('sackOK removed and the option space re-padded with EOL: the padding is expected', () => {
    const received = rewrite(SYN, (p) => void p.tcp.options.splice(1, 1));
    expect(diffSegments(real(SYN), received)).toEqual([
      row('tcp', 'checksum', '0x5118', tcpChecksum(received), 'expected'),
      row('option', 'sack-permitted', 'sackOK', null, 'interference', 'removed'),
      row('option', 'eol', '0', '1', 'expected', 'padding'),
      row('option', 'tail', '', '00', 'expected', 'padding'),
    ]);
  });

  it('option overwritten with NOPs (TCPOPTSTRIP) reads as replaced-by-nop, not removed + NOPs added', () => {
    const received = rewrite(SYN, (p) => void p.tcp.options.splice(1, 1, nop(), nop()));
    expect(diffSegments(real(SYN), received)).toEqual([
      row('tcp', 'checksum', '0x5118', tcpChecksum(received), 'expected'),
      row('option', 'sack-permitted', 'sackOK', 'nop×2', 'interference', 'replaced-by-nop'),
    ]);
    const noTs = rewrite(DATA, (p) => void p.tcp.options.splice(2, 1, ...Array.from({ length: 10 }, nop)));
    expect(diffSegments(real(DATA), noTs)).toEqual([
      row('tcp', 'checksum', '0xdd34', tcpChecksum(noTs), 'expected'),
      row('option', 'timestamps', DATA_TS, 'nop×10', 'interference', 'replaced-by-nop'),
    ]);
  });

  it('tells the NOPed option from the removed one by where the NOPs are', () => {
    // [mss, sackOK, TS, nop, wscale] -> [mss, nop, nop, nop, wscale]: sackOK NOPed in place, TS cut out.
    const received = rewrite(SYN, (p) => void p.tcp.options.splice(1, 2, nop(), nop()));
    expect(diffSegments(real(SYN), received)).toEqual([
      row('ip', 'totalLength', '60', '52', 'expected'),
      row('ip', 'checksum', '0x4212', ipChecksum(received), 'expected'),
      row('tcp', 'dataOffset', '10', '8', 'expected'),
      row('tcp', 'checksum', '0x5118', tcpChecksum(received), 'expected'),
      row('option', 'sack-permitted', 'sackOK', 'nop×2', 'interference', 'replaced-by-nop'),
      row('option', 'timestamps', 'TS val 902903378 ecr 0', null, 'interference', 'removed'),
      row('option', 'eol', '0', '1', 'expected', 'padding'),
      row('option', 'tail', '', '00', 'expected', 'padding'),
    ]);
    // [mss, sackOK, TS, nop, wscale] -> [mss, sackOK, TS, nop, nop, nop, nop]: the last option NOPed.
    const lastNopped = rewrite(SYN, (p) => void p.tcp.options.splice(4, 1, nop(), nop(), nop()));
    expect(diffSegments(real(SYN), lastNopped)).toEqual([
      row('tcp', 'checksum', '0x5118', tcpChecksum(lastNopped), 'expected'),
      row('option', 'window-scale', 'wscale 10', 'nop×3', 'interference', 'replaced-by-nop'),
    ]);
  });

  it('MSS clamped 1460 -> 536 is a modified value', () => {
    const received = rewrite(SYN, (p) => void (p.tcp.options[0] = mss(536)));
    expect(diffSegments(real(SYN), received)).toEqual([
      row('tcp', 'checksum', '0x5118', tcpChecksum(received), 'expected'),
      row('option', 'mss', 'mss 1460', 'mss 536', 'interference', 'modified'),
    ]);
  });

  it('shows the raw bytes when the rendering alone would not show the change (MP_CAPABLE flags)', () => {
    const name = 'v4-mptcp-syn-mpc';
    const received = rewrite(name, (p) => {
      const mpc = findOption(p.tcp.options, OptionKind.MPTCP)!;
      mpc.data = Uint8Array.of(mpc.data[0], 0x81);
    });
    expect(diffSegments(real(name), received)).toEqual([
      row('tcp', 'checksum', tcpChecksum(real(name)), tcpChecksum(received), 'expected'),
      row('option', 'mptcp', 'mptcp capable v1 [4:0101]', 'mptcp capable v1 [4:0181]', 'interference', 'modified'),
    ]);
  });

  it('option added: an unknown kind appended to a data segment', () => {
    const received = rewrite(DATA, (p) => void p.tcp.options.push(rawOption(200, Uint8Array.of(1, 2))));
    expect(diffSegments(real(DATA), received)).toEqual([
      row('ip', 'totalLength', '75', '79', 'expected'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
      row('tcp', 'dataOffset', '8', '9', 'expected'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
      row('option', 'kind-200', null, 'unknown-200 0x0102', 'interference', 'added'),
    ]);
  });

  it('option added with its NOP alignment: timestamps inserted into a SYN that had none', () => {
    const name = 'v4-nots-syn';
    const received = rewrite(name, (p) => void p.tcp.options.push(nop(), nop(), timestamps(1, 0)));
    expect(diffSegments(real(name), received)).toEqual([
      row('ip', 'totalLength', '52', '64', 'expected'),
      row('ip', 'checksum', ipChecksum(real(name)), ipChecksum(received), 'expected'),
      row('tcp', 'dataOffset', '8', '11', 'expected'),
      row('tcp', 'checksum', '0x11c3', tcpChecksum(received), 'expected'),
      row('option', 'timestamps', null, 'TS val 1 ecr 0', 'interference', 'added'),
      row('option', 'nop', '3', '5', 'expected', 'added'),
    ]);
  });

  it('options reordered', () => {
    const received = rewrite(SYN, (p) => {
      const [m, s] = p.tcp.options;
      p.tcp.options.splice(0, 2, s, m);
    });
    // Swapping the 4-byte MSS and the 2-byte sackOK only permutes 16-bit words: same checksum.
    expect(tcpChecksum(received)).toBe('0x5118');
    expect(diffSegments(real(SYN), received)).toEqual([
      row('option', 'order', 'mss,sack-permitted,timestamps,window-scale', 'sack-permitted,mss,timestamps,window-scale', 'interference', 'reordered'),
    ]);
  });

  it('timestamp value rewritten', () => {
    const received = rewrite(DATA, (p) => void (p.tcp.options[2] = timestamps(1000, 4142435130)));
    expect(diffSegments(real(DATA), received)).toEqual([
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
      row('option', 'timestamps', DATA_TS, 'TS val 1000 ecr 4142435130', 'interference', 'modified'),
    ]);
  });

  describe('SACK blocks behind an ISN-rewriting box', () => {
    // s2c ACK with two SACK blocks. The ack and the blocks are in the initiator's sequence space.
    const name = 'v4-sack-ack-s2c-sack2';
    const sent = decodePacket(real(name));
    const ack = sent.tcp!.ack;
    const initiatorIsn = (ack - 1449) >>> 0;
    const blocks = (shift: number): Array<[number, number]> => [[5793, 7241], [2897, 4345]].map(([l, r]): [number, number] => [(initiatorIsn + l + shift) >>> 0, (initiatorIsn + r + shift) >>> 0]);
    const render = (shift: number): string => `sack 2 ${blocks(shift).map(([l, r]) => `{${l}:${r}}`).join('')}`;
    // The box shifted the initiator's sequence numbers by +12345 on the way in, so on the way back
    // it must shift ack and SACK edges by -12345. Context: the initiator ISN as the responder saw it
    // (the sent segment's frame) and as the initiator chose it (the received segment's frame).
    const context = { ack: { sent: initiatorIsn, received: (initiatorIsn - 12345) >>> 0 } };

    it('the fixture holds the blocks this test shifts', () => {
      expect(viewOption(findOption(sent.tcp!.options, OptionKind.SACK)!)).toEqual({ type: 'sack', blocks: blocks(0) });
    });

    it('translated consistently: ack and SACK are isn-offset, nothing is interference', () => {
      const received = rewrite(name, (p) => {
        p.tcp.ack = (p.tcp.ack - 12345) >>> 0;
        p.tcp.options[5] = sack(blocks(-12345));
      });
      const rows = diffSegments(real(name), received, context);
      expect(rows).toEqual([
        row('tcp', 'ack', String(ack), String((ack - 12345) >>> 0), 'isn-offset', 'offset -12345'),
        row('tcp', 'checksum', '0x9496', tcpChecksum(received), 'expected'),
        row('option', 'sack', render(0), render(-12345), 'isn-offset', 'translated'),
      ]);
      expect(interferenceRows(rows)).toEqual([]);
    });

    it('ack translated but SACK blocks not (the classic firewall bug): a not-translated row in relative numbers', () => {
      const received = rewrite(name, (p) => void (p.tcp.ack = (p.tcp.ack - 12345) >>> 0));
      expect(diffSegments(real(name), received, context)).toEqual([
        row('tcp', 'ack', String(ack), String((ack - 12345) >>> 0), 'isn-offset', 'offset -12345'),
        row('tcp', 'checksum', '0x9496', tcpChecksum(received), 'expected'),
        row('option', 'sack.relative', '{5793:7241}{2897:4345}', '{18138:19586}{15242:16690}', 'interference', 'not-translated'),
      ]);
    });

    it('without ISN context, shifted SACK edges are a modified option', () => {
      const received = rewrite(name, (p) => void (p.tcp.options[5] = sack(blocks(-12345))));
      expect(diffSegments(real(name), received)).toEqual([
        row('tcp', 'checksum', '0x9496', tcpChecksum(received), 'expected'),
        row('option', 'sack', render(0), render(-12345), 'interference', 'modified'),
      ]);
    });
  });
});

describe('diffSegments: payload', () => {
  const withPayload = (payload: Uint8Array): Uint8Array => rewrite(DATA, (p) => void (p.payload = payload));
  const original = decodePacket(real(DATA)).payload;

  it('truncated', () => {
    const received = withPayload(original.slice(0, 10));
    expect(diffSegments(real(DATA), received)).toEqual([
      row('ip', 'totalLength', '75', '62', 'expected'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
      row('payload', 'length', '23', '10', 'interference', 'truncated'),
    ]);
  });

  it('extended', () => {
    const received = withPayload(new Uint8Array([...original, ...new TextEncoder().encode('XYZ')]));
    expect(diffSegments(real(DATA), received)).toEqual([
      row('ip', 'totalLength', '75', '78', 'expected'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
      row('payload', 'length', '23', '26', 'interference', 'extended'),
    ]);
  });

  it('changed in the middle: the differing span, from its first to its last byte', () => {
    const changed = new TextEncoder().encode('mbprobe-REQUEST normal\n');
    const received = withPayload(changed);
    expect(diffSegments(real(DATA), received)).toEqual([
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
      row('payload', 'bytes', '@8: 72657175657374', '@8: 52455155455354', 'interference', 'modified'),
    ]);
  });

  it('changed and shortened: resized plus the changed bytes', () => {
    const shorter = original.slice(0, 20);
    shorter[0] = 0x4d; // 'm' -> 'M'
    const received = withPayload(shorter);
    expect(diffSegments(real(DATA), received)).toEqual([
      row('ip', 'totalLength', '75', '72', 'expected'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
      row('payload', 'length', '23', '20', 'interference', 'resized'),
      row('payload', 'bytes', '@0: 6d', '@0: 4d', 'interference', 'modified'),
    ]);
  });

  it('a long changed span in a full-size segment is previewed (32 bytes and an ellipsis)', () => {
    const name = 'v4-sack-data-c2s-fullsize';
    const payload = decodePacket(real(name)).payload;
    const changed = payload.slice();
    changed.fill(0, 100, 200);
    const received = rewrite(name, (p) => void (p.payload = changed));
    expect(diffSegments(real(name), received)).toEqual([
      row('tcp', 'checksum', '0xdc09', tcpChecksum(received), 'expected'),
      row('payload', 'bytes', `@100: ${toHex(payload.subarray(100, 132))}…`, `@100: ${'00'.repeat(32)}…`, 'interference', 'modified'),
    ]);
  });
});

describe('diffSegments: sequence numbers and the ISN', () => {
  const shifted = (by: number): Uint8Array => rewrite(DATA, (p) => void (p.tcp.seq = (p.tcp.seq + by) >>> 0));
  const context = { seq: { sent: DATA_ISN, received: DATA_ISN + 12345 } };

  it('a consistent ISN rewrite (+12345) is isn-offset, with no seq.relative row', () => {
    const received = shifted(12345);
    const rows = diffSegments(real(DATA), received, context);
    expect(rows).toEqual([
      row('tcp', 'seq', String(DATA_SEQ), String(DATA_SEQ + 12345), 'isn-offset', 'offset +12345'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
    ]);
    expect(interferenceRows(rows)).toEqual([]);
  });

  it('a shift that differs from the ISN offset is interference, with the relative numbers', () => {
    const received = shifted(12445);
    expect(diffSegments(real(DATA), received, context)).toEqual([
      row('tcp', 'seq', String(DATA_SEQ), String(DATA_SEQ + 12445), 'interference', 'offset +12445'),
      row('tcp', 'seq.relative', '1', '101', 'interference', 'offset +100'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
    ]);
  });

  it('a segment the rewriting box missed: the absolute number is equal, the relative one is not', () => {
    expect(diffSegments(real(DATA), real(DATA), context)).toEqual([
      row('tcp', 'seq.relative', '1', String((1 - 12345) >>> 0), 'interference', 'offset -12345'),
    ]);
  });

  it('without context any seq change is interference', () => {
    const received = shifted(12345);
    expect(diffSegments(real(DATA), received)).toEqual([
      row('tcp', 'seq', String(DATA_SEQ), String(DATA_SEQ + 12345), 'interference', 'offset +12345'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
    ]);
  });

  it('an ISN rewrite across 2^32 is still one offset', () => {
    const by = 0x100000000 - DATA_SEQ + 50; // the received seq wraps to 50
    const received = shifted(by);
    expect(decodePacket(received).tcp!.seq).toBe(50);
    const rows = diffSegments(real(DATA), received, { seq: { sent: DATA_ISN, received: 49 } });
    expect(rows).toEqual([
      row('tcp', 'seq', String(DATA_SEQ), '50', 'isn-offset', `offset ${(50 - DATA_SEQ) | 0}`),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
    ]);
  });

  it('the ack of the reverse direction is compared relative to the other side\'s ISN', () => {
    const name = 'v4-bulk-ack-s2c';
    const sent = decodePacket(real(name)).tcp!;
    const initiatorIsn = (sent.ack - 1449) >>> 0;
    const received = rewrite(name, (p) => void (p.tcp.ack = (p.tcp.ack - 777) >>> 0));
    expect(diffSegments(real(name), received, { ack: { sent: initiatorIsn, received: (initiatorIsn - 777) >>> 0 } })).toEqual([
      row('tcp', 'ack', String(sent.ack), String((sent.ack - 777) >>> 0), 'isn-offset', 'offset -777'),
      row('tcp', 'checksum', '0xdea6', tcpChecksum(received), 'expected'),
    ]);
  });
});

describe('diffSegments: IP header', () => {
  const ECT0 = 'v4-ecn-data-c2s-ect0';
  const tos = (from: string | Uint8Array, value: number): Uint8Array => rewrite(from, (p) => {
    if (p.ip.version === 4) p.ip.tos = value;
    else p.ip.trafficClass = value;
  });

  it('ECN bleached (ECT(0) -> Not-ECT) is interference', () => {
    const received = tos(ECT0, 0);
    expect(diffSegments(real(ECT0), received)).toEqual([
      row('ip', 'ecn', 'ECT(0)', 'Not-ECT', 'interference', 'bleached'),
      row('ip', 'checksum', ipChecksum(real(ECT0)), ipChecksum(received), 'expected'),
    ]);
  });

  it('ECN bleached on IPv6 (no IP checksum)', () => {
    expect(diffSegments(real('v6-ecn-data-c2s-ect0'), tos('v6-ecn-data-c2s-ect0', 0))).toEqual([
      row('ip', 'ecn', 'ECT(0)', 'Not-ECT', 'interference', 'bleached'),
    ]);
  });

  it('CE marked by a congested router is expected', () => {
    const received = tos(ECT0, 3);
    expect(diffSegments(real(ECT0), received)).toEqual([
      row('ip', 'ecn', 'ECT(0)', 'CE', 'expected', 'ce-marked'),
      row('ip', 'checksum', ipChecksum(real(ECT0)), ipChecksum(received), 'expected'),
    ]);
  });

  it('DSCP remarked and bleached', () => {
    const sent = tos(DATA, 46 << 2); // EF
    const remarked = tos(DATA, 10 << 2); // AF11
    expect(diffSegments(sent, remarked)).toEqual([
      row('ip', 'dscp', '46', '10', 'interference', 'remarked'),
      row('ip', 'checksum', ipChecksum(sent), ipChecksum(remarked), 'expected'),
    ]);
    const bleached = real(DATA);
    expect(diffSegments(sent, bleached)).toEqual([
      row('ip', 'dscp', '46', '0', 'interference', 'bleached'),
      row('ip', 'checksum', ipChecksum(sent), '0x4201', 'expected'),
    ]);
  });

  it('DF cleared', () => {
    const received = rewrite(DATA, (p) => void (p.ip.version === 4 && (p.ip.flags = 0)));
    expect(diffSegments(real(DATA), received)).toEqual([
      row('ip', 'flags', 'DF', 'none', 'interference'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
    ]);
  });

  it('IPv6 flow label rewritten is interference, hop limit expected', () => {
    const name = 'v6-normal-data-c2s';
    const received = rewrite(name, (p) => {
      if (p.ip.version !== 6) throw new Error('v6 fixture');
      p.ip.flowLabel = 0;
      p.ip.hopLimit = 60;
    });
    expect(diffSegments(real(name), received)).toEqual([
      row('ip', 'flowLabel', '0x1b44e', '0x00000', 'interference'),
      row('ip', 'hopLimit', '64', '60', 'expected'),
    ]);
  });

  it('a segment fragmented on the path is reported as such, without comparing a raw fragment to a payload', () => {
    const received = rewrite(DATA, (p) => void (p.ip.version === 4 && (p.ip.flags = 1)));
    expect(diffSegments(real(DATA), received)).toEqual([
      row('ip', 'flags', 'DF', 'MF', 'interference'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
      row('tcp', 'header', 'tcp', null, 'interference', 'fragmented'),
    ]);
  });
});

describe('diffSegments: TCP header fields', () => {
  it('window rewritten', () => {
    const received = rewrite(DATA, (p) => void (p.tcp.window = 16));
    expect(diffSegments(real(DATA), received)).toEqual([
      row('tcp', 'window', '63', '16', 'interference'),
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
    ]);
  });

  it('reserved bits cleared', () => {
    const name = 'v4-urg-data-c2s-urg';
    const sent = rewrite(name, (p) => void (p.tcp.reserved = 0b101));
    expect(diffSegments(sent, real(name))).toEqual([
      row('tcp', 'reserved', '5', '0', 'interference'),
      row('tcp', 'checksum', tcpChecksum(sent), '0xa31a', 'expected'),
    ]);
  });

  it('URG flag and urgent pointer cleared', () => {
    const name = 'v4-urg-data-c2s-urg';
    const received = rewrite(name, (p) => {
      p.tcp.flags &= ~0x20;
      p.tcp.urgentPointer = 0;
    });
    expect(diffSegments(real(name), received)).toEqual([
      row('tcp', 'flags', 'PU.', 'P.', 'interference', 'cleared URG'),
      row('tcp', 'checksum', '0xa31a', tcpChecksum(received), 'expected'),
      row('tcp', 'urgentPointer', '1', '0', 'interference'),
    ]);
  });

  it('ECN negotiation stripped from a SYN (ECE and CWR cleared)', () => {
    const name = 'v4-ecn-syn-ece-cwr';
    const received = rewrite(name, (p) => void (p.tcp.flags = 0x02));
    expect(diffSegments(real(name), received)).toEqual([
      row('tcp', 'flags', 'SEW', 'S', 'interference', 'cleared ECE,CWR'),
      row('tcp', 'checksum', tcpChecksum(real(name)), tcpChecksum(received), 'expected'),
    ]);
  });
});

describe('diffSegments: malformed received segments', () => {
  it('a received option with a bad length still diffs', () => {
    // The timestamps option's length byte corrupted to 30 (runs past the header); lengths not fixed.
    const received = rewrite(DATA, (p) => {
      const ts = p.tcp.options[2];
      p.tcp.options[2] = rawOption(ts.kind, ts.data, 30);
    }, { computeChecksums: true });
    expect(decodePacket(received).issues.map((i) => i.code)).toEqual(['bad-option-length']);
    expect(diffSegments(real(DATA), received)).toEqual([
      row('tcp', 'checksum', '0xdd34', tcpChecksum(received), 'expected'),
      row('option', 'timestamps', DATA_TS, 'bad-opt-8 len 30', 'interference', 'modified'),
    ]);
  });

  it('a data offset past the segment is interference, not an expected length change', () => {
    const received = rewrite(DATA, (p) => void (p.tcp.dataOffset = 15), { computeChecksums: true });
    const rows = diffSegments(real(DATA), received);
    expect(rows.find((r) => r.field === 'dataOffset')).toEqual(row('tcp', 'dataOffset', '8', '15', 'interference'));
  });

  it('an IP total length larger than the packet is interference', () => {
    const received = rewrite(DATA, (p) => void (p.ip.version === 4 && (p.ip.totalLength = 200)), { computeChecksums: true });
    expect(diffSegments(real(DATA), received)).toEqual([
      row('ip', 'totalLength', '75', '200', 'interference'),
      row('ip', 'checksum', '0x4201', ipChecksum(received), 'expected'),
    ]);
  });

  it('never throws on corrupted or cut received bytes', () => {
    for (const [name, bytes] of FIXTURES) {
      for (let at = 0; at < Math.min(bytes.length, 72); at++) {
        const corrupted = bytes.slice();
        corrupted[at] ^= 0xff;
        expect(() => diffSegments(bytes, corrupted), `${name} byte ${at}`).not.toThrow();
      }
      for (const length of [0, 1, 19, 20, 30, 40, 45, 60]) {
        expect(() => diffSegments(bytes, bytes.slice(0, length)), `${name} cut to ${length}`).not.toThrow();
        expect(() => diffSegments(bytes.slice(0, length), bytes), `${name} sent cut to ${length}`).not.toThrow();
      }
    }
  });
});
