import { recorded } from '../helpers/recordings.js';
import { describe, expect, it } from 'vitest';
import type { EncodeOptions } from '../../shared/wire/encode-options.js';
import { asPacket, encodePacket, type IpHeader, type Packet } from '../../shared/wire/packet.js';
import { TcpFlag, type TcpHeader } from '../../shared/wire/tcp.js';
import { fastOpen, mptcpCapable, mptcpDss, nop, OptionKind, rawOption, timestamps, windowScale, type TcpOption } from '../../shared/wire/tcp-options.js';
import { observe, type Observed } from '../../initiator/observed.js';
import type { TestCase, TestObservations } from '../../initiator/test-case.js';
import { dataMptcp } from '../../initiator/catalogue/data-mptcp.js';
import { dataTimestamp } from '../../initiator/catalogue/data-timestamp.js';
import { ipDscp } from '../../initiator/catalogue/ip-dscp.js';
import { ipEcn } from '../../initiator/catalogue/ip-ecn.js';
import { reservedBits } from '../../initiator/catalogue/reserved-bits.js';
import { synEcn } from '../../initiator/catalogue/syn-ecn.js';
import { synMptcp } from '../../initiator/catalogue/syn-mptcp.js';
import { synSackperm } from '../../initiator/catalogue/syn-sackperm.js';
import { synTfo } from '../../initiator/catalogue/syn-tfo.js';
import { synTimestamp } from '../../initiator/catalogue/syn-timestamp.js';
import { synWscale } from '../../initiator/catalogue/syn-wscale.js';
import { urgentPointer } from '../../initiator/catalogue/urgent-pointer.js';
import { windowRewrite } from '../../initiator/catalogue/window-rewrite.js';

/**
 * The judges of the option, flag and IP-header tests, on observations built from real recorded bytes:
 * each case starts from a test recorded across the lab (test/fixtures/observations.json), puts the
 * test's probe into it with the codec (on the initiator's sent copy and the responder's received copy,
 * so "no interference" is a real segment arriving as sent), then applies one middlebox change to what
 * arrived. Every rewritten segment is re-encoded with fixed lengths and checksums, as a box would emit it.
 */

/** A fresh copy of a recording's observations, named after the test that will judge them. */
function load(profile: string, name: string, as: TestCase): TestObservations {
  return { ...recorded(profile, name), name: as.name };
}

type TcpPacket = Packet & { ip: IpHeader; tcp: TcpHeader };
const CONSISTENT: EncodeOptions = { fixLengths: true, computeChecksums: true };

/** Decode, let `change` edit a copy, encode with consistent lengths and checksums. */
function rewrite(o: Observed, change: (p: TcpPacket) => void): Observed {
  const p = asPacket(o.packet)!;
  const copy = { ...p, ip: { ...p.ip }, tcp: { ...p.tcp!, options: [...(p.tcp!.options ?? [])] } } as TcpPacket;
  change(copy);
  return observe(encodePacket(copy, CONSISTENT), o.atUs);
}

/** Replaces every segment of `list` matching `match` by its rewritten copy; returns how many. */
function edit(list: Observed[], match: (o: Observed) => boolean, change: (p: TcpPacket) => void): number {
  let count = 0;
  list.forEach((o, i) => {
    if (match(o)) {
      list[i] = rewrite(o, change);
      count++;
    }
  });
  return count;
}

/** The same change on both copies of the initiator's segments (sent, and received by the responder). */
function forward(obs: TestObservations, match: (o: Observed) => boolean, change: (p: TcpPacket) => void): void {
  expect(edit(obs.initiator.sent, match, change)).toBeGreaterThan(0);
  expect(edit(obs.responder!.received, match, change)).toBeGreaterThan(0);
}
/** The same change on both copies of the responder's segments. */
function reverse(obs: TestObservations, match: (o: Observed) => boolean, change: (p: TcpPacket) => void): void {
  expect(edit(obs.responder!.sent, match, change)).toBeGreaterThan(0);
  expect(edit(obs.initiator.received, match, change)).toBeGreaterThan(0);
}
const arrived = (obs: TestObservations, match: (o: Observed) => boolean, change: (p: TcpPacket) => void): void => {
  expect(edit(obs.responder!.received, match, change)).toBeGreaterThan(0);
};
const seen = (obs: TestObservations, match: (o: Observed) => boolean, change: (p: TcpPacket) => void): void => {
  expect(edit(obs.initiator.received, match, change)).toBeGreaterThan(0);
};

const flags = (o: Observed): number => o.packet.tcp?.flags ?? 0;
const isSyn = (o: Observed): boolean => (flags(o) & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
const isSynAck = (o: Observed): boolean => (flags(o) & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK);
const isData = (o: Observed): boolean => o.packet.payload.length > 0 && !(flags(o) & TcpFlag.SYN);
const isPureAck = (o: Observed): boolean => flags(o) === TcpFlag.ACK && o.packet.payload.length === 0;

const withOptions = (p: TcpPacket, options: TcpOption[]): void => {
  p.tcp.options = options;
  p.tcp.optionsTail = undefined;
};
const setOptions = (options: TcpOption[]) => (p: TcpPacket): void => withOptions(p, options);
/** What TCPOPTSTRIP does: the option's bytes become NOPs, the header keeps its length. */
const nopOut = (kind: number) => (p: TcpPacket): void =>
  withOptions(p, p.tcp.options!.flatMap((o) => (o.kind === kind ? Array.from({ length: 2 + o.data.length }, nop) : [o])));
const appendOption = (option: TcpOption) => (p: TcpPacket): void => withOptions(p, [...p.tcp.options!, option]);
const replaceOption = (kind: number, option: TcpOption) => (p: TcpPacket): void => withOptions(p, p.tcp.options!.map((o) => (o.kind === kind ? option : o)));
const setTos = (tos: number) => (p: TcpPacket): void => {
  if (p.ip.version === 4) p.ip.tos = tos;
  else p.ip.trafficClass = tos;
};

/** A copy of a segment sent again (another IP ID, as a retransmission by the probe has). */
const retransmission = (o: Observed): Observed => rewrite(o, (p) => {
  if (p.ip.version === 4) p.ip.id = (p.ip.id + 1) & 0xffff;
});
const insertAfter = (list: Observed[], match: (o: Observed) => boolean, ...items: Observed[]): void => {
  const i = list.findIndex(match);
  expect(i).toBeGreaterThanOrEqual(0);
  list.splice(i + 1, 0, ...items);
};

const SHARED = ['dropped', 'reply-dropped', 'reset', 'inconclusive'];

describe('the tests are well-formed', () => {
  const all = [synWscale, synSackperm, synTimestamp, synMptcp, synTfo, synEcn, windowRewrite, dataMptcp, dataTimestamp, ipEcn, ipDscp, urgentPointer, reservedBits];
  it('have the catalogue\'s names and verdicts', () => {
    expect(Object.fromEntries(all.map((t) => [t.name, t.verdicts]))).toEqual({
      'syn-wscale': ['passed', 'modified', 'removed'],
      'syn-sackperm': ['passed', 'modified', 'removed'],
      'syn-timestamp': ['passed', 'modified', 'removed'],
      'syn-mptcp': ['passed', 'modified', 'removed'],
      'syn-tfo': ['passed', 'modified', 'removed'],
      'syn-ecn': ['passed', 'cleared'],
      'window-rewrite': ['unchanged', 'rewritten'],
      'data-mptcp': ['passed', 'modified', 'removed'],
      'data-timestamp': ['passed', 'modified', 'removed'],
      'ip-ecn': ['passed', 'bleached', 'changed'],
      'ip-dscp': ['passed', 'bleached', 'remarked'],
      'urgent-pointer': ['passed', 'cleared'],
      'reserved-bits': ['passed', 'cleared'],
    });
  });

  it.each(all.map((t) => [t.name, t] as const))('%s: without the responder\'s view, inconclusive', (_n, test) => {
    const obs = load('clean', 'seq-rewrite', test);
    expect(test.judge({ ...obs, responder: undefined }).verdict).toBe('inconclusive');
  });

  it.each(all.map((t) => [t.name, t] as const))('%s: on a clean recording of another test, never its first verdict unless the probe is in it', (_n, test) => {
    // A plain handshake + data: the option/flag/mark the test looks for was never sent.
    const verdict = test.judge(load('clean', 'seq-rewrite', test)).verdict;
    const probeIsPlain = ['syn-wscale', 'syn-sackperm', 'syn-timestamp', 'window-rewrite'].includes(test.name);
    if (probeIsPlain) expect(verdict).toBe(test.verdicts[0]);
    else expect(verdict).not.toBe(test.verdicts[0]);
    expect([...test.verdicts, ...SHARED]).toContain(verdict);
  });
});

// ---- SYN options ----

describe('syn-wscale, syn-sackperm, syn-timestamp', () => {
  it('pass on the clean path (the recorded SYN carries all three, as Linux sends them)', () => {
    for (const test of [synWscale, synSackperm, synTimestamp]) expect(test.judge(load('clean', 'syn-baseline', test)).verdict).toBe('passed');
  });

  it('are removed when a box NOPs the option out', () => {
    for (const [test, kind] of [[synWscale, OptionKind.WINDOW_SCALE], [synSackperm, OptionKind.SACK_PERMITTED], [synTimestamp, OptionKind.TIMESTAMPS]] as const) {
      const obs = load('clean', 'syn-baseline', test);
      arrived(obs, isSyn, nopOut(kind));
      expect(test.judge(obs)).toMatchObject({ verdict: 'removed', detail: { received: null, changes: [{ change: 'replaced-by-nop' }] } });
    }
  });

  it('syn-wscale: a split-connection proxy announces its own scale (recorded)', () => {
    expect(synWscale.judge(load('split-proxy', 'syn-baseline', synWscale))).toMatchObject({ verdict: 'modified', detail: { sent: 'wscale 7', received: 'wscale 10' } });
  });

  it('syn-wscale: a box clamping the scale', () => {
    const obs = load('clean', 'syn-baseline', synWscale);
    arrived(obs, isSyn, replaceOption(OptionKind.WINDOW_SCALE, windowScale(2)));
    expect(synWscale.judge(obs)).toMatchObject({ verdict: 'modified', detail: { option: 'window-scale', sent: 'wscale 7', received: 'wscale 2' } });
  });

  it('syn-sackperm: a SACK-permitted option given a byte of data (length 3) is modified, not passed', () => {
    const obs = load('clean', 'syn-baseline', synSackperm);
    arrived(obs, isSyn, replaceOption(OptionKind.SACK_PERMITTED, rawOption(OptionKind.SACK_PERMITTED, Uint8Array.of(0))));
    expect(synSackperm.judge(obs)).toMatchObject({ verdict: 'modified', detail: { option: 'sack-permitted', sent: 'sackOK' } });
  });

  it('syn-timestamp: a SYN proxy replays the SYN with timestamps of its own (recorded)', () => {
    const judgement = synTimestamp.judge(load('synproxy', 'syn-baseline', synTimestamp));
    // SYNPROXY's SYN to the server carries its own timestamp value and a non-zero echo.
    expect(judgement).toMatchObject({ verdict: 'modified', detail: { option: 'timestamps', sent: expect.stringMatching(/^TS val \d+ ecr 0$/), received: expect.stringMatching(/^TS val \d+ ecr [1-9]\d*$/) } });
  });

  it('syn-timestamp: a retransmitted SYN, both copies answered, keeps the verdict', () => {
    const obs = load('clean', 'syn-baseline', synTimestamp);
    arrived(obs, isSyn, nopOut(OptionKind.TIMESTAMPS));
    insertAfter(obs.initiator.sent, isSyn, retransmission(obs.initiator.sent.find(isSyn)!));
    insertAfter(obs.responder!.received, isSyn, obs.responder!.received.find(isSyn)!);
    insertAfter(obs.responder!.sent, isSynAck, obs.responder!.sent.find(isSynAck)!);
    expect(synTimestamp.judge(obs).verdict).toBe('removed');
  });
});

describe('syn-mptcp', () => {
  const withMpCapable = (): TestObservations => {
    const obs = load('clean', 'syn-baseline', synMptcp);
    forward(obs, isSyn, appendOption(mptcpCapable()));
    return obs;
  };

  it('passes when MP_CAPABLE arrives as sent', () => {
    expect(synMptcp.judge(withMpCapable())).toMatchObject({ verdict: 'passed', detail: { option: 'mptcp', sent: 'mptcp capable v1', received: 'mptcp capable v1', changes: [] } });
  });

  it('is removed when the option is stripped (NOPed or cut out)', () => {
    const nopped = withMpCapable();
    arrived(nopped, isSyn, nopOut(OptionKind.MPTCP));
    expect(synMptcp.judge(nopped)).toMatchObject({ verdict: 'removed', detail: { received: null, changes: [{ field: 'option.mptcp', change: 'replaced-by-nop' }] } });
    const cut = withMpCapable();
    arrived(cut, isSyn, (p) => withOptions(p, p.tcp.options!.filter((o) => o.kind !== OptionKind.MPTCP)));
    expect(synMptcp.judge(cut)).toMatchObject({ verdict: 'removed', detail: { changes: [{ field: 'option.mptcp', change: 'removed' }] } });
  });

  it('is modified when a box downgrades the version or changes the flags', () => {
    const obs = withMpCapable();
    arrived(obs, isSyn, replaceOption(OptionKind.MPTCP, mptcpCapable({ version: 0, flags: 0x01 })));
    expect(synMptcp.judge(obs)).toMatchObject({ verdict: 'modified', detail: { sent: 'mptcp capable v1', received: 'mptcp capable v0' } });
  });

  it('replies received out of order keep the verdict', () => {
    const obs = withMpCapable();
    arrived(obs, isSyn, nopOut(OptionKind.MPTCP));
    obs.initiator.received.reverse();
    obs.responder!.received.reverse();
    expect(synMptcp.judge(obs).verdict).toBe('removed');
  });
});

describe('syn-tfo', () => {
  const withCookieRequest = (): TestObservations => {
    const obs = load('clean', 'syn-baseline', synTfo);
    forward(obs, isSyn, appendOption(fastOpen()));
    return obs;
  };

  it('passes when the cookie request arrives', () => {
    expect(synTfo.judge(withCookieRequest())).toMatchObject({ verdict: 'passed', detail: { option: 'tfo', sent: 'tfo cookiereq', received: 'tfo cookiereq' } });
  });

  it('is removed when stripped, modified when a cookie is filled in', () => {
    const stripped = withCookieRequest();
    arrived(stripped, isSyn, nopOut(OptionKind.TFO));
    expect(synTfo.judge(stripped).verdict).toBe('removed');
    const filled = withCookieRequest();
    arrived(filled, isSyn, replaceOption(OptionKind.TFO, fastOpen(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8))));
    expect(synTfo.judge(filled)).toMatchObject({ verdict: 'modified', detail: { received: 'tfo cookie 0102030405060708' } });
  });

  it('a retransmitted SYN that only arrived once keeps the verdict', () => {
    const obs = withCookieRequest();
    insertAfter(obs.initiator.sent, isSyn, retransmission(obs.initiator.sent.find(isSyn)!));
    expect(synTfo.judge(obs).verdict).toBe('passed');
  });
});

// ---- SYN flags ----

describe('syn-ecn', () => {
  const ecnSetup = (): TestObservations => {
    const obs = load('clean', 'syn-baseline', synEcn);
    forward(obs, isSyn, (p) => void (p.tcp.flags |= TcpFlag.ECE | TcpFlag.CWR));
    reverse(obs, isSynAck, (p) => void (p.tcp.flags |= TcpFlag.ECE));
    return obs;
  };

  it('passes when ECE and CWR arrive and the SYN-ACK\'s ECE comes back', () => {
    expect(synEcn.judge(ecnSetup())).toMatchObject({ verdict: 'passed', detail: { syn: { sent: ['ECE', 'CWR'], received: ['ECE', 'CWR'] }, synAck: { sent: ['ECE'], received: ['ECE'] }, cleared: [] } });
  });

  it('is cleared when the SYN loses a bit (the responder then answers without ECE)', () => {
    const obs = ecnSetup();
    arrived(obs, isSyn, (p) => void (p.tcp.flags &= ~TcpFlag.CWR));
    reverse(obs, isSynAck, (p) => void (p.tcp.flags &= ~TcpFlag.ECE));
    expect(synEcn.judge(obs)).toMatchObject({ verdict: 'cleared', detail: { syn: { received: ['ECE'] }, cleared: ['syn.CWR'] } });
  });

  it('is cleared when the SYN-ACK\'s ECE is cleared on the way back', () => {
    const obs = ecnSetup();
    seen(obs, isSynAck, (p) => void (p.tcp.flags &= ~TcpFlag.ECE));
    expect(synEcn.judge(obs)).toMatchObject({ verdict: 'cleared', detail: { synAck: { sent: ['ECE'], received: [] }, cleared: ['synAck.ECE'] } });
  });

  it('a SYN that was never sent with ECE and CWR says nothing', () => {
    expect(synEcn.judge(load('clean', 'syn-baseline', synEcn)).verdict).toBe('inconclusive');
  });

  it('a retransmitted SYN, both copies answered, keeps the verdict', () => {
    const obs = ecnSetup();
    arrived(obs, isSyn, (p) => void (p.tcp.flags &= ~(TcpFlag.ECE | TcpFlag.CWR)));
    insertAfter(obs.initiator.sent, isSyn, retransmission(obs.initiator.sent.find(isSyn)!));
    insertAfter(obs.responder!.received, isSyn, obs.responder!.received.find(isSyn)!);
    expect(synEcn.judge(obs)).toMatchObject({ verdict: 'cleared', detail: { cleared: ['syn.ECE', 'syn.CWR'] } });
  });
});

// ---- Windows ----

describe('window-rewrite', () => {
  it('unchanged on the clean path (recorded)', () => {
    expect(windowRewrite.judge(load('clean', 'seq-rewrite', windowRewrite))).toMatchObject({
      verdict: 'unchanged',
      detail: {
        rewritten: [],
        windows: { 'forward.syn': { sent: 64240, received: 64240 }, 'forward.data': { sent: 64240, received: 64240 }, 'reverse.synAck': { sent: 65535, received: 65535 }, 'reverse.ack': { sent: 65535, received: 65535 } },
      },
    });
  });

  it('rewritten behind a split-connection proxy: its own windows both ways (recorded)', () => {
    expect(windowRewrite.judge(load('split-proxy', 'seq-rewrite', windowRewrite))).toMatchObject({
      verdict: 'rewritten',
      detail: {
        rewritten: ['forward.data', 'reverse.synAck', 'reverse.ack'],
        windows: { 'forward.data': { sent: 64240, received: 63 }, 'reverse.synAck': { sent: 65535, received: 65160 }, 'reverse.ack': { sent: 65535, received: 64 } },
        windowScale: { syn: { sent: 7, received: 10 }, synAck: { sent: 7, received: 10 } },
      },
    });
  });

  it('rewritten behind a SYN proxy: its SYN-ACK has window 0 (recorded)', () => {
    expect(windowRewrite.judge(load('synproxy', 'seq-rewrite', windowRewrite))).toMatchObject({ verdict: 'rewritten', detail: { rewritten: ['reverse.synAck'], windows: { 'reverse.synAck': { sent: 65535, received: 0 } } } });
  });

  it('rewritten when a box clamps the data segment\'s window', () => {
    const obs = load('clean', 'seq-rewrite', windowRewrite);
    arrived(obs, isData, (p) => void (p.tcp.window = 1024));
    expect(windowRewrite.judge(obs)).toMatchObject({ verdict: 'rewritten', detail: { rewritten: ['forward.data'], windows: { 'forward.data': { sent: 64240, received: 1024 } } } });
  });

  it('duplicate ACKs and reordered arrivals keep the verdict', () => {
    const obs = load('clean', 'seq-rewrite', windowRewrite);
    const ack = obs.initiator.received.find(isPureAck)!;
    obs.initiator.received.push(ack, ack);
    obs.initiator.received.reverse();
    obs.responder!.received.reverse();
    expect(windowRewrite.judge(obs).verdict).toBe('unchanged');
  });

  it('without the ACK of the data (only the FIN-ACK arrived), inconclusive rather than unchanged', () => {
    const obs = load('clean', 'seq-rewrite', windowRewrite);
    obs.initiator.received = obs.initiator.received.filter((o) => !isPureAck(o));
    expect(windowRewrite.judge(obs)).toMatchObject({ verdict: 'inconclusive', detail: { missing: ['reverse.ack'] } });
  });
});

// ---- Data-phase options ----

const DSS = mptcpDss({ dataAck: 1, dataSequence: 1, subflowSequence: 1, dataLength: 100 });

describe('data-mptcp', () => {
  /** The clean data-unknown-option recording with its option kind 200 replaced by a DSS option, on both sides. */
  const withDss = (profile = 'clean'): TestObservations => {
    const obs = load(profile, 'data-unknown-option', dataMptcp);
    expect(edit(obs.initiator.sent, isData, setOptions([DSS]))).toBe(1);
    if (profile === 'clean') arrived(obs, isData, setOptions([DSS]));
    return obs;
  };

  it('passes when the DSS option arrives as sent', () => {
    expect(dataMptcp.judge(withDss())).toMatchObject({ verdict: 'passed', detail: { relativeSeq: 1, option: 'mptcp', sent: 'mptcp dss ack 1 seq 1 subseq 1 len 100', changes: [] } });
  });

  it('is removed when a box NOPs it out, or a split-connection proxy doesn\'t forward it (recorded)', () => {
    const obs = withDss();
    arrived(obs, isData, nopOut(OptionKind.MPTCP));
    expect(dataMptcp.judge(obs)).toMatchObject({ verdict: 'removed', detail: { received: null, changes: [{ field: 'option.mptcp', change: 'replaced-by-nop' }] } });
    expect(dataMptcp.judge(withDss('split-proxy'))).toMatchObject({ verdict: 'removed', detail: { relativeSeq: 1, received: null } });
  });

  it('is modified when the data ACK is rewritten', () => {
    const obs = withDss();
    arrived(obs, isData, setOptions([mptcpDss({ dataAck: 99, dataSequence: 1, subflowSequence: 1, dataLength: 100 })]));
    expect(dataMptcp.judge(obs)).toMatchObject({ verdict: 'modified', detail: { received: 'mptcp dss ack 99 seq 1 subseq 1 len 100' } });
  });

  it('a retransmitted probe and a duplicate ACK keep the verdict', () => {
    const obs = withDss();
    arrived(obs, isData, nopOut(OptionKind.MPTCP));
    const probe = obs.initiator.sent.find(isData)!;
    insertAfter(obs.initiator.sent, isData, retransmission(probe));
    insertAfter(obs.responder!.received, isData, obs.responder!.received.find(isData)!);
    const ack = obs.initiator.received.find(isPureAck)!;
    obs.initiator.received.push(ack);
    expect(dataMptcp.judge(obs)).toMatchObject({ verdict: 'removed', detail: { relativeSeq: 1 } });
  });

  it('a probe re-segmented on the path is judged on the piece carrying its first byte', () => {
    const obs = withDss();
    const index = obs.responder!.received.findIndex(isData);
    const whole = obs.responder!.received[index];
    // A resegmenting proxy's two pieces, neither with the DSS option; the second listed first (reordered).
    const piece = (from: number, to: number): Observed => rewrite(whole, (p) => {
      p.tcp.seq = (p.tcp.seq + from) >>> 0;
      p.payload = p.payload.slice(from, to);
      withOptions(p, []);
    });
    obs.responder!.received.splice(index, 1, piece(50, 100), piece(0, 50));
    expect(dataMptcp.judge(obs)).toMatchObject({ verdict: 'removed', detail: { relativeSeq: 1, received: null } });
  });

  it('dropped when no data segment arrived', () => {
    const obs = withDss();
    obs.responder!.received = obs.responder!.received.filter((o) => !isData(o));
    expect(dataMptcp.judge(obs).verdict).toBe('dropped');
  });
});

describe('data-timestamp', () => {
  const TS1 = timestamps(4238461600, 4238461540);
  const TS2 = timestamps(4238461605, 4238461601);
  /**
   * The clean data-unknown-option recording as data-timestamp sends it: its data segment with [nop, nop,
   * TS1] instead of option 200, then a second data segment 100 bytes later with TS2, both on both sides,
   * and the responder's ACK of the second one.
   */
  const twoSegments = (): TestObservations => {
    const obs = load('clean', 'data-unknown-option', dataTimestamp);
    forward(obs, isData, setOptions([nop(), nop(), TS1]));
    const second = (o: Observed): Observed => rewrite(o, (p) => {
      p.tcp.seq = (p.tcp.seq + 100) >>> 0;
      withOptions(p, [nop(), nop(), TS2]);
    });
    insertAfter(obs.initiator.sent, isData, second(obs.initiator.sent.find(isData)!));
    insertAfter(obs.responder!.received, isData, second(obs.responder!.received.find(isData)!));
    const ackOfSecond = (o: Observed): Observed => rewrite(o, (p) => void (p.tcp.ack = (p.tcp.ack + 100) >>> 0));
    insertAfter(obs.responder!.sent, isPureAck, ackOfSecond(obs.responder!.sent.find(isPureAck)!));
    insertAfter(obs.initiator.received, isPureAck, ackOfSecond(obs.initiator.received.find(isPureAck)!));
    return obs;
  };
  const secondData = (o: Observed, obs: TestObservations): boolean => isData(o) && o === obs.responder!.received.filter(isData)[1];

  it('passes when both segments\' timestamps arrive as sent', () => {
    expect(dataTimestamp.judge(twoSegments())).toMatchObject({
      verdict: 'passed',
      detail: { option: 'timestamps', synAckTimestamps: true, segments: [{ relativeSeq: 1, verdict: 'passed', received: 'TS val 4238461600 ecr 4238461540' }, { relativeSeq: 101, verdict: 'passed', received: 'TS val 4238461605 ecr 4238461601' }] },
    });
  });

  it('is modified when a box re-bases the timestamps (the offset is in the detail)', () => {
    const obs = twoSegments();
    const shift = (p: TcpPacket): void => {
      const ts = p.tcp.options!.find((o) => o.kind === OptionKind.TIMESTAMPS)!;
      const view = new DataView(ts.data.buffer, ts.data.byteOffset);
      replaceOption(OptionKind.TIMESTAMPS, timestamps((view.getUint32(0) + 1000) >>> 0, view.getUint32(4)))(p);
    };
    arrived(obs, isData, shift);
    expect(dataTimestamp.judge(obs)).toMatchObject({
      verdict: 'modified',
      detail: { segments: [{ relativeSeq: 1, verdict: 'modified', valueOffset: 1000, echoOffset: 0 }, { relativeSeq: 101, verdict: 'modified', valueOffset: 1000 }] },
    });
  });

  it('is removed when one segment loses its timestamps, even if the other keeps them', () => {
    const obs = twoSegments();
    arrived(obs, (o) => secondData(o, obs), nopOut(OptionKind.TIMESTAMPS));
    expect(dataTimestamp.judge(obs)).toMatchObject({ verdict: 'removed', detail: { segments: [{ verdict: 'passed' }, { relativeSeq: 101, verdict: 'removed', received: null }] } });
  });

  it('one segment passing is not enough evidence: inconclusive', () => {
    const obs = load('clean', 'data-unknown-option', dataTimestamp);
    forward(obs, isData, setOptions([nop(), nop(), TS1]));
    expect(dataTimestamp.judge(obs)).toMatchObject({ verdict: 'inconclusive' });
  });

  it('a second segment that never arrived makes it dropped, not passed', () => {
    const obs = twoSegments();
    const gone = obs.responder!.received.filter(isData)[1];
    obs.responder!.received = obs.responder!.received.filter((o) => o !== gone);
    expect(dataTimestamp.judge(obs)).toMatchObject({ verdict: 'dropped', detail: { probesSent: 2, probesReceived: 1, missingRelativeSeqs: [101] } });
  });

  it('reordered arrival, a retransmitted segment and a duplicate ACK keep each segment paired with its own copy', () => {
    const obs = twoSegments();
    arrived(obs, (o) => secondData(o, obs), nopOut(OptionKind.TIMESTAMPS));
    const secondSent = obs.initiator.sent.filter(isData)[1];
    obs.initiator.sent.push(retransmission(secondSent));
    obs.responder!.received.reverse();
    obs.initiator.received.push(obs.initiator.received.find(isPureAck)!);
    expect(dataTimestamp.judge(obs)).toMatchObject({ verdict: 'removed', detail: { segments: [{ relativeSeq: 1, verdict: 'passed' }, { relativeSeq: 101, verdict: 'removed' }] } });
  });
});

// ---- IP header marks ----

describe('ip-ecn', () => {
  const ect0 = (): TestObservations => {
    const obs = load('clean', 'seq-rewrite', ipEcn);
    forward(obs, isData, setTos(0x02));
    return obs;
  };

  it('passes when ECT(0) arrives', () => {
    expect(ipEcn.judge(ect0())).toMatchObject({ verdict: 'passed', detail: { sent: 'ECT(0)', received: 'ECT(0)', change: null } });
  });

  it('bleached when it arrives Not-ECT, changed for ECT(1) and CE', () => {
    for (const [tos, verdict, received, change] of [[0x00, 'bleached', 'Not-ECT', 'bleached'], [0x01, 'changed', 'ECT(1)', 'modified'], [0x03, 'changed', 'CE', 'ce-marked']] as const) {
      const obs = ect0();
      arrived(obs, isData, setTos(tos));
      expect(ipEcn.judge(obs)).toMatchObject({ verdict, detail: { sent: 'ECT(0)', received, change } });
    }
  });

  it('a retransmitted probe, both copies bleached, and reordered replies keep the verdict', () => {
    const obs = ect0();
    arrived(obs, isData, setTos(0));
    insertAfter(obs.initiator.sent, isData, retransmission(obs.initiator.sent.find(isData)!));
    insertAfter(obs.responder!.received, isData, obs.responder!.received.find(isData)!);
    obs.initiator.received.reverse();
    obs.responder!.received.reverse();
    expect(ipEcn.judge(obs).verdict).toBe('bleached');
  });

  it('a data segment not sent with ECT(0) says nothing', () => {
    expect(ipEcn.judge(load('clean', 'seq-rewrite', ipEcn)).verdict).toBe('inconclusive');
  });
});

describe('ip-dscp', () => {
  const ef = (): TestObservations => {
    const obs = load('clean', 'seq-rewrite', ipDscp);
    forward(obs, isSyn, setTos(0xb8));
    forward(obs, isData, setTos(0xb8));
    return obs;
  };

  it('passes when EF arrives; the SYN\'s marks are in the detail', () => {
    expect(ipDscp.judge(ef())).toMatchObject({ verdict: 'passed', detail: { sent: 46, received: 46, sentName: 'EF', syn: { sent: { value: 46, name: 'EF' }, received: { value: 46 } } } });
  });

  it('bleached when it arrives as 0, remarked as another class', () => {
    const bleached = ef();
    arrived(bleached, isData, setTos(0));
    expect(ipDscp.judge(bleached)).toMatchObject({ verdict: 'bleached', detail: { received: 0, receivedName: 'CS0' } });
    const remarked = ef();
    arrived(remarked, isData, setTos(10 << 2));
    arrived(remarked, isSyn, setTos(10 << 2));
    expect(ipDscp.judge(remarked)).toMatchObject({ verdict: 'remarked', detail: { received: 10, receivedName: 'AF11', syn: { received: { value: 10, name: 'AF11' } } } });
  });

  it('judges the data segment: a SYN bleached alone is only in the detail', () => {
    const obs = ef();
    arrived(obs, isSyn, setTos(0));
    expect(ipDscp.judge(obs)).toMatchObject({ verdict: 'passed', detail: { syn: { sent: { value: 46 }, received: { value: 0 } } } });
  });

  it('a marked SYN that never arrives is dropped', () => {
    const obs = ef();
    obs.responder = { sent: [], received: [] };
    obs.initiator.received = [];
    expect(ipDscp.judge(obs).verdict).toBe('dropped');
  });

  it('reordered arrival and a duplicate ACK keep the verdict', () => {
    const obs = ef();
    arrived(obs, isData, setTos(0x28));
    obs.responder!.received.reverse();
    obs.initiator.received.push(obs.initiator.received.find(isPureAck)!);
    expect(ipDscp.judge(obs).verdict).toBe('remarked');
  });
});

// ---- Header bits ----

describe('urgent-pointer', () => {
  const urgent = (profile = 'clean'): TestObservations => {
    const obs = load(profile, 'seq-rewrite', urgentPointer);
    const mark = (p: TcpPacket): void => {
      p.tcp.flags |= TcpFlag.URG;
      p.tcp.urgentPointer = 10;
    };
    expect(edit(obs.initiator.sent, isData, mark)).toBe(1);
    if (profile === 'clean') arrived(obs, isData, mark);
    return obs;
  };

  it('passes when URG and the pointer arrive', () => {
    expect(urgentPointer.judge(urgent())).toMatchObject({ verdict: 'passed', detail: { sent: { urg: true, urgentPointer: 10 }, received: { urg: true, urgentPointer: 10 }, changes: [] } });
  });

  it('cleared when the flag or the pointer is gone, and says which', () => {
    const flag = urgent();
    arrived(flag, isData, (p) => void (p.tcp.flags &= ~TcpFlag.URG));
    expect(urgentPointer.judge(flag)).toMatchObject({ verdict: 'cleared', detail: { received: { urg: false, urgentPointer: 10 }, changes: ['URG cleared'] } });
    const pointer = urgent();
    arrived(pointer, isData, (p) => void (p.tcp.urgentPointer = 0));
    expect(urgentPointer.judge(pointer)).toMatchObject({ verdict: 'cleared', detail: { received: { urg: true, urgentPointer: 0 }, changes: ['urgent pointer cleared'] } });
  });

  it('cleared behind a split-connection proxy, which sends its own segments (recorded)', () => {
    expect(urgentPointer.judge(urgent('split-proxy'))).toMatchObject({ verdict: 'cleared', detail: { changes: ['URG cleared', 'urgent pointer cleared'] } });
  });

  it('a retransmitted probe and a duplicate ACK keep the verdict', () => {
    const obs = urgent();
    insertAfter(obs.initiator.sent, isData, retransmission(obs.initiator.sent.find(isData)!));
    obs.initiator.received.push(obs.initiator.received.find(isPureAck)!);
    expect(urgentPointer.judge(obs).verdict).toBe('passed');
  });
});

describe('reserved-bits', () => {
  const ALL = ['reserved-0x800', 'reserved-0x400', 'reserved-0x200', 'AE'];
  const withBits = (): TestObservations => {
    const obs = load('clean', 'seq-rewrite', reservedBits);
    forward(obs, isData, (p) => {
      p.tcp.reserved = 0b111;
      p.tcp.flags |= TcpFlag.AE;
    });
    return obs;
  };

  it('passes when all four bits arrive', () => {
    expect(reservedBits.judge(withBits())).toMatchObject({ verdict: 'passed', detail: { sent: ALL, received: ALL, cleared: [] } });
  });

  it('cleared when a normaliser zeroes the reserved bits, or AE alone', () => {
    const reserved = withBits();
    arrived(reserved, isData, (p) => void (p.tcp.reserved = 0));
    expect(reservedBits.judge(reserved)).toMatchObject({ verdict: 'cleared', detail: { received: ['AE'], cleared: ['reserved-0x800', 'reserved-0x400', 'reserved-0x200'] } });
    const ae = withBits();
    arrived(ae, isData, (p) => void (p.tcp.flags &= ~TcpFlag.AE));
    expect(reservedBits.judge(ae)).toMatchObject({ verdict: 'cleared', detail: { cleared: ['AE'] } });
  });

  it('reordered arrival keeps the verdict', () => {
    const obs = withBits();
    arrived(obs, isData, (p) => void (p.tcp.reserved = 0b100));
    obs.responder!.received.reverse();
    obs.initiator.received.reverse();
    expect(reservedBits.judge(obs)).toMatchObject({ verdict: 'cleared', detail: { cleared: ['reserved-0x400', 'reserved-0x200'] } });
  });
});
