import { OptionKind } from '../../shared/wire/tcp-options.js';
import { connectAndClose } from '../probe-scripts.js';
import { judgeSynOption } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { synProbe } from '../probe-segments.js';

/**
 * Written out rather than with synOptionTest, which appends its option after the default ones: this SYN
 * is the ordinary one, with timestamps (valued from the clock, like Linux's) where Linux puts them.
 */
export const synTimestamp: TestCase = {
  name: 'syn-timestamp',
  sends: 'a SYN with timestamps (option 8, a clock value and echo 0), besides MSS, SACK-permitted and window scale',
  verdicts: ['passed', 'modified', 'removed'],
  carriesToken: 'before-close',
  probe: synProbe('option.timestamps'),
  run: connectAndClose,
  judge: (obs) => judgeSynOption(obs, OptionKind.TIMESTAMPS),
};
