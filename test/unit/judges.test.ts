import { observationsOf, recorded, recordings } from '../helpers/recordings.js';
import { describe, expect, it } from 'vitest';
import { encodePacket, asPacket } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { observe, type Observed } from '../../initiator/observed.js';
import type { TestObservations } from '../../initiator/test-case.js';
import { CATALOGUE } from '../../initiator/catalogue/index.js';
import { accepts, EXPECTED, expectedVerdict } from '../../lab/expectations.js';

/**
 * Judges replayed on observations recorded across the lab (scripts/record-observations.ts): every
 * segment both ends saw, as it was on the wire, and the verdict given when it was measured.
 */
const testCase = (name: string) => CATALOGUE.find((t) => t.name === name)!;
const load = observationsOf;
const find = recorded;
const judge = (obs: TestObservations) => testCase(obs.name).judge(obs);
const flags = (o: Observed): number => o.packet.tcp?.flags ?? 0;
const isSyn = (o: Observed): boolean => (flags(o) & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
const isSynAck = (o: Observed): boolean => (flags(o) & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK);

describe('judges on recorded lab observations', () => {
  it('has a recording of every test on every profile (and port, for profiles that act per port)', () => {
    const profiles = [...new Set(recordings.map((r) => r.profile))];
    expect(profiles.sort()).toEqual(Object.keys(EXPECTED).sort());
    for (const p of profiles) {
      for (const port of new Set(recordings.filter((r) => r.profile === p).map((r) => r.port))) {
        expect(recordings.filter((r) => r.profile === p && r.port === port).map((r) => r.name).sort()).toEqual(CATALOGUE.map((t) => t.name).sort());
      }
    }
  });

  it.each(recordings.map((r) => [r.profile, r.name, r.port, r.verdict, r] as const))('%s / %s on %s gives %s again, the profile\'s expected verdict', (profile, name, port, verdict, r) => {
    expect(judge(load(r)).verdict).toBe(verdict);
    // The recording itself must be right: the verdict the profile is built to cause.
    const expected = expectedVerdict(profile, name, port);
    expect(accepts(expected, verdict), `expected ${expected}`).toBe(true);
  });
});

describe('judges on ambiguous observations', () => {
  it('a retransmitted SYN (both copies answered) does not change the verdict', () => {
    const obs = find('strip-options', 'syn-unknown-option');
    const syn = obs.initiator.sent.find(isSyn)!;
    obs.initiator.sent.splice(1, 0, syn);
    obs.responder!.received.splice(1, 0, obs.responder!.received.find(isSyn)!);
    obs.responder!.sent.splice(1, 0, obs.responder!.sent.find(isSynAck)!);
    obs.initiator.received.splice(1, 0, obs.initiator.received.find(isSynAck)!);
    expect(judge(obs)).toMatchObject({ verdict: 'removed', detail: { option: 'kind-200', received: null } });
  });

  it('replies received out of order do not change the verdict', () => {
    for (const [profile, name, verdict] of [['clean', 'seq-rewrite', 'unchanged'], ['synproxy', 'seq-rewrite', 'rewritten-reverse'], ['nat', 'nat', 'address+port']]) {
      const obs = find(profile, name);
      obs.initiator.received.reverse();
      obs.responder!.received.reverse();
      expect(judge(obs).verdict).toBe(verdict);
    }
  });

  it('a duplicate ACK does not change the verdict', () => {
    const obs = find('clean', 'data-unknown-option');
    const ack = obs.initiator.received.find((o) => !isSynAck(o) && o.packet.payload.length === 0)!;
    obs.initiator.received.push(ack, ack);
    expect(judge(obs).verdict).toBe('passed');
  });

  it('without the responder\'s view every test is inconclusive, never "no interference"', () => {
    for (const test of CATALOGUE) {
      const obs = find('clean', test.name);
      expect(test.judge({ ...obs, responder: undefined }).verdict).toBe('inconclusive');
    }
  });

  it('a RST the responder never sent is a reset', () => {
    const obs = find('clean', 'syn-baseline');
    const synAck = obs.initiator.received.find(isSynAck)!;
    const packet = asPacket(synAck.packet)!;
    const forged = encodePacket({ ...packet, tcp: { ...packet.tcp!, flags: TcpFlag.RST | TcpFlag.ACK, options: [], dataOffset: undefined, checksum: undefined } }, { fixLengths: true });
    obs.initiator.received.unshift(observe(forged, synAck.atUs - 1));
    expect(judge(obs).verdict).toBe('reset');
  });

  it('tells dropped (the probe never arrived) from reply-dropped (the answer never did)', () => {
    const lost = find('clean', 'syn-unknown-option');
    lost.responder = { sent: [], received: [] };
    lost.initiator.received = [];
    expect(judge(lost)).toMatchObject({ verdict: 'dropped' });
    const lostReply = find('clean', 'syn-unknown-option');
    lostReply.initiator.received = [];
    expect(judge(lostReply).verdict).toBe('reply-dropped');
  });

  it('a SYN-ACK with the responder\'s timestamp but a shifted ISN is a rewrite, not a proxy', () => {
    const obs = find('clean', 'syn-baseline');
    const index = obs.initiator.received.findIndex(isSynAck);
    const packet = asPacket(obs.initiator.received[index].packet)!;
    const shifted = encodePacket({ ...packet, tcp: { ...packet.tcp!, seq: (packet.tcp!.seq + 99_999) >>> 0, checksum: undefined } });
    obs.initiator.received[index] = observe(shifted, obs.initiator.received[index].atUs);
    expect(judge(obs).verdict).toBe('ok');
    const seq = find('clean', 'seq-rewrite');
    const i2 = seq.initiator.received.findIndex(isSynAck);
    const p2 = asPacket(seq.initiator.received[i2].packet)!;
    seq.initiator.received[i2] = observe(encodePacket({ ...p2, tcp: { ...p2.tcp!, seq: (p2.tcp!.seq + 5) >>> 0, checksum: undefined } }), 0);
    expect(judge(seq)).toMatchObject({ verdict: 'rewritten-reverse', detail: { reverseOffset: 5 } });
  });
});
