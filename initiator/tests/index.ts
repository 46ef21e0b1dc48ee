import type { TestCase } from '../test-case.js';
import { dataUnknownOption } from './data-unknown-option.js';
import { nat } from './nat.js';
import { seqRewrite } from './seq-rewrite.js';
import { synBaseline } from './syn-baseline.js';
import { synData } from './syn-data.js';
import { synMss, synUnknownOption } from './syn-option.js';
import { synackUnknownOption } from './synack-unknown-option.js';

/** The catalogue, in the order tests run and are listed. */
export const CATALOGUE: readonly TestCase[] = [
  synBaseline,
  synMss,
  synUnknownOption,
  synackUnknownOption,
  synData,
  seqRewrite,
  nat,
  dataUnknownOption,
];
