/**
 * The probe descriptors of the catalogue (TestCase.probe): which segment a judge examines and which
 * fields it reads, for `mbprobe-initiator locate`. Pure, like the judges.
 */
import { hasData, isSyn, type Observed } from './observed.js';
import type { ProbeSegment } from './test-case.js';

/** The test's SYN (its first: locate copies it before any retransmission). */
export const synProbe = (...examines: string[]): ProbeSegment => ({ is: isSyn, examines });

/** The test's first data segment. */
export const dataProbe = (...examines: string[]): ProbeSegment => ({ is: hasData, examines });

/** A segment chosen by `is`, for tests whose probe is neither their SYN nor their first data segment. */
export const probeWhere = (is: (segment: Observed, before: readonly Observed[]) => boolean, ...examines: string[]): ProbeSegment => ({ is, examines });

/** The SYN, for a test whose judge examines the responder's answer: a change there is on the reverse path. */
export const reversePathProbe = (): ProbeSegment => ({ is: isSyn, examines: [], reversePath: true });
