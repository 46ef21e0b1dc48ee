import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTestFile } from '../../initiator/test-file.js';

const dir = mkdtempSync(join(tmpdir(), 'mbprobe-testfile-'));
const write = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('--test-file', () => {
  it('loads the README example and gives it the test API', async () => {
    const test = await loadTestFile('examples/syn-experimental-option.mjs', ['syn-baseline']);
    expect(test.name).toBe('syn-experimental-option');
    expect(test.verdicts).toEqual(['passed', 'modified', 'removed']);
    // Its judge is pure and works on nothing-arrived observations like any other.
    expect(test.judge({ name: test.name, port: 80, local: { address: '', port: 0 }, remote: { address: '', port: 80 }, isn: 0, initiator: { sent: [], received: [] }, responder: undefined, notes: {} }).verdict).toBe('inconclusive');
  });

  it.each([
    ['broken.mjs', 'export default {', /cannot load it/],
    ['empty.mjs', 'export default 42;', /default export must be a test case/],
    ['incomplete.mjs', 'export default { name: "Bad Name", verdicts: [] };', /name must be lowercase.*sends must say.*verdicts must be.*run\(connection, context\) must be a function.*judge\(observations\) must be a function/],
    ['taken.mjs', 'export default () => ({ name: "syn-baseline", sends: "x", verdicts: ["ok"], run() {}, judge() {} });', /already a test in the catalogue/],
    ['token.mjs', 'export default () => ({ name: "syn-token", sends: "x", verdicts: ["ok"], carriesToken: true, run() {}, judge() {} });', /carriesToken, if given, must be "in-stream" or "before-close"/],
  ])('refuses %s, saying what is wrong', async (file, text, message) => {
    await expect(loadTestFile(write(file, text), ['syn-baseline'])).rejects.toThrow(message);
  });
});
