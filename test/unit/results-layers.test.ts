/**
 * results/ by layer, as its imports show: read/ (queries, typed rows and data) and write/ (merge) never
 * render; render/ never reads the database (types of the data only); commands/ wire a command line to
 * one and the other; no SQL anywhere in results/ (it is in shared/store/).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', 'results');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Each import of a file: the module, and whether only types come from it (`import type`, or `type` before each name). */
function imports(path: string): Array<{ from: string; typeOnly: boolean }> {
  const text = readFileSync(path, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s+(type\s+)?(\{[^}]*\}|[\w*]+(?:\s+as\s+\w+)?)\s+from\s+'([^']+)';/gm)].map((m) => {
    const names = m[2].startsWith('{') ? m[2].slice(1, -1).split(',').map((n) => n.trim()).filter(Boolean) : [m[2]];
    return { from: m[3], typeOnly: m[1] !== undefined || names.every((n) => n.startsWith('type ')) };
  });
}

/** The code without its comments. */
const code = (path: string): string => readFileSync(path, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');

const layerOf = (path: string): string => relative(ROOT, path).split('/')[0];
const files = sources(ROOT).filter((f) => !relative(ROOT, f).startsWith('soak'));
const resolveFrom = (file: string, from: string): string => relative(ROOT, join(file, '..', from));

describe('results/ by layer', () => {
  it('has the layers', () => {
    expect(new Set(files.map(layerOf))).toEqual(new Set(['bin.ts', 'cli.ts', 'grouping.ts', 'verdicts.ts', 'read', 'write', 'render', 'commands']));
  });

  it.each(files.filter((f) => ['read', 'write'].includes(layerOf(f))).map((f) => [relative(ROOT, f), f]))('%s reads or writes, and renders nothing', (_name, file) => {
    for (const { from } of imports(file)) {
      expect(resolveFrom(file, from), from).not.toMatch(/^(render|commands)\//);
    }
  });

  it.each(files.filter((f) => layerOf(f) === 'render').map((f) => [relative(ROOT, f), f]))('%s renders, and reads nothing', (_name, file) => {
    for (const { from, typeOnly } of imports(file)) {
      const target = resolveFrom(file, from);
      expect(target, from).not.toMatch(/^commands\//);
      if (/^(read|write)\//.test(target) || /shared\/store/.test(from)) expect(typeOnly, `${from}: types only`).toBe(true);
    }
  });

  it.each(files.map((f) => [relative(ROOT, f), f]))('%s holds no SQL', (_name, file) => {
    expect(code(file)).not.toMatch(/\.prepare\s*[(<]|\.exec\s*\(|\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b/);
  });
});
