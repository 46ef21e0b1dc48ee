/**
 * What a test case written outside mbprobe gets to work with: `run --test-file my-test.mjs` loads a
 * module whose default export is a function receiving this object and returning a TestCase (so the
 * file needs no import of mbprobe, wherever it lives). See the README for a complete example.
 */
import { diffSegments } from '../shared/diff.js';
import { matchSegments } from '../shared/match.js';
import { dscpOf, ecnOf } from '../shared/wire/packet.js';
import { formatPacket } from '../shared/wire/format.js';
import { TcpFlag } from '../shared/wire/tcp.js';
import * as options from '../shared/wire/tcp-options.js';
import { describeRow, first, hasData, isRst, isSyn, isSynAck, judgeOption, sharedVerdict } from './judge-helpers.js';
import { connectAndClose, defaultSynOptions, UNKNOWN_OPTION_KIND } from './probe-scripts.js';
import { dataProbe, probeWhere, synProbe } from './probe-segments.js';
import type { Judgement, RunContext, TestCase, TestObservations } from './test-case.js';

export const testApi = {
  TcpFlag,
  options,
  defaultSynOptions,
  UNKNOWN_OPTION_KIND,
  connectAndClose,
  sharedVerdict,
  judgeOption,
  isSyn,
  isSynAck,
  isRst,
  hasData,
  first,
  describeRow,
  diffSegments,
  matchSegments,
  formatPacket,
  dscpOf,
  ecnOf,
  synProbe,
  dataProbe,
  probeWhere,
};

export type TestApi = typeof testApi;
export type { Judgement, RunContext, TestCase, TestObservations };
