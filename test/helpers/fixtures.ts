/**
 * Loader for test/fixtures/linux-segments.txt, the corpus of real Linux segments written by
 * scripts/capture-fixtures.sh. The parser is strict on purpose: a hand-edited or half-regenerated
 * fixture file must fail loudly here, not quietly lose or mangle a block.
 *
 * Format:
 *   - header: comment lines (`# ...`) and blank lines before the first block; one of them says
 *     `# N segments; ...`, and N must equal the number of blocks;
 *   - each block: a blank line, `## name`, exactly one `# <tcpdump -nn -v line>`, then one or more
 *     lines of lowercase hex (whole bytes, 64 hex digits per line except the last), then a blank
 *     line or the end of the file.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Fixture {
  name: string;
  /** tcpdump's description of the segment, without the leading `# `. */
  tcpdump: string;
  /** The IP packet as captured (the eth-padded block also keeps the Ethernet padding). */
  bytes: Uint8Array;
}

export const FIXTURE_PATH = fileURLToPath(new URL('../fixtures/linux-segments.txt', import.meta.url));
/** Real ICMP/ICMPv6 errors from a multi-hop lab (scripts/capture-icmp-fixtures.ts), in the same format. */
export const ICMP_FIXTURE_PATH = fileURLToPath(new URL('../fixtures/icmp-errors.txt', import.meta.url));

export class FixtureFormatError extends Error {
  constructor(source: string, line: number, message: string) {
    super(`${source}:${line}: ${message}`);
    this.name = 'FixtureFormatError';
  }
}

const HEX_LINE = /^(?:[0-9a-f]{2}){1,32}$/;
const NAME = /^[a-z0-9][a-z0-9-]*$/;

/** Parses the fixture text; throws FixtureFormatError naming the line of the first problem. */
export function parseFixtures(text: string, source = 'fixtures'): Fixture[] {
  const lines = text.split('\n');
  // A file ends with a newline, which split() turns into one final empty string.
  if (lines[lines.length - 1] === '') lines.pop();
  const fixtures: Fixture[] = [];
  const names = new Set<string>();
  let declaredCount: number | undefined;
  let i = 0;
  const fail = (message: string, at = i): never => {
    throw new FixtureFormatError(source, at + 1, message);
  };

  // Header.
  for (; i < lines.length && !lines[i].startsWith('## '); i++) {
    const line = lines[i];
    if (line === '') continue;
    if (!line.startsWith('#')) fail(`expected a header comment before the first "## name" line, got ${JSON.stringify(line.slice(0, 60))}`);
    const count = /^# (\d+) segments;/.exec(line);
    if (count) declaredCount = Number(count[1]);
  }

  // Blocks.
  while (i < lines.length) {
    const start = i;
    const title = lines[i];
    if (!title.startsWith('## ')) fail(`expected "## name", got ${JSON.stringify(title.slice(0, 60))}`);
    const name = title.slice(3);
    if (!NAME.test(name)) fail(`bad fixture name ${JSON.stringify(name)}`);
    if (names.has(name)) fail(`duplicate fixture name ${name}`);
    names.add(name);
    if (start > 0 && lines[start - 1] !== '') fail(`block ${name} is not preceded by a blank line`);
    i++;
    const comment = lines[i];
    if (comment === undefined || !comment.startsWith('# ') || comment.startsWith('## ')) fail(`block ${name}: expected one "# tcpdump line" after the name`);
    const tcpdump = comment.slice(2);
    if (!/^IP6? /.test(tcpdump)) fail(`block ${name}: the tcpdump line should start with "IP " or "IP6 "`);
    i++;
    let hex = '';
    let lastShort = false;
    while (i < lines.length && lines[i] !== '') {
      const line = lines[i];
      if (line.startsWith('## ')) fail(`block ${name} is not followed by a blank line`);
      if (line.startsWith('#')) fail(`block ${name}: comment line among the hex lines`);
      if (!HEX_LINE.test(line)) fail(`block ${name}: not a line of lowercase hex bytes: ${JSON.stringify(line.slice(0, 70))}`);
      if (lastShort) fail(`block ${name}: a short hex line in the middle of the block`, i - 1);
      lastShort = line.length < 64;
      hex += line;
      i++;
    }
    if (hex === '') fail(`block ${name}: no hex lines`);
    fixtures.push({ name, tcpdump, bytes: new Uint8Array(Buffer.from(hex, 'hex')) });
    // Exactly one blank line between blocks; no trailing blank lines at the end.
    if (i < lines.length) {
      i++;
      if (i >= lines.length) fail('blank line at the end of the file', i - 1);
      if (lines[i] === '') fail('two blank lines in a row');
    }
  }

  if (fixtures.length === 0) fail('no fixtures in the file');
  if (declaredCount === undefined) throw new FixtureFormatError(source, 1, 'the header does not say "# N segments;"');
  if (declaredCount !== fixtures.length) {
    throw new FixtureFormatError(source, 1, `the header says ${declaredCount} segments but the file holds ${fixtures.length} blocks`);
  }
  return fixtures;
}

let cache: Fixture[] | undefined;

/** All fixtures of test/fixtures/linux-segments.txt, in file order (fresh copies of the bytes each call). */
export function loadFixtures(): Fixture[] {
  cache ??= parseFixtures(readFileSync(FIXTURE_PATH, 'utf8'), 'test/fixtures/linux-segments.txt');
  return cache.map((f) => ({ ...f, bytes: f.bytes.slice() }));
}

let icmpCache: Fixture[] | undefined;

/** All fixtures of test/fixtures/icmp-errors.txt (each the whole IP packet of an error), in file order. */
export function loadIcmpFixtures(): Fixture[] {
  icmpCache ??= parseFixtures(readFileSync(ICMP_FIXTURE_PATH, 'utf8'), 'test/fixtures/icmp-errors.txt');
  return icmpCache.map((f) => ({ ...f, bytes: f.bytes.slice() }));
}

export function fixture(name: string): Fixture {
  const found = loadFixtures().find((f) => f.name === name);
  if (!found) throw new Error(`no fixture named ${name}`);
  return found;
}
