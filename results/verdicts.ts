/**
 * What a verdict means, the one place that says it for every results command: which verdict of a
 * test is no interference, interference, a probe or answer lost, an interception, or a failed
 * measurement; and the order tests and verdicts are listed in (the catalogue's).
 */
import { allVerdicts, SHARED_VERDICTS } from '../initiator/test-case.js';
import { CATALOGUE } from '../initiator/catalogue/index.js';
import { allServerVerdicts, SERVER_CATALOGUE, SERVER_SHARED_VERDICTS } from '../initiator/catalogue/server/index.js';

export const INCONCLUSIVE = 'inconclusive';
export const INTERCEPTED = 'intercepted';

/**
 * The class of a verdict: `clean` no interference (the test's first verdict), `interference` another
 * of its own verdicts, `broken` the probe or its answer lost or cut (dropped, reply-dropped, reset),
 * `intercepted` a middlebox answered the connection itself and the probe never reached the responder,
 * `inconclusive` the measurement failed, `unknown` a verdict of a test outside the catalogue (its
 * order, and so its "no interference", is not known here), `none` not run.
 */
export type VerdictClass = 'clean' | 'interference' | 'broken' | 'intercepted' | 'inconclusive' | 'unknown' | 'none';

/** Every class, in the order a legend lists them. */
export const VERDICT_CLASSES: readonly VerdictClass[] = ['clean', 'interference', 'broken', 'intercepted', 'inconclusive', 'unknown', 'none'];

/** What each class means, in words (the report's legend and tooltips). */
export const CLASS_DESCRIPTIONS: Record<VerdictClass, string> = {
  clean: 'no interference (the test\'s first verdict)',
  interference: 'interference (another verdict of the test)',
  broken: 'dropped, reply-dropped or reset',
  intercepted: 'intercepted (a middlebox answered the connection itself; the probe never reached the responder)',
  inconclusive: 'inconclusive (the measurement failed)',
  unknown: 'a verdict of a test outside the catalogue (e.g. from --test-file): which of its verdicts means no interference is not known here',
  none: 'not run on this path and port',
};

/** The responder catalogue, then the server tests of `mbprobe-initiator scan` (their names start with server-). */
const KNOWN_TESTS: ReadonlyArray<{ name: string; verdicts: readonly string[] }> = [...CATALOGUE, ...SERVER_CATALOGUE];
const SERVER_TEST_NAMES = new Set(SERVER_CATALOGUE.map((t) => t.name));
const CATALOGUE_INDEX = new Map(KNOWN_TESTS.map((t, i) => [t.name, i]));
/** Shared verdicts that say the probe or its answer was lost or cut: a scan's unreachable (no answer to an ordinary SYN) among them. */
const BROKEN = new Set<string>([...SHARED_VERDICTS, ...SERVER_SHARED_VERDICTS].filter((v) => v !== INCONCLUSIVE && v !== INTERCEPTED));
/** A known test's verdicts, its own then the shared ones of its kind. */
const verdictsOfKnown = (test: { name: string; verdicts: readonly string[] }): string[] =>
  (SERVER_TEST_NAMES.has(test.name) ? allServerVerdicts(test) : allVerdicts(test as (typeof CATALOGUE)[number]));

/** The class of a test's verdict: its first verdict (allVerdicts) is clean, its others interference. */
export function classifyVerdict(test: string, verdict: string | null): VerdictClass {
  if (verdict === null) return 'none';
  if (verdict === INCONCLUSIVE) return 'inconclusive';
  if (verdict === INTERCEPTED) return 'intercepted';
  if (BROKEN.has(verdict)) return 'broken';
  const known = catalogueTest(test);
  if (!known) return 'unknown';
  return verdict === known.verdicts[0] ? 'clean' : 'interference';
}

/** The catalogue's (or the server tests') test of that name; undefined for a test outside them (e.g. from --test-file). */
export function catalogueTest(name: string): { name: string; verdicts: readonly string[] } | undefined {
  return KNOWN_TESTS[CATALOGUE_INDEX.get(name) ?? -1];
}

export function codePointCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Catalogue tests in catalogue order, then the server tests, then any other test (e.g. from --test-file) by name. */
export function compareTests(a: string, b: string): number {
  const ia = CATALOGUE_INDEX.get(a) ?? Number.MAX_SAFE_INTEGER;
  const ib = CATALOGUE_INDEX.get(b) ?? Number.MAX_SAFE_INTEGER;
  return ia - ib || codePointCompare(a, b);
}

/** A test's own verdicts in its order, then verdicts it does not declare by name, then the shared ones in order. */
export function compareVerdicts(test: string): (a: string, b: string) => number {
  const own = catalogueTest(test)?.verdicts ?? [];
  const sharedOfKind: readonly string[] = SERVER_TEST_NAMES.has(test) ? SERVER_SHARED_VERDICTS : SHARED_VERDICTS;
  const rank = (v: string): number => {
    const shared = sharedOfKind.indexOf(v);
    if (shared >= 0) return 2000 + shared;
    const i = own.indexOf(v);
    return i >= 0 ? i : 1000;
  };
  return (a, b) => rank(a) - rank(b) || codePointCompare(a, b);
}

/** A catalogue test's verdicts, its own then the shared ones (allVerdicts); none for a test outside the catalogue. */
export function allVerdictsOf(test: string): string[] {
  const known = catalogueTest(test);
  return known ? verdictsOfKnown(known) : [];
}
