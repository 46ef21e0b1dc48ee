import { mss, optionName, rawOption, type TcpOption } from '../../shared/wire/tcp-options.js';
import { defaultSynOptions, UNKNOWN_OPTION_KIND } from '../probe-scripts.js';
import { judgeSynOption } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { synProbe } from '../probe-segments.js';

/**
 * Builds a "does this SYN option get through?" test: the SYN carries `option` (plus whatever else a
 * SYN would carry), and the judge compares that option in the SYN sent and in the SYN received.
 */
export function synOptionTest(name: string, sends: string, option: () => TcpOption, withDefaults = true): TestCase {
  // Judges are pure: the kind is read once here, not by calling option() (which may read a clock).
  const kind = option().kind;
  return {
    name,
    sends,
    verdicts: ['passed', 'modified', 'removed'],
    carriesToken: 'before-close',
    probe: synProbe(`option.${optionName(kind)}`),
    async run(connection) {
      const extra = option();
      // In Linux's place when a SYN carries that kind anyway (MSS, window scale, ...), else at the end.
      const options = withDefaults ? defaultSynOptions() : [];
      const at = options.findIndex((o) => o.kind === extra.kind);
      if (at >= 0) options[at] = extra;
      else options.push(extra);
      const synAck = await connection.connect({ options });
      if (synAck) await connection.close();
    },
    judge: (obs) => judgeSynOption(obs, kind),
  };
}

export const synMss = synOptionTest('syn-mss', 'a SYN with MSS 1460', () => mss(1460));

export const synUnknownOption = synOptionTest(
  'syn-unknown-option',
  'a SYN with option kind 200 (unassigned), 8 bytes long',
  () => rawOption(UNKNOWN_OPTION_KIND, Uint8Array.of(0x6d, 0x62, 0x70, 0x72, 0x6f, 0x62)),
);
