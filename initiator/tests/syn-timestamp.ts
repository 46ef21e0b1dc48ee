import { OptionKind } from '../../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../syn-options.js';
import { first, isSyn, isSynAck, sharedVerdict } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { judgeSentOption } from './data-timestamp.js';

/**
 * Written out rather than with synOptionTest: its judge calls the option factory for the kind, and a
 * timestamps option's value comes from the clock, which a judge must not read.
 */
export const synTimestamp: TestCase = {
  name: 'syn-timestamp',
  sends: 'a SYN with timestamps (option 8, a clock value and echo 0), besides MSS, SACK-permitted and window scale',
  verdicts: ['passed', 'modified', 'removed'],
  async run(connection) {
    // defaultSynOptions carries the timestamps option, valued from the clock like Linux's.
    const synAck = await connection.connect({ options: defaultSynOptions() });
    if (synAck) await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const sent = first(obs.initiator.sent, isSyn)!;
    const received = first(obs.responder!.received, isSyn)!;
    return judgeSentOption(sent, received, OptionKind.TIMESTAMPS);
  },
};
