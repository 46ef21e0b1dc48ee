/**
 * `mbprobe-results report` opened in headless Chromium (Debian's chromium; scripts/setup installs it):
 * a screenshot really shows the heatmap (pixels of its clean and interference colours), the DOM
 * Chromium built from the file has, for each path, exactly the expected heatmap cells, every
 * in-page link has its target, and the Content-Security-Policy blocked nothing (nothing tried to
 * load or run). The report is written through the CLI's main() in-process, so no build is needed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../results/cli.js';
import { VERDICT_COLOURS } from '../../results/render/html/style.js';
import { Store } from '../../shared/store.js';
import { heatmap, ids, startTags } from '../helpers/html.js';
import { countColour, decodePng } from '../helpers/png.js';
import { fillReportFixture, HOSTILE_LABEL, REPORT_FIXTURE_COLUMNS, REPORT_FIXTURE_HEATMAP } from '../helpers/report-fixture.js';
import { installed } from '../helpers/tools.js';

const CHROMIUM_TIMEOUT_MS = 60_000;

const chromium = installed('chromium', 'chromium-browser');
const SKIP_REASON = 'chromium not found on PATH: scripts/setup installs Debian\'s chromium for this test';
if (!chromium) console.warn(`report-chromium.test.ts: skipped: ${SKIP_REASON}`);

interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs chromium in its own process group, killed (the whole group: renderer, GPU, crashpad helpers)
 * when the timeout expires and again once the browser has exited, so nothing outlives the test.
 */
function runChromium(args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(chromium!, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let exit: { status: number | null; signal: NodeJS.Signals | null } | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => void (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
    const killGroup = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // ESRCH: the group is gone already.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, CHROMIUM_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (status, signal) => {
      exit = { status, signal };
      clearTimeout(timer);
      killGroup();
    });
    child.once('close', () => resolve({ ...(exit ?? { status: null, signal: null }), stdout, stderr, timedOut }));
  });
}

const COMMON = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--no-first-run', '--no-default-browser-check', '--window-size=1400,1800', '--enable-logging=stderr', '--v=0',
];

describe.skipIf(!chromium)('report in headless Chromium', () => {
  let dir: string;
  let reportUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mbprobe-report-chromium-'));
    const db = join(dir, 'results.sqlite');
    fillReportFixture(Store.open(db)).close();
    const report = join(dir, 'report.html');
    let out = '';
    let err = '';
    const status = await main(['report', db, '--out', report], { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
    expect(status, err).toBe(0);
    expect(out).toMatch(/^wrote .*report\.html \(.*\): 4 paths, 4 tests on 3 ports/);
    reportUrl = pathToFileURL(report).href;
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const profile = (name: string): string => {
    const path = join(dir, `profile-${name}`);
    mkdirSync(path);
    return `--user-data-dir=${path}`;
  };

  /** Content-Security-Policy violations (anything the page tried to load or run) as Chromium logs them. */
  const violations = (stderr: string): string[] => stderr.split('\n').filter((l) => /Content Security Policy|Refused to/i.test(l));

  it('the screenshot shows the heatmap: pixels of every verdict class\'s colour', async () => {
    const png = join(dir, 'report.png');
    const run = await runChromium([...COMMON, profile('screenshot'), `--screenshot=${png}`, reportUrl]);
    expect(run.timedOut, 'chromium timed out').toBe(false);
    expect(run.status, run.stderr).toBe(0);
    expect(existsSync(png), run.stderr).toBe(true);
    expect(violations(run.stderr)).toEqual([]);
    const image = decodePng(readFileSync(png));
    expect([image.width, image.height]).toEqual([1400, 1800]);
    // A heatmap cell is about 600 pixels of its colour, a legend, table or drill-down chip at most 200. Measured
    // on this fixture: with the heatmap about 4600 clean, 3750 interference, 1800 broken, 1130 inconclusive,
    // 1060 unknown, 980 intercepted; the same page without the heatmap table 855, 1442, 552, 494, 368 (intercepted
    // not measured so: it has one heatmap cell, so 700 asks for that cell beside its chip and drill-down verdict).
    // The bounds sit between.
    const counts = Object.fromEntries((['clean', 'interference', 'broken', 'intercepted', 'inconclusive', 'unknown'] as const)
      .map((c) => [c, countColour(image, VERDICT_COLOURS[c])]));
    const seen = JSON.stringify(counts);
    expect(counts.clean, seen).toBeGreaterThan(2500);
    expect(counts.interference, seen).toBeGreaterThan(2500);
    expect(counts.broken, seen).toBeGreaterThan(1200);
    expect(counts.inconclusive, seen).toBeGreaterThan(850);
    expect(counts.unknown, seen).toBeGreaterThan(750);
    expect(counts.intercepted, seen).toBeGreaterThan(700);
  }, CHROMIUM_TIMEOUT_MS + 10_000);

  it('the DOM has, for each path, exactly the expected heatmap cells; links resolve; the hostile label is text', async () => {
    const run = await runChromium([...COMMON, profile('dom'), '--dump-dom', reportUrl]);
    expect(run.timedOut, 'chromium timed out').toBe(false);
    expect(run.status, run.stderr).toBe(0);
    expect(violations(run.stderr)).toEqual([]);
    const dom = run.stdout;
    expect(dom).toContain('<table class="heatmap">');

    const rows = heatmap(dom);
    expect(rows.map((r) => r.path)).toEqual(REPORT_FIXTURE_HEATMAP.map(([path]) => path));
    for (const [i, [path, expected]] of REPORT_FIXTURE_HEATMAP.entries()) {
      expect(rows[i].cells.map(({ path: p, test, port, verdict, cls }) => ({ p, test, port, verdict, cls })), path).toEqual(
        expected.map(([verdict, cls], ci) => {
          const [test, port] = REPORT_FIXTURE_COLUMNS[ci].split(':');
          return { p: path, test, port, verdict: verdict ?? '', cls };
        }),
      );
      // Every result links to a drill-down section the DOM has.
      for (const cell of rows[i].cells) expect(cell.href !== undefined, `${path} ${cell.test}:${cell.port}`).toBe(cell.verdict !== '');
    }
    const targets = ids(dom);
    for (const a of startTags(dom, 'a')) expect(targets.has(a.attrs.href.slice(1)), a.attrs.href).toBe(true);

    // The browser parsed the label and the detail as text: no script element, no image.
    expect(dom).not.toMatch(/<script|<img/i);
    expect(rows[0].path).toBe(HOSTILE_LABEL);
  }, CHROMIUM_TIMEOUT_MS + 10_000);
});

// Without chromium, one skipped test that says why (the suite above is skipped too).
if (!chromium) it.skip(`report in headless Chromium: ${SKIP_REASON}`, () => undefined);
