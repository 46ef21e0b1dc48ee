/** `mbprobe-initiator scan` on the command line, up to the point where it would need the network: usage errors, --list-tests, --dry-run. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main as initiator } from '../../initiator/cli.js';
import { SERVER_CATALOGUE } from '../../initiator/catalogue/server/index.js';

function capture(): { io: { stdout: (t: string) => void; stderr: (t: string) => void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { stdout: (t) => void (out += t), stderr: (t) => void (err += t) }, out: () => out, err: () => err };
}

const dir = mkdtempSync(join(tmpdir(), 'mbprobe-scan-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('scan on the command line', () => {
  it.each([
    [['scan'], /give the servers to scan: --targets/],
    [['scan', '--targets', 'not a host'], /--targets: argument: "not a host"/],
    [['scan', '--targets', 'example.org', '--tests', 'server-nope'], /unknown server test "server-nope"/],
    [['scan', '--targets', 'example.org', '--rate', '0'], /--rate: "0" is not a positive whole number/],
    [['scan', '--targets', '10.1.2.3', '192.0.2.9:80'], /refusing to scan 10\.1\.2\.3 \(private \(RFC 1918\), argument\), 192\.0\.2\.9 .*--allow-private/],
    [['scan', '--targets', 'example.org', '--contact', 'me\r\nX: y'], /--contact: printable ASCII/],
    [['scan', '--targets', 'example.org', '--exclude', '/nonexistent/optout.txt'], /--exclude \/nonexistent\/optout.txt/],
  ])('%j is a usage error (exit 2) that says what is wrong', async (argv, message) => {
    const c = capture();
    expect(await initiator(argv, c.io)).toBe(2);
    expect(c.err()).toMatch(message);
  });

  it('--list-tests lists every server test with its connections and verdicts', async () => {
    const c = capture();
    expect(await initiator(['scan', '--list-tests'], c.io)).toBe(0);
    for (const t of SERVER_CATALOGUE) expect(c.out()).toContain(`${t.name}\n  sends:`);
    expect(c.out()).toContain('verdicts:    data-accepted, cookie-only, not-supported, syn-data-broken, unreachable, reset, inconclusive');
  });

  it('--dry-run lists the targets, what is left out and why, and what each test sends; it needs no privileges and sends nothing', async () => {
    const list = join(dir, 'top.csv');
    writeFileSync(list, '1,192.0.2.10\n2,198.51.100.20\n3,203.0.113.30\n4,???\n');
    const optout = join(dir, 'optout.txt');
    writeFileSync(optout, '198.51.100.0/24\n');
    const c = capture();
    expect(await initiator(['scan', '--targets', list, '[2001:db8::5]:8443', '--exclude', optout, '--allow-private', '--dry-run', '--json'], c.io)).toBe(0);
    expect(c.err()).toContain('skipping 1 line');
    const plan = JSON.parse(c.out()) as { targets: Array<{ target: string; ports: number[]; addresses: string[]; leftOut: string[] }>; serverPorts: number; synsAtLeast: number };
    expect(plan.targets.map((t) => [t.target, t.ports, t.addresses])).toEqual([
      ['192.0.2.10', [443, 80], ['192.0.2.10']],
      ['198.51.100.20', [443, 80], []],
      ['203.0.113.30', [443, 80], ['203.0.113.30']],
      ['2001:db8::5', [8443], ['2001:db8::5']],
    ]);
    expect(plan.targets[1].leftOut).toEqual(['198.51.100.20: excluded (opt-out list)']);
    expect(plan.serverPorts).toBe(5);
    expect(plan.synsAtLeast).toBe(5 * 11);
    const text = capture();
    expect(await initiator(['scan', '--targets', '192.0.2.10', '--allow-private', '--dry-run', '--limit', '1'], text.io)).toBe(0);
    expect(text.out()).toContain('server-tfo:\n    SYN (usual options + TFO cookie request), then RST');
    expect(text.out()).toMatch(/2 server ports; at least 22 SYNs/);
  });
});
