import { readFileSync } from 'node:fs';
import { observationsFromSegments } from '../../initiator/observations.js';
import type { TestObservations } from '../../initiator/test-case.js';
import { fromHex } from '../../shared/wire/bytes.js';

/**
 * Observations recorded across the lab (test/fixtures/observations.json, written by
 * scripts/record-observations.ts): every segment both ends saw of one test on one profile, as it was on
 * the wire, and the verdict given when it was measured.
 */
export interface Recording {
  profile: string;
  name: string;
  port: number;
  verdict: string;
  segments: Array<{ side: 'initiator' | 'responder'; dir: 'sent' | 'received'; atUs: number; hex: string }>;
}

export const recordings = JSON.parse(readFileSync(new URL('../fixtures/observations.json', import.meta.url), 'utf8')) as Recording[];

/** A fresh copy of a recording's observations (judges may be handed edited copies). */
export function observationsOf(recording: Recording): TestObservations {
  return observationsFromSegments(recording, recording.segments.map((s) => ({ ...s, bytes: fromHex(s.hex) })));
}

export function recorded(profile: string, name: string, port = 34343): TestObservations {
  const r = recordings.find((x) => x.profile === profile && x.name === name && x.port === port);
  if (!r) throw new Error(`no recording ${profile} / ${name} on ${port} in test/fixtures/observations.json`);
  return observationsOf(r);
}
