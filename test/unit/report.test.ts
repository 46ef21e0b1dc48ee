import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { allVerdicts, SHARED_VERDICTS } from '../../initiator/test-case.js';
import { CATALOGUE } from '../../initiator/catalogue/index.js';
import { main } from '../../results/cli.js';
import { buildReport, renderReport, type ReportOptions } from '../../results/commands/report.js';
import { NO_GROUP } from '../../results/grouping.js';
import { computeCompare } from '../../results/read/compare.js';
import { computeTable } from '../../results/read/table.js';
import { escapeHtml } from '../../results/render/html/engine.js';
import { abbreviateVerdict } from '../../results/render/html/report.js';
import { CSP, VERDICT_COLOURS } from '../../results/render/html/style.js';
import { TEMPLATES } from '../../results/render/html/templates.js';
import { formatCell } from '../../results/render/table.js';
import { classifyVerdict } from '../../results/verdicts.js';
import { generateResultsDatabase } from '../helpers/synthetic.js';
import { Store } from '../../shared/store.js';
import { heatmap, ids, startTags, textOf } from '../helpers/html.js';
import { countColour, decodePng } from '../helpers/png.js';
import {
  fillReportFixture, HOSTILE_DETAIL, HOSTILE_LABEL, MSS_ROW, REPORT_FIXTURE_COLUMNS, REPORT_FIXTURE_HEATMAP,
} from '../helpers/report-fixture.js';

let dir: string;
const opened: Store[] = [];
const open = (path: string, readonly = true): Store => {
  const store = Store.open(path, { readonly });
  opened.push(store);
  return store;
};
const fixtureStore = (): Store => {
  const store = fillReportFixture(Store.open(':memory:'));
  opened.push(store);
  return store;
};
const FIXED: ReportOptions = { generatedAt: new Date('2024-03-01T12:00:00.000Z'), database: 'fixture.sqlite' };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mbprobe-report-'));
});

afterEach(() => {
  for (const store of opened.splice(0)) store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Nothing in the file loads anything: no URL, no script, no external resource; every link is a fragment. */
function expectSelfContained(html: string): void {
  expect(html).not.toMatch(/https?:\/\//i);
  expect(html).not.toMatch(/<(script|link|img|iframe|object|embed|source|video|audio|base|form)\b/i);
  expect(html).not.toMatch(/\surl\(|@import/i);
  for (const tag of startTags(html, '[a-z][a-z0-9]*')) {
    expect(tag.attrs.src, 'src attribute').toBeUndefined();
    expect(tag.attrs.srcset, 'srcset attribute').toBeUndefined();
    expect(Object.keys(tag.attrs).filter((a) => a.startsWith('on')), 'event handler attributes').toEqual([]);
    if (tag.attrs.href !== undefined) expect(tag.attrs.href).toMatch(/^#./);
  }
  const csp = startTags(html, 'meta').filter((m) => m.attrs['http-equiv'] === 'Content-Security-Policy');
  expect(csp.map((m) => m.attrs.content)).toEqual(["default-src 'none'; style-src 'unsafe-inline'; img-src data:"]);
  // The policy comes before the style sheet it allows.
  expect(html.indexOf('Content-Security-Policy')).toBeLessThan(html.indexOf('<style>'));
}

/** Every in-page link has its target, and ids are unique. */
function expectAnchorsResolve(html: string): void {
  const all = [...html.matchAll(/\sid="([^"]*)"/g)].map((m) => m[1]);
  expect(new Set(all).size).toBe(all.length);
  const targets = ids(html);
  const hrefs = startTags(html, 'a').map((a) => a.attrs.href);
  expect(hrefs.length).toBeGreaterThan(0);
  for (const href of hrefs) expect(targets.has(href.slice(1)), `target of ${href}`).toBe(true);
}

/** The paper table's cells as the report shows them, against computeTable's. */
function expectTableMatches(html: string, store: Store, groupBy?: ReportOptions['groupBy']): void {
  const data = computeTable(store, { groupBy });
  const start = html.indexOf('<table class="paper">');
  const paper = html.slice(start, html.indexOf('</table>', start));
  const cells = startTags(paper, 'td').filter((td) => td.attrs['data-port'] !== undefined);
  expect(cells).toHaveLength(data.rows.length * data.columns.length);
  let i = 0;
  for (const row of data.rows) {
    for (const [ci, cell] of row.cells.entries()) {
      const td = cells[i++];
      const column = data.columns[ci];
      expect(td.attrs).toMatchObject({ 'data-test': row.test, 'data-verdict': row.verdict, 'data-port': String(column.port), 'data-n': String(cell.n), 'data-total': String(cell.N) });
      if (groupBy) expect(td.attrs['data-group']).toBe(column.group ?? NO_GROUP);
      expect(textOf(paper, td, 'td')).toBe(formatCell(cell, row.inconclusive) ?? '–');
    }
  }
}

describe('classifyVerdict and abbreviateVerdict', () => {
  it('every catalogue test: its first verdict is clean, its other own verdicts interference, the shared ones broken, intercepted or inconclusive', () => {
    for (const test of CATALOGUE) {
      const [first, ...rest] = allVerdicts(test);
      expect(classifyVerdict(test.name, first)).toBe('clean');
      for (const v of rest) {
        const shared = (SHARED_VERDICTS as readonly string[]).includes(v);
        const expected = v === 'inconclusive' || v === 'intercepted' ? v : shared ? 'broken' : 'interference';
        expect(classifyVerdict(test.name, v), `${test.name} ${v}`).toBe(expected);
      }
      // Abbreviations tell a test's verdicts apart.
      const abbreviations = allVerdicts(test).map((v) => abbreviateVerdict(v, test.name));
      expect(new Set(abbreviations).size, test.name).toBe(abbreviations.length);
    }
    expect(classifyVerdict('syn-baseline', 'something-new')).toBe('interference');
    expect(classifyVerdict('my_probe', 'odd_one')).toBe('unknown');
    expect(classifyVerdict('my_probe', 'reset')).toBe('broken');
    expect(classifyVerdict('my_probe', 'intercepted')).toBe('intercepted');
    expect(classifyVerdict('syn-baseline', null)).toBe('none');
    expect(['rewritten-forward', 'address+port', 'passed', 'ok', 'inconclusive', 'reply-dropped'].map((v) => abbreviateVerdict(v))).toEqual(['rf', 'ap', 'pas', 'ok', '?', 'rd']);
    expect(['reset', 'resized', 'old-data'].map((v) => abbreviateVerdict(v, 'retransmit-inconsistent'))).toEqual(['rese', 'resi', 'od']);
    expect(abbreviateVerdict('reset', 'syn-baseline')).toBe('res');
  });

  it('escapeHtml (the templates\' escape) escapes the five special characters and replaces control characters', () => {
    expect(escapeHtml(`<a href='x'>"&"</a>\u0000\u001f\t\n`)).toBe('&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;\uFFFD\uFFFD\t\n');
  });
});

describe('renderReport on the fixture', () => {
  it('is self-contained: no URL, no script, no external load, the CSP meta first', () => {
    const html = renderReport(fixtureStore(), FIXED);
    expect(html.startsWith('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n')).toBe(true);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="${CSP}">`);
    expectSelfContained(html);
  });

  it('the header names the database, the time, the runs, the paths and the version', () => {
    const html = renderReport(fixtureStore(), { ...FIXED, toolVersion: '9.9.9' });
    expect(html).toContain('<code id="database">fixture.sqlite</code>');
    expect(html).toContain('<time id="generated" datetime="2024-03-01T12:00:00.000Z">2024-03-01T12:00:00.000Z</time> by mbprobe-results 9.9.9');
    expect(html).toContain('<dd id="runs" data-runs="5">5 initiator runs, started 2024-01-01T00:00:00.000Z to 2024-02-01T00:00:00.000Z; 1 responder run (not paths)</dd>');
    expect(html).toContain('<dd id="paths" data-paths="4">4</dd>');
    expect(html).toContain('<dd>4 tests on 3 ports (80, 443, 34343)</dd>');
    // The versions that measured: the 5 initiator runs (the responder's own run is not a measurement).
    expect(html).toContain('<dd>0.1.0-test (5 runs)</dd>');
  });

  it('the heatmap: one row per path, exactly the expected cells with their verdict classes; every result links to its drill-down', () => {
    const store = fixtureStore();
    const html = renderReport(store, FIXED);
    const rows = heatmap(html);
    expect(rows.map((r) => r.path)).toEqual(REPORT_FIXTURE_HEATMAP.map(([path]) => path));
    for (const [i, [path, expected]] of REPORT_FIXTURE_HEATMAP.entries()) {
      expect(rows[i].cells.map((c) => ({ ...c, href: c.href === undefined ? undefined : 'link' }))).toEqual(expected.map(([verdict, cls], ci) => {
        const [test, port] = REPORT_FIXTURE_COLUMNS[ci].split(':');
        return { path, test, port, verdict: verdict ?? '', cls, href: verdict === null ? undefined : 'link' };
      }));
    }
    // The same verdicts as compare.
    const compare = computeCompare(store);
    expect(rows.map((r) => r.cells.map((c) => c.verdict || null))).toEqual(compare.paths.map((p) => p.verdicts));
    // Tooltip and abbreviation.
    expect(html).toContain('title="syn-mss on port 80: modified (interference); run a2"><a href="#r-1-2">mod</a></td>');
    expect(html).toContain('<td class="cell v-none" data-path="home-dsl" data-test="syn-data" data-port="80" data-verdict="" title="syn-data on port 80: not run"></td>');
    // A legend with every class.
    const legend = html.slice(html.indexOf('<ul class="legend"'), html.indexOf('</ul>', html.indexOf('<ul class="legend"')));
    for (const cls of ['clean', 'interference', 'broken', 'intercepted', 'inconclusive', 'unknown', 'none']) expect(legend).toContain(`chip v-${cls}`);
    // The colours the Chromium test looks for, one per class.
    for (const [cls, colour] of Object.entries(VERDICT_COLOURS)) expect(html).toContain(`.v-${cls} { background: ${colour};`);
    expect(new Set(Object.values(VERDICT_COLOURS)).size).toBe(Object.keys(VERDICT_COLOURS).length);
    expect(html).toContain('title="syn-mss on port 443: intercepted (intercepted); run e"><a href="#r-3-3">int</a></td>');
    expect(html).not.toContain('class="note truncated"');
  });

  it('drill-down: every link resolves; each section is the stored test that counts, with detail and aligned segments', () => {
    const html = renderReport(fixtureStore(), FIXED);
    expectAnchorsResolve(html);
    const sections = startTags(html, 'section').filter((s) => s.attrs.class === 'drill');
    const linked = heatmap(html).flatMap((r) => r.cells).filter((c) => c.href);
    expect(sections.map((s) => `#${s.attrs.id}`).sort()).toEqual(linked.map((c) => c.href).sort());
    for (const cell of linked) {
      const section = sections.find((s) => `#${s.attrs.id}` === cell.href)!;
      expect(section.attrs).toMatchObject({ 'data-path': cell.path, 'data-test': cell.test, 'data-port': cell.port, 'data-verdict': cell.verdict });
    }
    const sectionHtml = (id: string): string => {
      const at = html.indexOf(`<section class="drill" id="${id}"`);
      expect(at, id).toBeGreaterThan(0);
      return html.slice(at, html.indexOf('</section>', at));
    };
    // home-dsl syn-baseline:80 is a1's ok, not a2's later inconclusive; syn-mss:80 is a2's modified with its segments.
    expect(sectionHtml('r-1-0')).toContain('<dt>Run</dt><dd><code>a1</code> (label home-dsl)');
    const mss = sectionHtml('r-1-2');
    expect(mss).toContain('<dt>Run</dt><dd><code>a2</code> (label home-dsl), started 2024-02-01T00:00:00.000Z');
    expect(mss).toContain(escapeHtml(JSON.stringify({ option: 'mss', sent: 'mss 1460', received: 'mss 536' }, null, 2)));
    expect(mss).toContain('<span class="l-direction">initiator -&gt; responder</span>');
    expect(mss).toContain(`<span class="l-row d-interference">               ${MSS_ROW}</span>`);
    expect(mss).toContain('<span class="l-row d-expected">               ip.ttl: 64 -&gt; 63 [expected]</span>');
    expect(mss).toContain('mbprobe-results diffs fixture.sqlite --run a2 --test syn-mss --port 80');
    // Tests with sections are linked from the heatmap's header and from the drill-down's list.
    expect(html).toContain('<a href="#t-1">syn-mss</a>');
    expect(html).toContain('<div class="test" id="t-2" data-test="syn-data">');
  });

  it('escapes what comes from the database: a hostile label and detail appear as text', () => {
    const html = renderReport(fixtureStore(), FIXED);
    expect(html).not.toContain('<script');
    expect(html).not.toContain(HOSTILE_LABEL);
    expect(html).toContain(`<th class="path" scope="row">${escapeHtml(HOSTILE_LABEL)}</th>`);
    expect(html).toContain('&lt;script&gt;alert(&#39;label&#39;)&lt;/script&gt; &amp; &quot;co&quot; &lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain(escapeHtml(JSON.stringify(HOSTILE_DETAIL, null, 2)));
    expect(heatmap(html)[0].path).toBe(HOSTILE_LABEL);
    expectSelfContained(html);
  });

  it('a submission whose label, tag and detail carry markup renders it inert: text in the page, nothing parsed as HTML', () => {
    const store = fixtureStore();
    const label = '"><img src=x onerror=alert(1)></style><script>alert("label")</script>';
    const tag = "</style><script>alert('tag')</script>\"><img onerror=alert(2) src=y>";
    const detail = { note: '</pre></style><script>alert(3)</script>"><img src=z onerror=alert(3)>', '<b onmouseover=x>': '</details>' };
    store.insertRun({ id: 'hostile', startedAt: '2024-02-15T00:00:00.000Z', label, tags: { net: tag }, toolVersion: '0.1.0-test' });
    store.insertTest({
      runId: 'hostile', name: 'syn-data', port: 443, verdict: 'dropped', startedAt: '2024-02-15T00:00:00.000Z', finishedAt: '2024-02-15T00:00:00.000Z',
      detail, segments: [], diffs: [],
    });
    const html = renderReport(store, { ...FIXED, groupBy: { kind: 'tag', key: 'net' } });
    // Nothing from the submission became markup: no script or image element, no event handler, one style element.
    expect(html).not.toMatch(/<script|<img|<b /i);
    expect(html.match(/<\/style>/g)).toHaveLength(1);
    expect(html.match(/<\/details>/g)).toHaveLength(startTags(html, 'details').length);
    expectSelfContained(html);
    // ... and every text is there, escaped: as text content and as attribute values.
    const row = heatmap(html).find((r) => r.path === label)!;
    expect(row.cells.find((c) => c.test === 'syn-data' && c.port === '443')).toMatchObject({ verdict: 'dropped', cls: 'broken' });
    expect(html).toContain(`<th class="path" scope="row">${escapeHtml(label)}</th>`);
    expect(startTags(html, 'th').filter((th) => th.attrs['data-group'] === tag)).toHaveLength(1);
    expect(html).toContain(`${escapeHtml(tag)} <span class="note">(1 path)</span>`);
    expect(html).toContain(escapeHtml(JSON.stringify(detail, null, 2)));
    expect(escapeHtml(label)).toBe('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;/style&gt;&lt;script&gt;alert(&quot;label&quot;)&lt;/script&gt;');
  });

  it('the templates print raw HTML only for other templates and the constant style sheet', () => {
    const raw = Object.entries(TEMPLATES).flatMap(([name, text]) => [...text.matchAll(/<%~([^%]*)%>/g)].map((m) => `${name}: ${m[1].trim()}`));
    expect(raw.length).toBeGreaterThan(0);
    for (const output of raw) expect(output).toMatch(/^\w+: (include\('@\w+', [\w.]+\)|it\.styleSheet)$/);
    // Every other output is escaped; the engine is not configured otherwise.
    for (const text of Object.values(TEMPLATES)) expect(text).not.toMatch(/<%[^=~\s]/);
  });

  it('the table: the same cells as computeTable, with and without --group-by', () => {
    const store = fixtureStore();
    expectTableMatches(renderReport(store, FIXED), store);
    const grouped = renderReport(store, { ...FIXED, groupBy: { kind: 'label' } });
    expectTableMatches(grouped, store, { kind: 'label' });
    expect(grouped).toContain('<th colspan="3" data-group="home-dsl">home-dsl <span class="note">(1 path)</span></th>');
    expect(grouped).toContain('Grouped by label.');
  });

  it('an empty database gives a report that says so', () => {
    const store = Store.open(':memory:');
    opened.push(store);
    const { html, summary } = buildReport(store, FIXED);
    expect(summary).toEqual({ runs: 0, paths: 0, heatmapPaths: 0, tests: 0, ports: 0, columns: 0, results: 0, drilldowns: 0 });
    expect(html.match(/No results in this database\./g)).toHaveLength(2);
    expect(heatmap(html)).toEqual([]);
    expectSelfContained(html);
  });
});

describe('renderReport on generated databases', () => {
  it('agrees with compare and table; bounded heatmap and drill-down, each with a visible note', () => {
    const path = join(dir, 'generated.sqlite');
    generateResultsDatabase(path, 900, { paths: 300, seed: 3 });
    const store = open(path);
    const compare = computeCompare(store);
    expect(compare.paths.length).toBeGreaterThan(60);

    const full = buildReport(store, FIXED);
    const rows = heatmap(full.html);
    expect(rows).toHaveLength(compare.paths.length);
    const results = compare.paths.reduce((n, p) => n + p.verdicts.filter((v) => v !== null).length, 0);
    expect(full.summary).toMatchObject({ paths: compare.paths.length, heatmapPaths: compare.paths.length, results, drilldowns: Math.min(results, 2000) });
    for (const [i, p] of compare.paths.entries()) {
      expect(rows[i].path).toBe(p.path);
      expect(rows[i].cells.map((c) => `${c.test}:${c.port}`)).toEqual(compare.columns.map((c) => `${c.test}:${c.port}`));
      expect(rows[i].cells.map((c) => c.verdict || null)).toEqual(p.verdicts);
      expect(rows[i].cells.map((c) => c.cls)).toEqual(p.verdicts.map((v, ci) => classifyVerdict(compare.columns[ci].test, v)));
    }
    expectTableMatches(full.html, store);
    expectAnchorsResolve(full.html);
    expectSelfContained(full.html);

    const bounded = buildReport(store, { ...FIXED, maxPaths: 50, maxDrilldown: 100 });
    const shown = heatmap(bounded.html);
    expect(shown.map((r) => r.path)).toEqual(compare.paths.slice(0, 50).map((p) => p.path));
    const left = compare.paths.length - 50;
    expect(bounded.html).toContain(`<p class="note truncated" id="heatmap-truncated">The heatmap shows the first 50 of the ${compare.paths.length} paths; ${left} paths are left out (the table counts all of them).`);
    expect(bounded.html).toContain(`<dd id="paths" data-paths="${compare.paths.length}">${compare.paths.length} (the heatmap shows the first 50)</dd>`);
    const shownResults = shown.flatMap((r) => r.cells).filter((c) => c.verdict !== '');
    const linked = shownResults.filter((c) => c.href);
    expect(linked).toHaveLength(100);
    // The first 100 results row by row get the sections.
    expect(linked).toEqual(shownResults.slice(0, 100));
    expect(startTags(bounded.html, 'section').filter((s) => s.attrs.class === 'drill')).toHaveLength(100);
    expect(bounded.html).toContain(`<p class="note truncated" id="drilldown-truncated">Drill-down is embedded for 100 of the ${shownResults.length} results in the heatmap (the first ones, row by row); the other ${shownResults.length - 100} cells have no link.`);
    expect(bounded.summary).toMatchObject({ heatmapPaths: 50, results: shownResults.length, drilldowns: 100 });
    // The table still counts every path.
    expectTableMatches(bounded.html, store);
    expect(bounded.html).toContain(`${computeTable(store).paths} paths; columns are responder ports.`);
    expectAnchorsResolve(bounded.html);

    const none = buildReport(store, { ...FIXED, maxDrilldown: 0 });
    expect(heatmap(none.html).flatMap((r) => r.cells).filter((c) => c.href)).toEqual([]);
    expect(none.html).toContain('No drill-down sections embedded.');
    expectAnchorsResolve(none.html);
  });

  it('stays fast on a bigger database (5,000 runs): bounded output', () => {
    const path = join(dir, 'big.sqlite');
    generateResultsDatabase(path, 5000, { paths: 2500, tests: 28, seed: 5 });
    const store = open(path);
    const t = performance.now();
    const { html, summary } = buildReport(store, FIXED);
    const ms = performance.now() - t;
    expect(summary.heatmapPaths).toBe(500);
    expect(summary.paths).toBeGreaterThan(500);
    expect(summary.drilldowns).toBe(2000);
    expect(html).toContain('id="heatmap-truncated"');
    expect(html).toContain('id="drilldown-truncated"');
    expect(ms).toBeLessThan(20_000);
    expect(html.length).toBeLessThan(30 * 1024 * 1024);
  });
});

describe('mbprobe-results report', () => {
  function capture(): { io: { stdout: (t: string) => void; stderr: (t: string) => void }; out: () => string; err: () => string } {
    let out = '';
    let err = '';
    return { io: { stdout: (t) => void (out += t), stderr: (t) => void (err += t) }, out: () => out, err: () => err };
  }

  function fixtureFile(): string {
    const path = join(dir, 'results.sqlite');
    fillReportFixture(Store.open(path)).close();
    return path;
  }

  it('writes the report and prints one line: the file, its size, paths, tests', async () => {
    const db = fixtureFile();
    const out = join(dir, 'report.html');
    const c = capture();
    expect(await main(['report', db, '--out', out, '--group-by', 'tag:net'], c.io)).toBe(0);
    expect(c.err()).toBe('');
    const html = readFileSync(out, 'utf8');
    const size = Buffer.byteLength(html);
    expect(c.out()).toMatch(new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(${(size / 1024).toFixed(1).replace('.', '\\.')} kB\\): 4 paths, 4 tests on 3 ports, 5 runs, 16 drill-down sections; table grouped by tag:net\n$`));
    expect(heatmap(html).map((r) => r.path)).toEqual(REPORT_FIXTURE_HEATMAP.map(([p]) => p));
    expect(html).toContain(`<code id="database">${escapeHtml(db)}</code>`);
    expectSelfContained(html);
    // Read-only: the database is unchanged.
    expect(open(db).runs()).toHaveLength(6);
  });

  it('--max-paths and --max-drilldown bound the report and the summary says so', async () => {
    const db = fixtureFile();
    const out = join(dir, 'small.html');
    const c = capture();
    expect(await main(['report', db, '--out', out, '--max-paths', '2', '--max-drilldown', '3'], c.io)).toBe(0);
    expect(c.out()).toMatch(/: 4 paths \(2 in the heatmap\), 4 tests on 3 ports, 5 runs, 3 drill-down sections of 9 results\n$/);
    const html = readFileSync(out, 'utf8');
    expect(heatmap(html)).toHaveLength(2);
    expect(html).toContain('id="heatmap-truncated"');
    expect(html).toContain('id="drilldown-truncated"');
  });

  it('--help shows the options and the default output file', async () => {
    const c = capture();
    expect(await main(['report', '--help'], c.io)).toBe(0);
    expect(c.out()).toMatch(/--out <file>.*\(default: "report\.html"\)/s);
    expect(c.out()).toMatch(/--max-drilldown <n>.*\(default: "2000"\)/s);
  });

  it.each([
    [['report', '/nonexistent/results.sqlite', '--out', 'OUT'], /no mbprobe database at \/nonexistent\/results\.sqlite/],
    [['report', 'NOT_A_DB', '--out', 'OUT'], /is not an SQLite database/],
    [['report'], /no mbprobe database at results\/mbprobe\.sqlite/],
    [['report', '--db', 'DB', '--out', 'DB'], /is the database itself/],
    [['report', 'DB', '--out', 'OUT', '--max-drilldown', '-1'], /--max-drilldown: "-1" is not a whole number|unknown option|too many arguments/],
    [['report', 'DB', '--out', 'OUT', '--max-drilldown', 'lots'], /--max-drilldown: "lots" is not a whole number/],
    [['report', 'DB', '--out', 'OUT', '--max-paths', '0'], /--max-paths: "0" is not a positive whole number/],
    [['report', 'DB', '--out', 'OUT', '--group-by', 'country'], /--group-by country: give label or tag:KEY/],
    [['report', 'DB', '--out', 'OUT', '--format', 'pdf'], /unknown option '--format'/],
    [['report', 'DB', '--out', 'DB'], /is the database itself/],
    [['report', 'DB', '--out', '/nonexistent/dir/report.html'], /cannot write \/nonexistent\/dir\/report\.html: ENOENT/],
  ])('%j is a usage error (exit 2) that says what is wrong, and writes nothing', async (argv, message) => {
    const db = fixtureFile();
    const junk = join(dir, 'junk.sqlite');
    writeFileSync(junk, 'this is not a database, just text long enough to have a header page of sorts'.repeat(20));
    const out = join(dir, 'out.html');
    const c = capture();
    expect(await main(argv.map((a) => (a === 'DB' ? db : a === 'NOT_A_DB' ? junk : a === 'OUT' ? out : a)), c.io)).toBe(2);
    expect(c.err()).toMatch(message);
    expect(existsSync(out)).toBe(false);
    expect(open(db).runs()).toHaveLength(6);
  });
});

// ------------------------------------------------------------------------------------------------
// The PNG decoder of the Chromium test (test/helpers/png.ts), on images encoded here with every filter.

function encodePng(width: number, height: number, rgba: Uint8Array, colour: 2 | 6, filters: number[]): Uint8Array {
  const channels = colour === 6 ? 4 : 3;
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < channels; c++) pixels[i * channels + c] = rgba[i * 4 + c];
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const filter = filters[y % filters.length];
    raw[y * (stride + 1)] = filter;
    for (let x = 0; x < stride; x++) {
      const at = y * stride + x;
      const a = x >= channels ? pixels[at - channels] : 0;
      const b = y > 0 ? pixels[at - stride] : 0;
      const c = x >= channels && y > 0 ? pixels[at - stride - channels] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predictor = [0, a, b, (a + b) >>> 1, paeth][filter];
      raw[y * (stride + 1) + 1 + x] = (pixels[at] - predictor) & 0xff;
    }
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    let crc = 0xffffffff;
    for (const byte of body) crc = crcTable[(crc ^ byte) & 0xff] ^ (crc >>> 8);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
    return Buffer.concat([head, body, tail]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, colour, 0, 0, 0], 8);
  const data = deflateSync(raw);
  // Two IDAT chunks, to check they are concatenated.
  const half = Math.floor(data.length / 2);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', data.subarray(0, half)), chunk('IDAT', data.subarray(half)), chunk('IEND', new Uint8Array())]);
}

describe('decodePng (test helper)', () => {
  it.each([[2, 'RGB'], [6, 'RGBA']] as const)('decodes 8-bit colour type %s (%s) with filters 0-4', (colour, _name) => {
    const width = 7;
    const height = 10;
    const rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 37 + (i >> 3) * 11) & 0xff;
    if (colour === 2) for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
    const image = decodePng(encodePng(width, height, rgba, colour, [0, 1, 2, 3, 4]));
    expect(image.width).toBe(width);
    expect(image.height).toBe(height);
    expect([...image.rgba]).toEqual([...rgba]);
    const one = new Uint8Array(width * height * 4).fill(255);
    one.set([0x2b, 0x8a, 0x3e, 255], 0);
    expect(countColour(decodePng(encodePng(width, height, one, colour, [4])), VERDICT_COLOURS.clean)).toBe(1);
  });

  it('refuses what is not a PNG, or a damaged one', () => {
    expect(() => decodePng(new Uint8Array([1, 2, 3]))).toThrow(/bad signature/);
    const png = encodePng(1, 1, new Uint8Array(4), 6, [0]);
    png[20] ^= 1;
    expect(() => decodePng(png)).toThrow(/bad CRC/);
  });
});
