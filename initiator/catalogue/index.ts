import type { TestCase } from '../test-case.js';
import { ackHole } from './ack-hole.js';
import { coalesce } from './coalesce.js';
import { proactiveAck } from './proactive-ack.js';
import { retransmitInconsistent } from './retransmit-inconsistent.js';
import { sackBlocks } from './sack-blocks.js';
import { seqHole } from './seq-hole.js';
import { split } from './split.js';
import { dataMptcp } from './data-mptcp.js';
import { dataTimestamp } from './data-timestamp.js';
import { dataUnknownOption } from './data-unknown-option.js';
import { ipDscp } from './ip-dscp.js';
import { ipEcn } from './ip-ecn.js';
import { nat } from './nat.js';
import { reservedBits } from './reserved-bits.js';
import { seqRewrite } from './seq-rewrite.js';
import { synBaseline } from './syn-baseline.js';
import { synData } from './syn-data.js';
import { synEcn } from './syn-ecn.js';
import { synMptcp } from './syn-mptcp.js';
import { synMss, synUnknownOption } from './syn-option.js';
import { synSackperm } from './syn-sackperm.js';
import { synTfo } from './syn-tfo.js';
import { synTimestamp } from './syn-timestamp.js';
import { synWscale } from './syn-wscale.js';
import { synackUnknownOption } from './synack-unknown-option.js';
import { urgentPointer } from './urgent-pointer.js';
import { windowRewrite } from './window-rewrite.js';

/** The catalogue, in the order tests run and are listed (the design's table order). */
export const CATALOGUE: readonly TestCase[] = [
  synBaseline,
  synMss,
  synWscale,
  synSackperm,
  synTimestamp,
  synUnknownOption,
  synMptcp,
  synTfo,
  synackUnknownOption,
  synData,
  synEcn,
  seqRewrite,
  windowRewrite,
  nat,
  dataUnknownOption,
  dataMptcp,
  dataTimestamp,
  ipEcn,
  ipDscp,
  proactiveAck,
  split,
  coalesce,
  seqHole,
  ackHole,
  retransmitInconsistent,
  sackBlocks,
  urgentPointer,
  reservedBits,
];
