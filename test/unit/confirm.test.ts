import { describe, expect, it } from 'vitest';
import { decide, MAX_TEST_RUNS } from '../../initiator/confirm.js';
import { isSyn, observe } from '../../initiator/observed.js';
import { headlessRecord } from '../../initiator/runner.js';
import { fromHex } from '../../shared/wire/bytes.js';
import { observationsOf, recorded, recordings } from '../helpers/recordings.js';

const run = (verdict: string, ...lossSigns: string[]) => ({ verdict, lossSigns });
const LOST = '1 sent by the initiator never seen by the responder';

describe('when a verdict is published (initiator/confirm.ts)', () => {
  it('publishes no interference at once, whatever the path lost', () => {
    expect(decide({ clean: 'passed' }, [run('passed', LOST)])).toEqual({ final: true, verdict: 'passed' });
    expect(decide({ clean: 'passed' }, [run('removed', LOST), run('passed')])).toEqual({ final: true, verdict: 'passed' });
  });

  it('publishes interference seen on a run without any sign of loss', () => {
    expect(decide({ clean: 'passed' }, [run('removed')])).toEqual({ final: true, verdict: 'removed' });
    expect(decide({ clean: 'ok' }, [run('intercepted')])).toEqual({ final: true, verdict: 'intercepted' });
  });

  it('runs again when a verdict resting on something not arriving comes from a run that saw loss', () => {
    expect(decide({ clean: 'new-data', absence: ['old-data', 'resized'] }, [run('old-data', LOST)])).toEqual({ final: false });
    expect(decide({ clean: 'new-data', absence: ['old-data', 'resized'] }, [run('old-data')])).toEqual({ final: true, verdict: 'old-data' });
  });

  it('publishes intercepted after a run that waited for answers (a SYN proxy that lost the handshake\'s ACK never connects on) only from three such runs, and never once a run\'s probe arrived', () => {
    const waitedIntercepted = { ...run('intercepted', LOST), waited: true };
    expect(decide({ clean: 'passed' }, [waitedIntercepted])).toEqual({ final: false });
    expect(decide({ clean: 'passed' }, [{ ...run('dropped', LOST), probeCopies: 3, waited: true }, waitedIntercepted])).toEqual({ final: false });
    // two in a row are one connection in 25 on a path losing 10% each way: not enough
    expect(decide({ clean: 'passed' }, [waitedIntercepted, waitedIntercepted])).toEqual({ final: false });
    expect(decide({ clean: 'passed' }, [waitedIntercepted, waitedIntercepted, waitedIntercepted])).toEqual({ final: true, verdict: 'intercepted' });
    // behind the lab's synproxy under loss: a run in between whose probe arrived (modified) says the box relays it
    const between = decide({ clean: 'passed' }, [waitedIntercepted, run('modified', LOST), waitedIntercepted]);
    expect(between).toMatchObject({ final: true, verdict: 'inconclusive' });
    expect((between as { reason: string }).reason).toContain('intercepted, modified, intercepted');
    // and that run stands on its own: an intercepted after waiting before it contradicts nothing
    expect(decide({ clean: 'passed' }, [waitedIntercepted, run('modified', LOST)])).toEqual({ final: true, verdict: 'modified' });
    // an answer from a box in a run that did not wait stands on its own
    expect(decide({ clean: 'passed' }, [{ ...run('intercepted', LOST), waited: false }])).toEqual({ final: true, verdict: 'intercepted' });
  });

  it('publishes only no interference from a run an end did not fully see (an overloaded responder or capture), runs it again, and counts it for nothing', () => {
    const SHORT = '3 of its segments recorded but not answered by the responder, which was behind a flood';
    const overloaded = (verdict: string, extra = {}) => ({ ...run(verdict, SHORT), incompleteView: true, ...extra });
    expect(decide({ clean: 'passed' }, [overloaded('passed')])).toEqual({ final: true, verdict: 'passed' });
    // "removed" stands on its own from an ordinary run, not from one whose responder fell behind
    expect(decide({ clean: 'passed' }, [overloaded('removed')])).toEqual({ final: false });
    expect(decide({ clean: 'passed' }, [overloaded('removed'), run('removed')])).toEqual({ final: true, verdict: 'removed' });
    // two dropped runs, one of them overloaded, confirm nothing
    expect(decide({ clean: 'passed' }, [overloaded('dropped', { probeCopies: 3 }), { ...run('dropped', LOST), probeCopies: 3 }])).toEqual({ final: false });
    const three = decide({ clean: 'passed' }, [overloaded('removed'), overloaded('dropped'), overloaded('removed')]);
    expect(three).toMatchObject({ final: true, verdict: 'inconclusive' });
    expect((three as { reason: string }).reason).toMatch(/in 3 of 3 runs an end did not see all of the run/);
  });

  it('publishes nothing, not even no interference, from a run whose responder may have taken a stranger\'s connection for the test\'s', () => {
    const STRANGERS = '2 SYNs from other addresses on port 80 that nobody took after a flow was given to the test only because it was the one waiting';
    const ambiguous = (verdict: string) => ({ ...run(verdict, STRANGERS), ambiguous: true });
    expect(decide({ clean: 'passed' }, [ambiguous('passed')])).toEqual({ final: false });
    expect(decide({ clean: 'passed' }, [ambiguous('removed'), run('passed')])).toEqual({ final: true, verdict: 'passed' });
    expect(decide({ clean: 'ok' }, [ambiguous('proxied'), ambiguous('proxied'), run('proxied')])).toEqual({ final: true, verdict: 'proxied' });
    const three = decide({ clean: 'ok' }, [ambiguous('reply-dropped'), ambiguous('reply-dropped'), ambiguous('reply-dropped')]);
    expect(three).toMatchObject({ final: true, verdict: 'inconclusive' });
    expect((three as { reason: string }).reason).toMatch(/in 3 of 3 runs the responder may have taken a stranger's or another test's connection/);
  });

  it('publishes nothing from a run whose segments partly went past the box that relays the port\'s connections', () => {
    const PAST = 'flows 198.18.0.2|34123|80 reached the responder from another address than the box\'s (198.19.0.1) that relays the port\'s connections';
    const bypassed = (verdict: string) => ({ ...run(verdict, PAST), bypassed: true });
    // ack-hole's probe leaked past a proxy's connection tracking once: not "passed"
    expect(decide({ clean: 'passed' }, [bypassed('passed')])).toEqual({ final: false });
    expect(decide({ clean: 'passed' }, [bypassed('passed'), { ...run('dropped', LOST), probeCopies: 3 }, { ...run('dropped', LOST), probeCopies: 3 }])).toEqual({ final: true, verdict: 'dropped' });
    const three = decide({ clean: 'passed' }, [bypassed('passed'), bypassed('passed'), bypassed('passed')]);
    expect(three).toMatchObject({ final: true, verdict: 'inconclusive' });
    expect((three as { reason: string }).reason).toMatch(/in 3 of 3 runs segments of the test reached the responder past the box/);
  });

  it('publishes a verdict resting on what arrived, whatever else the path lost', () => {
    expect(decide({ clean: 'passed' }, [run('removed', LOST)])).toEqual({ final: true, verdict: 'removed' });
  });

  it('never publishes dropped, reply-dropped or inconclusive from one run, even without signs of loss', () => {
    for (const v of ['dropped', 'reply-dropped', 'inconclusive']) expect(decide({ clean: 'passed' }, [run(v)])).toEqual({ final: false });
  });

  it('takes dropped from two runs with three copies of the probe gone between them; a probe sent once per run needs three runs', () => {
    expect(decide({ clean: 'passed' }, [{ ...run('dropped', LOST), probeCopies: 3 }])).toEqual({ final: false });
    expect(decide({ clean: 'passed' }, [{ ...run('dropped', LOST), probeCopies: 3 }, { ...run('dropped', LOST), probeCopies: 3 }])).toEqual({ final: true, verdict: 'dropped' });
    expect(decide({ clean: 'passed' }, [{ ...run('dropped'), probeCopies: 1 }])).toEqual({ final: false });
    expect(decide({ clean: 'none' }, [{ ...run('dropped'), probeCopies: 1 }, { ...run('dropped'), probeCopies: 1 }])).toEqual({ final: false });
    expect(decide({ clean: 'none' }, [1, 2, 3].map(() => ({ ...run('dropped'), probeCopies: 1 })))).toEqual({ final: true, verdict: 'dropped' });
    expect(decide({ clean: 'none' }, [run('inconclusive'), { ...run('dropped'), probeCopies: 1 }, { ...run('dropped'), probeCopies: 1 }])).toMatchObject({ final: true, verdict: 'inconclusive' });
  });

  it('publishes a verdict two runs agree on', () => {
    expect(decide({ clean: 'passed' }, [run('reply-dropped', LOST), run('reply-dropped', LOST)])).toEqual({ final: true, verdict: 'reply-dropped' });
    expect(decide({ clean: 'intact', absence: ['coalesced'] }, [run('coalesced', LOST), run('dropped', LOST), run('coalesced', LOST)])).toEqual({ final: true, verdict: 'coalesced' });
  });

  it('takes a later run that stands on its own over an earlier lossy one', () => {
    expect(decide({ clean: 'passed' }, [run('dropped', LOST), run('removed')])).toEqual({ final: true, verdict: 'removed' });
    expect(decide({ clean: 'passed', absence: ['held'] }, [run('dropped', LOST), run('held', LOST)])).toEqual({ final: false });
  });

  it('publishes a verdict that contradicts an earlier run\'s other interference only when another run gives it too, whatever it rests on', () => {
    const retx = { clean: 'new-data', absence: ['old-data'] };
    // behind HAProxy under loss: old-data (lossy, so run again), then intercepted from a run that did not wait
    expect(decide(retx, [run('old-data', LOST), run('intercepted', LOST)])).toEqual({ final: false });
    expect(decide(retx, [run('old-data', LOST), run('intercepted', LOST), run('old-data', LOST)])).toEqual({ final: true, verdict: 'old-data' });
    expect(decide(retx, [run('old-data', LOST), run('intercepted', LOST), run('intercepted')])).toEqual({ final: true, verdict: 'intercepted' });
    const d = decide(retx, [run('old-data', LOST), run('intercepted', LOST), run('removed')]);
    expect(d).toMatchObject({ final: true, verdict: 'inconclusive' });
    expect((d as { reason: string }).reason).toContain('old-data, intercepted, removed');
    // an earlier run that only lost something (dropped, inconclusive) contradicts nothing
    expect(decide({ clean: 'passed' }, [run('inconclusive', LOST), run('removed')])).toEqual({ final: true, verdict: 'removed' });
  });

  it(`says inconclusive, naming every run, when ${MAX_TEST_RUNS} runs never agree`, () => {
    const d = decide({ clean: 'new-data', absence: ['old-data', 'resized'] }, [run('old-data', LOST), run('resized', LOST), run('inconclusive', LOST)]);
    expect(d).toMatchObject({ final: true, verdict: 'inconclusive' });
    expect((d as { reason: string }).reason).toContain('old-data, resized, inconclusive');
  });
});

describe('a responder record of no connection the test opened (initiator/runner.ts headlessRecord)', () => {
  it('is never one the lab recorded, on any profile, and is a record of a stranger\'s mid-flow junk while the test\'s SYN went unseen (CI\'s false dropped under a flood)', () => {
    const headless = recordings.filter((r) => headlessRecord(observationsOf(r))).map((r) => `${r.profile} ${r.name}:${r.port}`);
    expect(recordings.length).toBeGreaterThan(500);
    expect(headless).toEqual([]);
    // syn-unknown-option:80 in that CI run: three copies of its SYN sent, the responder's record one scanner's PSH/ACK
    const obs = recorded('clean', 'syn-unknown-option');
    const junk = observe(fromHex('45000028000040003f0639b7cb007103c6130002a53d005008276137000000005018faf0a3d60000'), 1);
    const unanswered = { sent: obs.initiator.sent.filter(isSyn), received: [] };
    expect(headlessRecord({ initiator: unanswered, responder: { received: [junk] } })).toBe(true);
    // once something answered the SYN, a record without one may be a pooling proxy's (ack-hole behind squid)
    expect(headlessRecord({ initiator: obs.initiator, responder: { received: [junk] } })).toBe(false);
    // nothing recorded at all is a probe that never arrived (the judge's to say), not a stranger's record
    expect(headlessRecord({ initiator: unanswered, responder: { received: [] } })).toBe(false);
  });
});
