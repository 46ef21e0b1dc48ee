import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runProgram } from '../../shared/cli.js';
import { Store, type RunRecord } from '../../shared/store.js';
import { allVerdicts } from '../../initiator/test-case.js';
import { CATALOGUE } from '../../initiator/catalogue/index.js';
import { registerCompareCommand } from '../../results/commands/compare.js';
import { registerTableCommand } from '../../results/commands/table.js';
import { computeCompare } from '../../results/read/compare.js';
import { computeTable, type TableData } from '../../results/read/table.js';
import { renderCompare } from '../../results/render/compare.js';
import { latexEscape } from '../../results/render/grid.js';
import { renderTable } from '../../results/render/table.js';
import { generateResultsDatabase } from '../helpers/synthetic.js';
import { installed } from '../helpers/tools.js';

// ------------------------------------------------------------------------------------------------
// The fixture: five paths with known verdicts.
//
//   home-dsl        two labeled runs: the later one's syn-mss:80 counts; its inconclusive
//                   syn-baseline:80 does not displace the earlier ok
//   lab_1 & co #2   a label LaTeX must escape; tag net=wifi; a test outside the catalogue (my_probe)
//   192.168.1.10 seen as 203.0.113.7    unlabeled (net=mobile); syn-mss:80 only inconclusive
//   192.168.1.10 seen as 198.51.100.9   unlabeled, same private address behind another NAT: another
//                   path; an earlier run without tags (reset on 443) is superseded by the later ok
//   2001:db8::5     unlabeled, not NATed (net=wifi)
// plus a responder run, which is not a path.

interface FixtureRun extends RunRecord {
  results: Array<[test: string, port: number, verdict: string]>;
}

const FIXTURE: FixtureRun[] = [
  {
    id: 'a1', startedAt: '2024-01-01T00:00:00.000Z', label: 'home-dsl', toolVersion: 't',
    results: [['syn-baseline', 80, 'ok'], ['syn-baseline', 443, 'ok'], ['syn-mss', 80, 'passed'], ['syn-mss', 443, 'modified'], ['syn-wscale', 80, 'passed']],
  },
  {
    id: 'a2', startedAt: '2024-02-01T00:00:00.000Z', label: 'home-dsl', toolVersion: 't',
    results: [['syn-baseline', 80, 'inconclusive'], ['syn-mss', 80, 'modified']],
  },
  {
    id: 'b', startedAt: '2024-01-15T00:00:00.000Z', label: 'lab_1 & co #2', toolVersion: 't', tags: { net: 'wifi' },
    results: [['syn-baseline', 80, 'ok'], ['syn-baseline', 443, 'proxied'], ['syn-mss', 80, 'passed'], ['syn-mss', 443, 'removed'], ['syn-wscale', 80, 'passed'], ['my_probe', 34343, 'odd_one']],
  },
  {
    id: 'c', startedAt: '2024-01-20T00:00:00.000Z', toolVersion: 't', tags: { net: 'mobile' },
    hostInfo: { source: '192.168.1.10', observedAddress: '203.0.113.7' },
    results: [['syn-baseline', 80, 'reset'], ['syn-baseline', 443, 'ok'], ['syn-mss', 80, 'inconclusive'], ['syn-mss', 443, 'modified'], ['syn-wscale', 80, 'inconclusive']],
  },
  {
    id: 'd0', startedAt: '2024-01-05T00:00:00.000Z', toolVersion: 't',
    hostInfo: { source: '192.168.1.10', observedAddress: '198.51.100.9' },
    results: [['syn-baseline', 443, 'reset']],
  },
  {
    id: 'd', startedAt: '2024-01-21T00:00:00.000Z', toolVersion: 't', tags: { net: 'mobile' },
    hostInfo: { source: '192.168.1.10', observedAddress: '198.51.100.9' },
    results: [['syn-baseline', 80, 'ok'], ['syn-baseline', 443, 'ok'], ['syn-mss', 80, 'passed']],
  },
  {
    id: 'e', startedAt: '2024-01-22T00:00:00.000Z', toolVersion: 't', tags: { net: 'wifi' },
    hostInfo: { source: '2001:db8::5', observedAddress: '2001:db8::5' },
    results: [['syn-baseline', 80, 'ok']],
  },
  {
    id: 'r', startedAt: '2024-01-01T00:00:00.000Z', label: 'responder', toolVersion: 't', hostInfo: { role: 'responder' },
    results: [['syn-baseline', 80, 'recorded']],
  },
];

function fill(store: Store, runs: FixtureRun[] = FIXTURE): Store {
  for (const { results, ...run } of runs) {
    store.insertRun(run);
    for (const [name, port, verdict] of results) {
      store.insertTest({ runId: run.id, name, port, startedAt: run.startedAt, finishedAt: run.startedAt, verdict, detail: null, segments: [], diffs: [] });
    }
  }
  return store;
}

let dir: string;
const opened: Store[] = [];
const fixture = (): Store => {
  const store = fill(Store.open(':memory:'));
  opened.push(store);
  return store;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mbprobe-table-'));
});

afterEach(() => {
  for (const store of opened.splice(0)) store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The table as { 'test verdict': [cell per column] } with cells as text. */
const cellsOf = (data: TableData): Record<string, Array<string | null>> =>
  Object.fromEntries(data.rows.map((r) => [`${r.test} ${r.verdict}`, r.cells.map((c) => (r.inconclusive ? `${c.n} of ${c.N}` : `${c.n}/${c.N}`))]));

const NOTES = [
  'Each cell: n / N (p%) of paths. N counts the paths with a conclusive result for the test on that port; a path\'s result is its latest conclusive one.',
  'Inconclusive results (the measurement failed) are not in N: the inconclusive rows give the number of paths whose only results were inconclusive.',
];

describe('computeTable', () => {
  it('counts paths: labels, unlabeled runs by address, the latest conclusive result per test and port', () => {
    const data = computeTable(fixture());
    expect(data.paths).toBe(5);
    expect(data.groupBy).toBeNull();
    expect(data.groups).toEqual([{ value: null, paths: 5 }]);
    expect(data.columns).toEqual([{ group: null, port: 80 }, { group: null, port: 443 }, { group: null, port: 34343 }]);
    // Catalogue order (syn-baseline, syn-mss, syn-wscale), then other tests; verdicts in allVerdicts order.
    expect(cellsOf(data)).toEqual({
      'syn-baseline ok': ['4/5', '3/4', '0/0'],
      'syn-baseline proxied': ['0/5', '1/4', '0/0'],
      'syn-baseline reset': ['1/5', '0/4', '0/0'],
      'syn-mss passed': ['2/3', '0/3', '0/0'],
      'syn-mss modified': ['1/3', '2/3', '0/0'],
      'syn-mss removed': ['0/3', '1/3', '0/0'],
      'syn-mss inconclusive': ['1 of 4', '0 of 3', '0 of 0'],
      'syn-wscale passed': ['2/2', '0/0', '0/0'],
      'syn-wscale inconclusive': ['1 of 3', '0 of 0', '0 of 0'],
      'my_probe odd_one': ['0/0', '0/0', '1/1'],
    });
    expect(Object.keys(cellsOf(data))).toEqual([
      'syn-baseline ok', 'syn-baseline proxied', 'syn-baseline reset', 'syn-mss passed', 'syn-mss modified', 'syn-mss removed',
      'syn-mss inconclusive', 'syn-wscale passed', 'syn-wscale inconclusive', 'my_probe odd_one',
    ]);
    expect(data.rows[0].cells).toEqual([{ n: 4, N: 5, percent: 80 }, { n: 3, N: 4, percent: 75 }, { n: 0, N: 0, percent: null }]);
    expect(data.rows[3].cells[0]).toEqual({ n: 2, N: 3, percent: 66.7 });
    expect(data.notes).toEqual([...NOTES, 'A path is a run label, or for unlabeled runs the initiator\'s address. 5 paths; columns are responder ports.']);
  });

  it('--group-by tag:KEY gives one column block per value, runs without the tag last; a path counts in every group it was measured in', () => {
    const data = computeTable(fixture(), { groupBy: { kind: 'tag', key: 'net' } });
    expect(data.groupBy).toBe('tag:net');
    expect(data.groups).toEqual([{ value: 'mobile', paths: 2 }, { value: 'wifi', paths: 2 }, { value: null, paths: 2 }]);
    expect(data.columns.map((c) => `${c.group}:${c.port}`)).toEqual([
      'mobile:80', 'mobile:443', 'mobile:34343', 'wifi:80', 'wifi:443', 'wifi:34343', 'null:80', 'null:443', 'null:34343',
    ]);
    const cells = cellsOf(data);
    // mobile: c and d; wifi: lab_1 and e; (none): home-dsl and d's untagged earlier run d0.
    expect(cells['syn-baseline ok']).toEqual(['1/2', '2/2', '0/0', '2/2', '0/1', '0/0', '1/1', '1/2', '0/0']);
    expect(cells['syn-baseline reset']).toEqual(['1/2', '0/2', '0/0', '0/2', '0/1', '0/0', '0/1', '1/2', '0/0']);
    expect(cells['syn-mss inconclusive']).toEqual(['1 of 2', '0 of 1', '0 of 0', '0 of 1', '0 of 1', '0 of 0', '0 of 1', '0 of 1', '0 of 0']);
    expect(data.notes[2]).toBe('A path is a run label, or for unlabeled runs the initiator\'s address. 5 paths; columns are responder ports, in one block of columns per value of the tag net (runs without it: (none)).');
  });

  it('--group-by label gives one block per label, unlabeled runs last', () => {
    const data = computeTable(fixture(), { groupBy: { kind: 'label' } });
    expect(data.groups).toEqual([{ value: 'home-dsl', paths: 1 }, { value: 'lab_1 & co #2', paths: 1 }, { value: null, paths: 3 }]);
    expect(cellsOf(data)['syn-mss modified']).toEqual(['1/1', '1/1', '0/0', '0/1', '0/1', '0/0', '0/1', '1/1', '0/0']);
  });

  it('an empty database gives an empty table', () => {
    const store = Store.open(':memory:');
    opened.push(store);
    const data = computeTable(store);
    expect(data).toMatchObject({ paths: 0, groups: [], columns: [], rows: [] });
    expect(renderTable(data, 'csv')).toBe('Test,Verdict\n');
  });
});

describe('renderTable', () => {
  it('markdown: the whole table, the notes below', () => {
    expect(renderTable(computeTable(fixture()), 'markdown')).toBe([
      '| Test | Verdict | 80 | 443 | 34343 |',
      '| --- | --- | --: | --: | --: |',
      '| syn-baseline | ok | 4 / 5 (80.0%) | 3 / 4 (75.0%) | - |',
      '| syn-baseline | proxied | 0 / 5 (0.0%) | 1 / 4 (25.0%) | - |',
      '| syn-baseline | reset | 1 / 5 (20.0%) | 0 / 4 (0.0%) | - |',
      '| syn-mss | passed | 2 / 3 (66.7%) | 0 / 3 (0.0%) | - |',
      '| syn-mss | modified | 1 / 3 (33.3%) | 2 / 3 (66.7%) | - |',
      '| syn-mss | removed | 0 / 3 (0.0%) | 1 / 3 (33.3%) | - |',
      '| syn-mss | inconclusive | 1 | 0 | - |',
      '| syn-wscale | passed | 2 / 2 (100.0%) | - | - |',
      '| syn-wscale | inconclusive | 1 | - | - |',
      '| my_probe | odd_one | - | - | 1 / 1 (100.0%) |',
      '',
      ...NOTES,
      'A path is a run label, or for unlabeled runs the initiator\'s address. 5 paths; columns are responder ports.',
      '',
    ].join('\n'));
  });

  it('markdown with groups: "group:port" headers, | escaped', () => {
    const out = renderTable(computeTable(fixture(), { groupBy: { kind: 'label' } }), 'markdown').split('\n');
    expect(out[0]).toBe('| Test | Verdict | home-dsl:80 | home-dsl:443 | home-dsl:34343 | lab_1 & co #2:80 | lab_1 & co #2:443 | lab_1 & co #2:34343 | (none):80 | (none):443 | (none):34343 |');
    expect(out[2]).toBe('| syn-baseline | ok | 1 / 1 (100.0%) | 1 / 1 (100.0%) | - | 1 / 1 (100.0%) | 0 / 1 (0.0%) | - | 2 / 3 (66.7%) | 2 / 2 (100.0%) | - |');
    const piped = computeTable(fixture());
    piped.rows[0].verdict = 'a|b';
    expect(renderTable(piped, 'markdown').split('\n')[2]).toBe('| syn-baseline | a\\|b | 4 / 5 (80.0%) | 3 / 4 (75.0%) | - |');
  });

  it('csv: the same cells, quoted where needed, empty where nothing ran', () => {
    expect(renderTable(computeTable(fixture()), 'csv')).toBe([
      'Test,Verdict,80,443,34343',
      'syn-baseline,ok,4 / 5 (80.0%),3 / 4 (75.0%),',
      'syn-baseline,proxied,0 / 5 (0.0%),1 / 4 (25.0%),',
      'syn-baseline,reset,1 / 5 (20.0%),0 / 4 (0.0%),',
      'syn-mss,passed,2 / 3 (66.7%),0 / 3 (0.0%),',
      'syn-mss,modified,1 / 3 (33.3%),2 / 3 (66.7%),',
      'syn-mss,removed,0 / 3 (0.0%),1 / 3 (33.3%),',
      'syn-mss,inconclusive,1,0,',
      'syn-wscale,passed,2 / 2 (100.0%),,',
      'syn-wscale,inconclusive,1,,',
      'my_probe,odd_one,,,1 / 1 (100.0%)',
      '',
    ].join('\n'));
    const grouped = renderTable(computeTable(fixture(), { groupBy: { kind: 'label' } }), 'csv').split('\n');
    expect(grouped[0]).toBe('Test,Verdict,home-dsl:80,home-dsl:443,home-dsl:34343,lab_1 & co #2:80,lab_1 & co #2:443,lab_1 & co #2:34343,(none):80,(none):443,(none):34343');
    const quoted = computeTable(fixture());
    quoted.rows[0].verdict = 'say "hi", then';
    expect(renderTable(quoted, 'csv').split('\n')[1]).toBe('syn-baseline,"say ""hi"", then",4 / 5 (80.0%),3 / 4 (75.0%),');
  });

  it('latex: a booktabs tabular, names escaped, notes as comments', () => {
    expect(renderTable(computeTable(fixture()), 'latex')).toBe([
      '% Generated by mbprobe-results; needs \\usepackage{booktabs}.',
      ...NOTES.map((n) => `% ${n}`),
      '% A path is a run label, or for unlabeled runs the initiator\'s address. 5 paths; columns are responder ports.',
      '\\begin{tabular}{llrrr}',
      '\\toprule',
      ' &  & \\multicolumn{3}{c}{Port} \\\\',
      '\\cmidrule(lr){3-5}',
      'Test & Verdict & 80 & 443 & 34343 \\\\',
      '\\midrule',
      'syn-baseline & ok & 4 / 5 (80.0\\%) & 3 / 4 (75.0\\%) & -- \\\\',
      ' & proxied & 0 / 5 (0.0\\%) & 1 / 4 (25.0\\%) & -- \\\\',
      ' & reset & 1 / 5 (20.0\\%) & 0 / 4 (0.0\\%) & -- \\\\',
      '\\addlinespace',
      'syn-mss & passed & 2 / 3 (66.7\\%) & 0 / 3 (0.0\\%) & -- \\\\',
      ' & modified & 1 / 3 (33.3\\%) & 2 / 3 (66.7\\%) & -- \\\\',
      ' & removed & 0 / 3 (0.0\\%) & 1 / 3 (33.3\\%) & -- \\\\',
      ' & inconclusive & 1 & 0 & -- \\\\',
      '\\addlinespace',
      'syn-wscale & passed & 2 / 2 (100.0\\%) & -- & -- \\\\',
      ' & inconclusive & 1 & -- & -- \\\\',
      '\\addlinespace',
      'my\\_probe & odd\\_one & -- & -- & 1 / 1 (100.0\\%) \\\\',
      '\\bottomrule',
      '\\end{tabular}',
      '',
    ].join('\n'));
  });

  it('latex with groups: one \\multicolumn block per group with its \\cmidrule, group names escaped', () => {
    const out = renderTable(computeTable(fixture(), { groupBy: { kind: 'label' } }), 'latex');
    expect(out).toContain('\\begin{tabular}{llrrrrrrrrr}\n\\toprule\n'
      + ' &  & \\multicolumn{3}{c}{home-dsl} & \\multicolumn{3}{c}{lab\\_1 \\& co \\#2} & \\multicolumn{3}{c}{(none)} \\\\\n'
      + '\\cmidrule(lr){3-5} \\cmidrule(lr){6-8} \\cmidrule(lr){9-11}\n'
      + 'Test & Verdict & 80 & 443 & 34343 & 80 & 443 & 34343 & 80 & 443 & 34343 \\\\\n\\midrule\n');
    expect(out.trimEnd().endsWith('\\bottomrule\n\\end{tabular}')).toBe(true);
    // Every body row has as many cells as the column spec.
    const body = out.split('\\midrule\n')[1].split('\n\\bottomrule')[0].split('\n').filter((l) => l !== '\\addlinespace');
    for (const line of body) expect(line.split(' & ')).toHaveLength(11);
  });

  it('latexEscape escapes every special character without needing fonts beyond OT1 and math', () => {
    expect(latexEscape('a_b%c&d#e$f{g}h~i^j\\k<l>m|n')).toBe('a\\_b\\%c\\&d\\#e\\$f\\{g\\}h\\~{}i\\^{}j$\\backslash$k$<$l$>$m$|$n');
  });

  it('json: numbers, not strings', () => {
    const parsed = JSON.parse(renderTable(computeTable(fixture()), 'json')) as TableData;
    expect(parsed.paths).toBe(5);
    expect(parsed.rows[0]).toEqual({
      test: 'syn-baseline', verdict: 'ok', inconclusive: false,
      cells: [{ n: 4, N: 5, percent: 80 }, { n: 3, N: 4, percent: 75 }, { n: 0, N: 0, percent: null }],
    });
    expect(parsed.rows.find((r) => r.inconclusive && r.test === 'syn-mss')!.cells[0]).toEqual({ n: 1, N: 4, percent: 25 });
    expect(parsed).toEqual(computeTable(fixture()));
  });

  it.skipIf(!installed('pdflatex'))('latex compiles with pdflatex: the table, grouped, with every special character, and compare', () => {
    const nasty = computeTable(fixture());
    // Not '$': \\$ takes its glyph from the TS1 fonts, which minimal TeX installations lack.
    nasty.rows[0].verdict = 'a_b%c&d#e{f}g~h^i\\j<k>l|m';
    const files = {
      'table.tex': renderTable(computeTable(fixture()), 'latex'),
      'grouped.tex': renderTable(computeTable(fixture(), { groupBy: { kind: 'label' } }), 'latex'),
      'nasty.tex': renderTable(nasty, 'latex'),
      'compare.tex': renderCompare(computeCompare(fixture()), 'latex'),
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const floats = Object.keys(files).map((f) => `\\begin{table}\n\\input{${f}}\n\\end{table}\n`).join('');
    writeFileSync(join(dir, 'doc.tex'), `\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n${floats}\\end{document}\n`);
    const run = spawnSync('pdflatex', ['-interaction=nonstopmode', '-halt-on-error', 'doc.tex'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stdout).toBe(0);
    expect(run.stdout).toMatch(/Output written on doc\.pdf/);
  });
});

describe('compare', () => {
  const HEADER = '| Path | syn-baseline:80 | syn-baseline:443 | syn-mss:80 | syn-mss:443 | syn-wscale:80 | my_probe:34343 |';
  const NOTE = '5 paths: a path is a run label, or for unlabeled runs the initiator\'s address; each cell is the path\'s latest conclusive verdict for the test on that port (inconclusive only if it has nothing else; no verdict if it never ran it).';

  it('one row per path (labels, then addresses), one column per test and port', () => {
    const data = computeCompare(fixture());
    expect(data.columns.map((c) => `${c.test}:${c.port}`)).toEqual(['syn-baseline:80', 'syn-baseline:443', 'syn-mss:80', 'syn-mss:443', 'syn-wscale:80', 'my_probe:34343']);
    expect(data.paths.map((p) => p.kind)).toEqual(['label', 'label', 'address', 'address', 'address']);
    expect(renderCompare(data, 'markdown')).toBe([
      HEADER,
      '| --- | --- | --- | --- | --- | --- | --- |',
      '| home-dsl | ok | ok | modified | modified | passed | - |',
      '| lab_1 & co #2 | ok | proxied | passed | removed | passed | odd_one |',
      '| 192.168.1.10 (seen as 198.51.100.9) | ok | ok | passed | - | - | - |',
      '| 192.168.1.10 (seen as 203.0.113.7) | reset | ok | inconclusive | modified | inconclusive | - |',
      '| 2001:db8::5 | ok | - | - | - | - | - |',
      '',
      NOTE,
      '',
    ].join('\n'));
  });

  it('--only-different keeps the columns where paths disagree; inconclusive and missing are no disagreement', () => {
    const data = computeCompare(fixture(), { onlyDifferent: true });
    expect(data.columns.map((c) => `${c.test}:${c.port}`)).toEqual(['syn-baseline:80', 'syn-baseline:443', 'syn-mss:80', 'syn-mss:443']);
    expect(renderCompare(data, 'csv')).toBe([
      'Path,syn-baseline:80,syn-baseline:443,syn-mss:80,syn-mss:443',
      'home-dsl,ok,ok,modified,modified',
      'lab_1 & co #2,ok,proxied,passed,removed',
      '192.168.1.10 (seen as 198.51.100.9),ok,ok,passed,',
      '192.168.1.10 (seen as 203.0.113.7),reset,ok,inconclusive,modified',
      '2001:db8::5,ok,,,',
      '',
    ].join('\n'));
    const json = JSON.parse(renderCompare(data, 'json')) as typeof data;
    expect(json.paths[2]).toEqual({ path: '192.168.1.10 (seen as 198.51.100.9)', kind: 'address', verdicts: ['ok', 'ok', 'passed', null] });
    expect(json.onlyDifferent).toBe(true);
  });

  it('latex: tests as column blocks over their ports', () => {
    const out = renderCompare(computeCompare(fixture(), { onlyDifferent: true }), 'latex');
    expect(out).toContain('\\begin{tabular}{lllll}\n\\toprule\n & \\multicolumn{2}{c}{syn-baseline} & \\multicolumn{2}{c}{syn-mss} \\\\\n'
      + '\\cmidrule(lr){2-3} \\cmidrule(lr){4-5}\nPath & 80 & 443 & 80 & 443 \\\\\n\\midrule\n'
      + 'home-dsl & ok & ok & modified & modified \\\\\nlab\\_1 \\& co \\#2 & ok & proxied & passed & removed \\\\\n');
    expect(out).toContain('2001:db8::5 & ok & -- & -- & -- \\\\\n\\bottomrule\n\\end{tabular}\n');
  });

  it('a run without label or address is a path of its own', () => {
    const store = fill(Store.open(':memory:'), [
      { id: 'x', startedAt: '2024-01-01T00:00:00.000Z', toolVersion: 't', results: [['syn-baseline', 80, 'ok']] },
      { id: 'y', startedAt: '2024-01-02T00:00:00.000Z', toolVersion: 't', results: [['syn-baseline', 80, 'reset']] },
    ]);
    opened.push(store);
    expect(computeCompare(store).paths).toEqual([
      { path: 'run x', kind: 'run', verdicts: ['ok'] },
      { path: 'run y', kind: 'run', verdicts: ['reset'] },
    ]);
  });
});

describe('mbprobe-results table / compare', () => {
  function cli(): { run: (argv: string[]) => Promise<number>; out: () => string; err: () => string } {
    let out = '';
    let err = '';
    const io = { stdout: (t: string) => void (out += t), stderr: (t: string) => void (err += t) };
    const program = new Command('mbprobe-results');
    registerTableCommand(program, io);
    registerCompareCommand(program, io);
    return { run: (argv) => runProgram(program, argv, io), out: () => out, err: () => err };
  }

  function fixtureFile(): string {
    const path = join(dir, 'results.sqlite');
    fill(Store.open(path)).close();
    return path;
  }

  it('table prints the rendered table of the database (read-only)', async () => {
    const path = fixtureFile();
    const c = cli();
    expect(await c.run(['table', path, '--format', 'csv', '--group-by', 'tag:net'])).toBe(0);
    const store = Store.open(path, { readonly: true });
    opened.push(store);
    expect(c.out()).toBe(renderTable(computeTable(store, { groupBy: { kind: 'tag', key: 'net' } }), 'csv'));
    const md = cli();
    expect(await md.run(['table', path])).toBe(0);
    expect(md.out()).toBe(renderTable(computeTable(store), 'markdown'));
  });

  it('takes the database as its first argument or with --db, the same way', async () => {
    const path = fixtureFile();
    const [positional, option, both] = [cli(), cli(), cli()];
    expect(await positional.run(['compare', path, '--format', 'csv'])).toBe(0);
    expect(await option.run(['compare', '--db', path, '--format', 'csv'])).toBe(0);
    expect(await both.run(['table', path, '--db', path, '--format', 'csv'])).toBe(0);
    expect(option.out()).toBe(positional.out());
    expect(both.out().split('\n')[0]).toBe('Test,Verdict,80,443,34343');
  });

  it('compare prints the paths side by side', async () => {
    const path = fixtureFile();
    const c = cli();
    expect(await c.run(['compare', path, '--only-different', '--format', 'json'])).toBe(0);
    expect((JSON.parse(c.out()) as { columns: unknown[] }).columns).toHaveLength(4);
  });

  it.each([
    [['table', '/nonexistent/results.sqlite'], /no mbprobe database at \/nonexistent\/results.sqlite/],
    [['compare', '/nonexistent/results.sqlite'], /no mbprobe database at \/nonexistent\/results.sqlite/],
    [['table', 'DB', '--format', 'html'], /argument 'html' is invalid/],
    [['table', 'DB', '--group-by', 'country'], /--group-by country: give label or tag:KEY/],
    [['table', 'NOT_A_DB'], /is not an SQLite database/],
    [['table'], /no mbprobe database at results\/mbprobe\.sqlite: check the path/],
    [['table', 'DB', '--db', 'OTHER'], /two databases given, .* and --db OTHER: give one/],
  ])('%j is a usage error (exit 2) that says what is wrong', async (argv, message) => {
    const path = fixtureFile();
    const junk = join(dir, 'junk.sqlite');
    writeFileSync(junk, 'this is not a database, just text long enough to have a header page of sorts'.repeat(20));
    const c = cli();
    expect(await c.run(argv.map((a) => (a === 'DB' ? path : a === 'NOT_A_DB' ? junk : a)))).toBe(2);
    expect(c.err()).toMatch(message);
  });
});

// ------------------------------------------------------------------------------------------------
// Generated databases: the SQL against a plain-JS reference (timings are in the benchmark, scripts/bench.ts).


/** The table's counts the slow, obvious way: every run and test into JS. Keys 'group|test|port|verdict'. */
function referenceCounts(store: Store, groupKey?: string): Map<string, number> {
  const latest = new Map<string, { verdict: string }>();
  for (const run of store.runs()) {
    if (run.hostInfo.role === 'responder') continue;
    const { source, observedAddress } = run.hostInfo as { source?: string; observedAddress?: string };
    const path = run.label ? `l${run.label}` : source || observedAddress ? `a${source ?? observedAddress} ${observedAddress ?? source}` : `r${run.id}`;
    const group = groupKey === undefined ? null : groupKey === 'label' ? run.label || null : run.tags[groupKey] ?? null;
    for (const t of store.tests(run.id)) {
      const key = `${group}|${path}|${t.name}|${t.port}`;
      const previous = latest.get(key);
      if (!previous || previous.verdict === 'inconclusive' || t.verdict !== 'inconclusive') latest.set(key, { verdict: t.verdict });
    }
  }
  const counts = new Map<string, number>();
  for (const [key, { verdict }] of latest) {
    const [group, , name, port] = key.split('|');
    const k = `${group}|${name}|${port}|${verdict}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

function tableCounts(data: TableData): Map<string, number> {
  const counts = new Map<string, number>();
  for (const row of data.rows) {
    row.cells.forEach((cell, i) => {
      const { group, port } = data.columns[i];
      if (cell.n > 0) counts.set(`${group}|${row.test}|${port}|${row.verdict}`, cell.n);
    });
  }
  return counts;
}

describe('generated databases', () => {
  it.each([undefined, 'label', 'net'])('computeTable agrees with a plain-JS reference (group by %s)', (group) => {
    const path = join(dir, 'generated.sqlite');
    generateResultsDatabase(path, 1500, { paths: 300, seed: 7 });
    const store = Store.open(path, { readonly: true });
    opened.push(store);
    const groupBy = group === undefined ? undefined : group === 'label' ? { kind: 'label' as const } : { kind: 'tag' as const, key: group };
    const data = computeTable(store, { groupBy });
    const sorted = (m: Map<string, number>): Array<[string, number]> => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
    expect(sorted(tableCounts(data))).toEqual(sorted(referenceCounts(store, group)));
    // Every verdict row of a column shares its N, and N is the sum of the conclusive counts.
    for (let i = 0; i < data.columns.length; i++) {
      for (const test of new Set(data.rows.map((r) => r.test))) {
        const rows = data.rows.filter((r) => r.test === test && !r.inconclusive);
        expect(new Set(rows.map((r) => r.cells[i].N)).size).toBe(1);
        expect(rows.reduce((s, r) => s + r.cells[i].n, 0)).toBe(rows[0].cells[i].N);
      }
    }
  });
});
