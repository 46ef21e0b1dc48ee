import { OptionKind, viewOption } from '../../../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../../probe-scripts.js';
import { mssOf, timestampsOf, windowScaleOf } from '../../judge-helpers.js';
import { connection, optionNames, optionOf, sharedServerVerdict, synOutcome } from './judging.js';
import type { ServerTest } from './server-test.js';

/** The options a SYN negotiates (RFC 2018, 7323): the MSS is the server's own value, not an answer to ours, so it is reported, not counted. */
const NEGOTIATED = ['sackPermitted', 'timestamps', 'windowScale'] as const;

export const serverOptions: ServerTest = {
  name: 'server-options',
  sends: 'a SYN like Linux sends it (MSS, SACK-permitted, timestamps, window scale); reads which of them the SYN-ACK answers, then resets the connection',
  verdicts: ['all', 'some', 'none'],
  absenceVerdicts: [],
  connections: ['SYN (MSS 1460, SACK-permitted, timestamps, window scale 7), then RST'],
  async run(context) {
    const probe = context.open('probe');
    await probe.syn({ options: defaultSynOptions() });
    await probe.reset();
  },
  judge(obs) {
    const outcome = synOutcome(connection(obs, 'probe'));
    const shared = sharedServerVerdict(outcome);
    if (shared || outcome.kind !== 'syn-ack') return shared!;
    const { syn, synAck } = outcome;
    const sentTs = timestampsOf(syn);
    const ts = timestampsOf(synAck);
    const sackOption = optionOf(synAck, OptionKind.SACK_PERMITTED);
    const answered = {
      sackPermitted: sackOption !== undefined && viewOption(sackOption).type === 'sack-permitted',
      timestamps: ts !== undefined,
      windowScale: windowScaleOf(synAck) !== null,
    };
    const echoed = {
      mss: mssOf(synAck) ?? null,
      sackPermitted: answered.sackPermitted,
      timestamps: ts ? { value: ts.value, echo: ts.echo, echoesOurs: sentTs !== undefined && ts.echo === sentTs.value } : null,
      windowScale: windowScaleOf(synAck),
    };
    const missing = NEGOTIATED.filter((o) => !answered[o]);
    const detail = { echoed, missing, synAckOptions: optionNames(synAck), window: synAck.packet.tcp!.window };
    const verdict = missing.length === 0 ? 'all' : missing.length === NEGOTIATED.length ? 'none' : 'some';
    return { verdict, detail };
  },
};
