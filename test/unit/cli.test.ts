import { describe, expect, it } from 'vitest';
import { main as initiator, parseTags, selectTests } from '../../initiator/cli.js';
import { main as responder } from '../../responder/cli.js';
import { main as results } from '../../results/cli.js';
import { CATALOGUE } from '../../initiator/catalogue/index.js';

function capture(): { io: { stdout: (t: string) => void; stderr: (t: string) => void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { stdout: (t) => void (out += t), stderr: (t) => void (err += t) }, out: () => out, err: () => err };
}

describe('command lines', () => {
  it.each([
    ['initiator', initiator, /run.*\n.*list/s],
    ['responder', responder, /--ports <list>.*--control-port.*--iface.*--db/s],
    ['results', results, /inspect/],
  ] as const)('%s --help explains itself and exits 0', async (_name, main, shape) => {
    const c = capture();
    expect(await main(['--help'], c.io)).toBe(0);
    expect(c.out()).toMatch(shape);
  });

  it('list shows every test with what it sends and its verdicts; --json for machines', async () => {
    const c = capture();
    expect(await initiator(['list', '--json'], c.io)).toBe(0);
    const rows = JSON.parse(c.out()) as Array<{ name: string; sends: string; verdicts: string[] }>;
    expect(rows.map((r) => r.name)).toEqual(CATALOGUE.map((t) => t.name));
    for (const r of rows) {
      expect(r.sends.length).toBeGreaterThan(10);
      expect(r.verdicts.slice(-5)).toEqual(['dropped', 'intercepted', 'reply-dropped', 'reset', 'inconclusive']);
    }
    const text = capture();
    await initiator(['list'], text.io);
    expect(text.out()).toContain('syn-unknown-option\n  sends:    a SYN with option kind 200');
  });

  it.each([
    [['run'], /give the responder to measure against: --responder HOST/],
    [['run', '--responder', '198.19.0.2', '--ports', '80,99999'], /--ports: "99999" is not a port number/],
    [['run', '--responder', '198.19.0.2', '--tests', 'syn-baseline,no-such-test'], /unknown test "no-such-test"/],
    [['run', '--responder', '198.19.0.2', '--concurrency', '0'], /--concurrency: "0" is not a positive whole number/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['run', '--responder', '198.19.0.2', '--tag', 'country'], /--tag country: write it as key=value/],
  ])('initiator %j is a usage error (exit 2) that says what is wrong', async (argv, message) => {
    const c = capture();
    expect(await initiator(argv, c.io)).toBe(2);
    expect(c.err()).toMatch(message);
  });

  it('responder rejects bad ports before touching the network', async () => {
    const c = capture();
    expect(await responder(['--ports', '0'], c.io)).toBe(2);
    expect(c.err()).toMatch(/--ports: "0" is not a port number/);
  });

  it('results inspect on a missing file is a usage error', async () => {
    const c = capture();
    expect(await results(['inspect', '/nonexistent.pcapng'], c.io)).toBe(2);
    expect(c.err()).toMatch(/cannot read \/nonexistent.pcapng: ENOENT/);
  });

  it('parses --tag key=value pairs', () => {
    expect(parseTags(['country=de', 'network=mobile lte'])).toEqual({ country: 'de', network: 'mobile lte' });
  });

  it('selects tests by name, in catalogue order', () => {
    expect(selectTests('nat,syn-baseline').map((t) => t.name)).toEqual(['syn-baseline', 'nat']);
    expect(selectTests('all')).toHaveLength(CATALOGUE.length);
  });
});
