import { experimental, optionName, rawOption, type TcpOption } from '../../../shared/wire/tcp-options.js';
import { defaultSynOptions, UNKNOWN_OPTION_KIND } from '../../probe-scripts.js';
import { connection, describeOutcome, optionOf, sharedServerVerdict, synOutcome } from './judging.js';
import type { ServerTest } from './server-test.js';

/** The options tried: an unassigned kind (as syn-unknown-option sends it), and an RFC 6994 experimental option (kind 253, ExID 0x6d62). */
const PROBES: ReadonlyArray<{ role: string; option: () => TcpOption }> = [
  { role: 'kind-200', option: () => rawOption(UNKNOWN_OPTION_KIND, Uint8Array.of(0x6d, 0x62, 0x70, 0x72, 0x6f, 0x62)) },
  { role: 'kind-253', option: () => experimental(0x6d62, Uint8Array.of(1, 2, 3, 4), 253) },
];

/**
 * A/B: an ordinary SYN, then the same SYN with one option no server knows, for each option. "broken":
 * a SYN with the option gets no SYN-ACK (or a RST) while the ordinary one gets one, the middlebox or
 * server that would break any new TCP option.
 */
export const serverUnknownOption: ServerTest = {
  name: 'server-unknown-option',
  sends: 'an ordinary SYN, then the same SYN with option kind 200 (unassigned, 8 bytes), then with kind 253 (RFC 6994 experimental, ExID 0x6d62)',
  verdicts: ['works', 'broken'],
  absenceVerdicts: ['broken'],
  connections: ['ordinary SYN, then RST', 'SYN (usual options + kind 200), then RST', 'SYN (usual options + kind 253 ExID 0x6d62), then RST'],
  async run(context) {
    const plain = context.open('plain');
    await plain.syn({ options: defaultSynOptions() });
    await plain.reset();
    if (!plain.synAcked) return;
    for (const { role, option } of PROBES) {
      const probe = context.open(role);
      await probe.syn({ options: [...defaultSynOptions(), option()] });
      await probe.reset();
    }
  },
  judge(obs) {
    const shared = sharedServerVerdict(synOutcome(connection(obs, 'plain')), 'the ordinary SYN');
    if (shared) return shared;
    const results = PROBES.map(({ role, option }) => {
      const kind = option().kind;
      const outcome = synOutcome(connection(obs, role));
      return { role, kind, outcome, echoed: outcome.kind === 'syn-ack' && optionOf(outcome.synAck, kind) !== undefined };
    });
    const unsent = results.find((r) => r.outcome.kind === 'not-sent' || r.outcome.kind === 'wrong-ack');
    if (unsent) return sharedServerVerdict(unsent.outcome, `the SYN with ${optionName(unsent.kind)}`)!;
    const detail = {
      options: Object.fromEntries(results.map((r) => [r.role, { ...describeOutcome(r.outcome), ...(r.echoed ? { echoed: true } : {}) }])),
      failed: results.filter((r) => r.outcome.kind !== 'syn-ack').map((r) => r.role),
    };
    return { verdict: detail.failed.length ? 'broken' : 'works', detail };
  },
};
