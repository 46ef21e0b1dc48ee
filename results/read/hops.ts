/**
 * Where on the path (`table --by-hop`): for each behaviour of interference (a test and one of its
 * verdicts other than its first and inconclusive), how many paths' results that count (read/paths.ts)
 * place the box at the first hop, in the access network, in the core or at the last hop, by the
 * finding of `mbprobe-initiator locate` (tests.detail.location); and how many could not be placed, or
 * were not localised at all (measured without --locate).
 *
 * The box is the last hop still showing the probe as sent (a Linux box quotes before its own rules, so
 * its own change shows in the next hop's quote), or, for a proxy, the hop answering for the responder:
 * the first hop is hop 1 (the volunteer's gateway; or the volunteer's own host, when hop 1 already saw
 * the change), the last hop the router before the responder, the access network hops 2 and 3, the core
 * the hops between. A path counts once per position in a row, whichever of its ports put it there.
 */
import type { Store } from '../../shared/store.js';
import { locationsOfTests, testsOfRunNewestFirst, type StoredLocation } from '../../shared/store/queries.js';
import { CATALOGUE } from '../../initiator/catalogue/index.js';
import { compareTests, compareVerdicts, INCONCLUSIVE } from '../verdicts.js';
import { latestStoredResults, runsByPath } from './paths.js';

export const POSITIONS = ['first hop', 'access network', 'core', 'last hop', 'not localisable', 'not located'] as const;
export type Position = (typeof POSITIONS)[number];

/** The last hop of the access network (hops 2 to this one). */
export const ACCESS_NETWORK_LAST_HOP = 3;

/** Where a finding puts the box. */
export function positionOf(location: StoredLocation | undefined): Position {
  if (!location) return 'not located';
  const box = location.status === 'proxy' ? location.proxyHop
    : location.status === 'changed' || location.status === 'dropped' ? (location.lastTtl ?? 0)
    : null;
  if (box === null) return 'not localisable';
  if (box <= 1) return 'first hop';
  const lastRouter = location.responderHop !== null ? location.responderHop - 1 : undefined;
  if ((location.status !== 'proxy' && location.firstIsResponder) || (lastRouter !== undefined && box >= lastRouter)) return 'last hop';
  return box <= ACCESS_NETWORK_LAST_HOP ? 'access network' : 'core';
}

export interface HopTableCell {
  /** Paths whose result of this behaviour is placed here. */
  n: number;
  /** 100 n / N, one decimal. */
  percent: number;
}

export interface HopTableRow {
  test: string;
  verdict: string;
  /** Paths with this behaviour (on any port). */
  paths: number;
  /** One per POSITIONS. */
  cells: HopTableCell[];
}

export interface HopTableData {
  positions: readonly Position[];
  /** Distinct paths with at least one result that counts. */
  paths: number;
  rows: HopTableRow[];
  notes: string[];
}

export function readHopTable(store: Store): HopTableData {
  const locations = locationsOfTests(store);
  const testsOfRun = testsOfRunNewestFirst(store);
  /** test \0 verdict -> position -> paths */
  const counts = new Map<string, { paths: Set<string>; at: Map<Position, Set<string>> }>();
  let paths = 0;
  for (const [path, runIds] of runsByPath(store)) {
    const results = latestStoredResults(testsOfRun, runIds).items();
    if (results.length > 0) paths++;
    for (const result of results) {
      // The measurement catalogue's tests (a scan's server tests are not localised).
      const test = CATALOGUE.find((t) => t.name === result.name);
      if (!test || result.verdict === test.verdicts[0] || result.verdict === INCONCLUSIVE) continue;
      const key = `${result.name}\u0000${result.verdict}`;
      let entry = counts.get(key);
      if (!entry) counts.set(key, (entry = { paths: new Set(), at: new Map() }));
      entry.paths.add(path);
      const position = positionOf(locations.get(result.id));
      let at = entry.at.get(position);
      if (!at) entry.at.set(position, (at = new Set()));
      at.add(path);
    }
  }
  const rows = [...counts].map(([key, entry]): HopTableRow => {
    const [test, verdict] = key.split('\u0000');
    const N = entry.paths.size;
    return { test, verdict, paths: N, cells: POSITIONS.map((p) => {
      const n = entry.at.get(p)?.size ?? 0;
      return { n, percent: Math.round((1000 * n) / N) / 10 };
    }) };
  }).sort((a, b) => compareTests(a.test, b.test) || compareVerdicts(a.test)(a.verdict, b.verdict));
  const located = rows.reduce((n, r) => n + r.paths - r.cells[POSITIONS.indexOf('not located')].n, 0);
  const notes = [
    `${paths} paths; rows: behaviours of interference, cells "n / N (p%)": paths whose result places the box there, of the N paths with the behaviour on any port.`,
    `The box is the last hop still quoting the probe as sent (its own change shows at the next hop), or the hop of a proxy answering for the responder. First hop: hop 1 (or the volunteer's host); access network: hops 2-${ACCESS_NETWORK_LAST_HOP}; last hop: the router before the responder; core: between.`,
    ...(located === 0 && rows.length > 0 ? ['No result was localised: measure with mbprobe-initiator run --locate (or locate).'] : []),
  ];
  return { positions: POSITIONS, paths, rows, notes };
}
