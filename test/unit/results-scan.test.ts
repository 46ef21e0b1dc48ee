/** Scans in the results: the table counts a scan's servers (`--by target`) or its paths to them (`--by path`), and knows the server tests' verdicts. */
import { describe, expect, it } from 'vitest';
import { Store } from '../../shared/store.js';
import { computeTable } from '../../results/read/table.js';
import { describePath, visitLatestResults } from '../../results/read/paths.js';
import { allVerdictsOf, classifyVerdict, compareTests } from '../../results/verdicts.js';

function database(): Store {
  const store = Store.open(':memory:');
  const test = (runId: string, name: string, port: number, verdict: string, target?: string) =>
    store.insertTest({ runId, name, port, startedAt: '2025-01-01T00:00:00Z', finishedAt: '2025-01-01T00:00:01Z', verdict, detail: null, segments: [], diffs: [], target, targetName: null });
  // Two scans from two vantage points; the second sees one server differently (a box on its path).
  store.insertRun({ id: 'scan-a', startedAt: '2025-01-01T00:00:00Z', toolVersion: 't', label: 'campus', kind: 'server-scan' });
  store.insertRun({ id: 'scan-b', startedAt: '2025-01-02T00:00:00Z', toolVersion: 't', label: 'home', kind: 'server-scan' });
  for (const [target, verdict] of [['192.0.2.1', 'data-accepted'], ['192.0.2.2', 'not-supported'], ['192.0.2.3', 'unreachable']]) test('scan-a', 'server-tfo', 443, verdict, target);
  for (const [target, verdict] of [['192.0.2.1', 'syn-data-broken'], ['192.0.2.2', 'not-supported']]) test('scan-b', 'server-tfo', 443, verdict, target);
  // A measurement against a responder: a path, but no scanned server.
  store.insertRun({ id: 'run-1', startedAt: '2025-01-01T00:00:00Z', toolVersion: 't', label: 'dsl' });
  test('run-1', 'syn-tfo', 443, 'passed');
  return store;
}

const cells = (store: Store, by: 'path' | 'target') =>
  Object.fromEntries(computeTable(store, { by }).rows.map((r) => [`${r.test}=${r.verdict}`, `${r.cells[0].n}/${r.cells[0].N}`]));

describe('table over scans', () => {
  it('--by target: each server once, its latest conclusive result, wherever it was scanned from; no responder measurements', () => {
    const store = database();
    const table = computeTable(store, { by: 'target' });
    expect(table.paths).toBe(3);
    expect(cells(store, 'target')).toEqual({ 'server-tfo=syn-data-broken': '1/3', 'server-tfo=not-supported': '1/3', 'server-tfo=unreachable': '1/3' });
    expect(table.notes.join(' ')).toContain('3 servers');
  });

  it('--by path: a scan\'s path to each server is a path; runs against a responder as before', () => {
    const store = database();
    expect(computeTable(store, { by: 'path' }).paths).toBe(6);
    expect(cells(store, 'path')).toEqual({
      'syn-tfo=passed': '1/1',
      'server-tfo=data-accepted': '1/5', 'server-tfo=not-supported': '2/5', 'server-tfo=syn-data-broken': '1/5', 'server-tfo=unreachable': '1/5',
    });
    // Without a unit (compare, the report), a scan is one path like any run.
    const paths = new Set<string>();
    visitLatestResults(store, undefined, (_group, path) => void paths.add(path));
    expect(paths.size).toBe(3);
  });

  it('names the units, and knows the server tests\' verdicts and order', () => {
    expect(describePath('t192.0.2.1')).toEqual({ kind: 'target', name: '192.0.2.1' });
    expect(describePath('lcampus\u0001192.0.2.1')).toEqual({ kind: 'label', name: 'campus → 192.0.2.1' });
    expect(classifyVerdict('server-tfo', 'data-accepted')).toBe('clean');
    expect(classifyVerdict('server-tfo', 'cookie-only')).toBe('interference');
    expect(classifyVerdict('server-tfo', 'unreachable')).toBe('broken');
    expect(allVerdictsOf('server-ecn')).toEqual(['negotiated', 'not-negotiated', 'ecn-broken', 'unreachable', 'reset', 'inconclusive']);
    expect(['server-tfo', 'syn-tfo', 'server-options'].sort(compareTests)).toEqual(['syn-tfo', 'server-options', 'server-tfo']);
  });
});
