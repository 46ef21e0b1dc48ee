import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGUE } from '../../initiator/catalogue/index.js';
import { allVerdicts } from '../../initiator/test-case.js';
import { Store } from '../../shared/store.js';
import { decodePacket } from '../../shared/wire/packet.js';
import { createLab, removeStaleLabs } from '../../lab/index.js';
import { projectRoot, runInitiator, startResponder } from '../../lab/index.js';
import { expectedTable } from '../../lab/expectations.js';
import { installed } from '../helpers/tools.js';

/**
 * Volunteers on three lab paths (no middlebox, an option-stripping firewall, a NAT) each measure
 * and submit their run to the responder with `run --submit`; the researchers' `mbprobe-results
 * table` and `compare` on the responder's database must then give exactly the counts that follow
 * from the three profiles' expected verdicts, in every format.
 */

const PROFILES = ['clean', 'strip-options', 'nat'] as const;
const PORTS_NUMERIC = [80, 443, 34343]; // how table and compare order ports
const run = promisify(execFile);

async function results(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [join(projectRoot(), 'dist/results/bin.js'), ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** The table's expected rows: per test (catalogue order), each verdict some profile gives, with how many of the paths give it. */
function expectedTableRows(): Array<{ test: string; verdict: string; n: number }> {
  return CATALOGUE.flatMap((t) => {
    const verdicts = PROFILES.map((p) => expectedTable(p, [t.name])[`${t.name}:34343`]);
    return allVerdicts(t).filter((v) => verdicts.includes(v)).map((verdict) => ({ test: t.name, verdict, n: verdicts.filter((v) => v === verdict).length }));
  });
}
const cellText = (n: number): string => `${n} / ${PROFILES.length} (${((100 * n) / PROFILES.length).toFixed(1)}%)`;

/** Data rows of a booktabs tabular: the lines between \midrule and \bottomrule, cells unescaped, blank first cells filled in. */
function latexRows(latex: string): string[][] {
  const lines = latex.split('\n');
  const body = lines.slice(lines.indexOf('\\midrule') + 1, lines.indexOf('\\bottomrule')).filter((l) => l !== '\\addlinespace');
  let previous = '';
  return body.map((line) => {
    expect(line.endsWith(' \\\\')).toBe(true);
    const cells = line.slice(0, -3).split(' & ').map((c) => c.replace(/\\([%&_#$])/g, '$1'));
    if (cells[0] === '') cells[0] = previous;
    previous = cells[0];
    return cells;
  });
}

/** The parts of a booktabs tabular that must be there, in order, with `columns` columns in every row. */
function expectBooktabs(latex: string, columnSpec: string): void {
  const lines = latex.split('\n');
  const at = (l: string): number => lines.indexOf(l);
  expect(lines).toContain(`\\begin{tabular}{${columnSpec}}`);
  expect(at('\\toprule')).toBeGreaterThan(at(`\\begin{tabular}{${columnSpec}}`));
  expect(at('\\midrule')).toBeGreaterThan(at('\\toprule'));
  expect(at('\\bottomrule')).toBeGreaterThan(at('\\midrule'));
  expect(at('\\end{tabular}')).toBe(at('\\bottomrule') + 1);
  for (const line of lines.slice(at('\\midrule') + 1, at('\\bottomrule')).filter((l) => l !== '\\addlinespace')) {
    expect(line.split(' & ')).toHaveLength(columnSpec.length);
  }
  // Every special character escaped: no bare %, & only as separators, no stray _.
  expect(latex.split('\n').filter((l) => !l.startsWith('%')).join('\n')).not.toMatch(/(?<!\\)[%_#]/);
}

/** Compiles the tabular in a minimal document with pdflatex and booktabs; rejects (with pdflatex's log) when it does not compile. */
async function compileLatex(dir: string, latex: string): Promise<void> {
  writeFileSync(join(dir, 'table.tex'), latex);
  writeFileSync(join(dir, 'paper.tex'), '\\documentclass{article}\\usepackage{booktabs}\\begin{document}\\input{table.tex}\\end{document}\n');
  await run(PDFLATEX!, ['-interaction=nonstopmode', '-halt-on-error', 'paper.tex'], { cwd: dir });
}

const PDFLATEX = installed('pdflatex');

describe.skipIf(process.getuid?.() !== 0).sequential('runs collected through the responder from three lab paths', () => {
  let workDir: string;
  let collected: string;
  const addresses = new Map<string, string[]>();
  const stderr = new Map<string, string>();

  beforeAll(async () => {
    await removeStaleLabs();
    workDir = mkdtempSync(join(tmpdir(), 'mbprobe-collect-'));
    collected = join(workDir, 'responder.sqlite');
    for (const profile of PROFILES) {
      const lab = await createLab({ profile });
      const responder = await startResponder(lab, collected);
      try {
        const db = join(workDir, `initiator-${profile}.sqlite`);
        const measured = await runInitiator(lab, db, { label: profile, initiatorArgs: ['--submit'] });
        expect(measured.code, measured.stderr).toBe(0);
        let text = measured.stderr;
        if (profile === 'nat') {
          // Submitting the same run again stores nothing new.
          const again = await lab.exec(lab.namespaces.initiator, [process.execPath, join(projectRoot(), 'dist/initiator/bin.js'), 'submit', '--responder', lab.addresses.responder, '--insecure', '--db', db], { allowFailure: true });
          expect(again.code, again.stderr).toBe(0);
          text += again.stderr;
        }
        stderr.set(profile, text);
        const store = Store.open(db, { readonly: true });
        const info = store.runs()[0].hostInfo;
        addresses.set(profile, [String(info.source), String(info.observedAddress)]);
        store.close();
      } finally {
        await responder.stop();
        await lab.destroy();
      }
    }
  }, 300_000);
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it('tells each volunteer what is sent and that it was stored, and stores a resubmission once', () => {
    for (const profile of PROFILES) {
      const text = stderr.get(profile)!;
      expect(text).toMatch(/Submitting run [0-9a-f-]{36} to /);
      expect(text).toContain(`${CATALOGUE.length * 3} tests`);
      expect(text).toContain('hostname not sent');
      expect(text).toMatch(/The responder stored run [0-9a-f-]{36} \(84 tests\)/);
    }
    expect(stderr.get('nat')).toMatch(/The responder already had run [0-9a-f-]{36}; nothing new was stored/);
    const store = Store.open(collected, { readonly: true });
    try {
      const submitted = store.runs().filter((r) => r.hostInfo.role !== 'responder');
      expect(submitted.map((r) => r.label).sort()).toEqual([...PROFILES].sort());
      for (const r of submitted) expect(store.tests(r.id)).toHaveLength(CATALOGUE.length * 3);
    } finally {
      store.close();
    }
  });

  it('keeps the volunteers\' addresses out of the collected runs: /24 in every header and text', () => {
    const store = Store.open(collected, { readonly: true });
    try {
      for (const r of store.runs().filter((x) => x.hostInfo.role !== 'responder')) {
        const own = addresses.get(r.label!)!;
        expect(r.hostInfo.hostname).toBeUndefined();
        expect(JSON.stringify(r.hostInfo)).not.toMatch(new RegExp(own.map((a) => `"${a.replace(/\./g, '\\.')}"`).join('|')));
        let segments = 0;
        for (const t of store.tests(r.id)) {
          for (const s of store.segments(t.id)) {
            const ip = decodePacket(s.bytes).ip!;
            expect(own).not.toContain(ip.src);
            expect(own).not.toContain(ip.dst);
            expect([ip.src, ip.dst].some((a) => a.endsWith('.0'))).toBe(true);
            segments++;
          }
        }
        expect(segments).toBeGreaterThan(500);
      }
    } finally {
      store.close();
    }
  });

  it('truncates an IPv6 volunteer to its /48 in every header of what it submits', async () => {
    const lab = await createLab({ profile: 'clean' });
    const db = join(workDir, 'responder-v6.sqlite');
    const responder = await startResponder(lab, db);
    try {
      const measured = await runInitiator(lab, join(workDir, 'initiator-v6.sqlite'), { label: 'clean-v6', family: 6, tests: 'syn-baseline,syn-data,nat', initiatorArgs: ['--submit'] });
      expect(measured.code, measured.stderr).toBe(0);
      expect(measured.stderr).toContain(`${lab.addresses.initiator6} as `);
    } finally {
      await responder.stop();
      await lab.destroy();
    }
    const store = Store.open(db, { readonly: true });
    try {
      const [submitted] = store.runs().filter((r) => r.hostInfo.role !== 'responder');
      const truncated = String(submitted.hostInfo.source);
      expect(truncated).toMatch(/::$/);
      const addresses = new Set<string>();
      for (const t of store.tests(submitted.id)) {
        for (const s of store.segments(t.id)) {
          const ip = decodePacket(s.bytes).ip!;
          addresses.add(ip.src).add(ip.dst);
        }
      }
      expect([...addresses].sort()).toEqual([truncated, lab.addresses.responder6].sort());
      expect(JSON.stringify(store.tests(submitted.id).map((t) => t.detail))).not.toContain(lab.addresses.initiator6);
    } finally {
      store.close();
    }
  }, 60_000);

  it('gives the paper table that follows from the three profiles, in every format', async () => {
    const expected = expectedTableRows();
    const json = JSON.parse(await results('table', collected, '--format', 'json')) as {
      paths: number; columns: Array<{ port: number }>; rows: Array<{ test: string; verdict: string; inconclusive: boolean; cells: Array<{ n: number; N: number }> }>;
    };
    expect(json.paths).toBe(3);
    expect(json.columns.map((c) => c.port)).toEqual(PORTS_NUMERIC);
    expect(json.rows.map((r) => ({ test: r.test, verdict: r.verdict, inconclusive: r.inconclusive, cells: r.cells.map((c) => [c.n, c.N]) })))
      .toEqual(expected.map((e) => ({ test: e.test, verdict: e.verdict, inconclusive: false, cells: PORTS_NUMERIC.map(() => [e.n, 3]) })));
    // A few rows spelled out: the firewall strips the unknown option, the NAT rewrites addresses and ports.
    expect(expected).toContainEqual({ test: 'syn-unknown-option', verdict: 'removed', n: 1 });
    expect(expected).toContainEqual({ test: 'nat', verdict: 'address+port', n: 1 });
    expect(expected).toContainEqual({ test: 'syn-mss', verdict: 'passed', n: 3 });

    const rows = expected.map((e) => [e.test, e.verdict, ...PORTS_NUMERIC.map(() => cellText(e.n))]);
    const markdown = (await results('table', collected, '--format', 'markdown')).split('\n');
    expect(markdown[0]).toBe('| Test | Verdict | 80 | 443 | 34343 |');
    expect(markdown.slice(2, 2 + rows.length)).toEqual(rows.map((r) => `| ${r.join(' | ')} |`));
    expect(markdown[2 + rows.length]).toBe('');

    const csv = (await results('table', collected, '--format', 'csv')).trimEnd().split('\n');
    expect(csv).toEqual(['Test,Verdict,80,443,34343', ...rows.map((r) => r.join(','))]);

    const latex = await results('table', collected, '--format', 'latex');
    expectBooktabs(latex, 'llrrr');
    expect(latex).toContain('& \\multicolumn{3}{c}{Port} \\\\');
    expect(latexRows(latex)).toEqual(rows);
  });

  // Without a TeX engine this is skipped, never passed: scripts/setup installs pdflatex and booktabs.
  it.skipIf(!PDFLATEX)('the paper table compiles with pdflatex and booktabs', async () => {
    await compileLatex(workDir, await results('table', collected, '--format', 'latex'));
  });

  it('compares the three paths verdict by verdict, in every format', async () => {
    const columns = CATALOGUE.flatMap((t) => PORTS_NUMERIC.map((port) => ({ test: t.name, port })));
    const paths = [...PROFILES].sort();
    const verdictsOf = (profile: string): string[] => columns.map((c) => expectedTable(profile)[`${c.test}:${c.port}`]);

    const json = JSON.parse(await results('compare', collected, '--format', 'json')) as { columns: unknown; paths: unknown };
    expect(json.columns).toEqual(columns);
    expect(json.paths).toEqual(paths.map((p) => ({ path: p, kind: 'label', verdicts: verdictsOf(p) })));

    const header = ['Path', ...columns.map((c) => `${c.test}:${c.port}`)];
    const csv = (await results('compare', collected, '--format', 'csv')).trimEnd().split('\n');
    expect(csv).toEqual([header.join(','), ...paths.map((p) => [p, ...verdictsOf(p)].join(','))]);

    const markdown = (await results('compare', collected, '--format', 'markdown')).split('\n');
    expect(markdown[0]).toBe(`| ${header.join(' | ')} |`);
    expect(markdown.slice(2, 5)).toEqual(paths.map((p) => `| ${[p, ...verdictsOf(p)].join(' | ')} |`));

    const latex = await results('compare', collected, '--format', 'latex');
    expectBooktabs(latex, `l${'l'.repeat(columns.length)}`);
    expect(latex).toContain(`\\multicolumn{3}{c}{syn-baseline}`);
    expect(latexRows(latex)).toEqual(paths.map((p) => [p, ...verdictsOf(p)]));

    // Only where the paths disagree: exactly the columns where the three profiles' expectations differ.
    const different = JSON.parse(await results('compare', collected, '--only-different', '--format', 'json')) as { columns: Array<{ test: string; port: number }> };
    expect(different.columns).toEqual(columns.filter((c) => new Set(PROFILES.map((p) => expectedTable(p)[`${c.test}:${c.port}`])).size > 1));
  });

  it('gives the same table and compare over its Parquet export (DuckDB) as over the database (SQLite)', async () => {
    const dataset = join(workDir, 'collected-dataset');
    expect(await results('export', collected, '--format', 'parquet', '--out', dataset)).toMatch(/^wrote a Parquet dataset/);
    for (const argv of [['table', '--format', 'json'], ['table', '--format', 'latex', '--group-by', 'label'], ['compare', '--format', 'json'], ['compare', '--only-different', '--format', 'csv']]) {
      expect(await results(argv[0], dataset, ...argv.slice(1)), argv.join(' ')).toBe(await results(argv[0], collected, ...argv.slice(1)));
    }
  });
});
