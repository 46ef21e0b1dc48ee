import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../shared/cli.js';
import { testApi } from './api.js';
import type { TestCase } from './test-case.js';

const NAME = /^[a-z][a-z0-9-]{1,62}$/;

/** Loads a user's test case module (`run --test-file`) and checks it has everything a test needs. */
export async function loadTestFile(path: string, taken: readonly string[]): Promise<TestCase> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(resolve(path)).href)) as { default?: unknown };
  } catch (error) {
    throw new UsageError('BAD_TEST_FILE', `--test-file ${path}: cannot load it: ${error instanceof Error ? error.message : String(error)}`);
  }
  const exported = module.default;
  const test = (typeof exported === 'function' ? (exported as (api: typeof testApi) => unknown)(testApi) : exported) as Partial<TestCase> | undefined;
  const problems: string[] = [];
  if (!test || typeof test !== 'object') problems.push('its default export must be a test case, or a function (api) => test case');
  else {
    if (typeof test.name !== 'string' || !NAME.test(test.name)) problems.push('name must be lowercase letters, digits and dashes, e.g. "syn-my-option"');
    else if (taken.includes(test.name)) problems.push(`name "${test.name}" is already a test in the catalogue`);
    if (typeof test.sends !== 'string' || test.sends.length === 0) problems.push('sends must say in one sentence what the test sends');
    if (!Array.isArray(test.verdicts) || test.verdicts.length === 0 || !test.verdicts.every((v) => typeof v === 'string')) problems.push('verdicts must be a non-empty list of strings, the first meaning "no interference"');
    if (typeof test.run !== 'function') problems.push('run(connection, context) must be a function');
    if (typeof test.judge !== 'function') problems.push('judge(observations) must be a function');
    if (test.carriesToken !== undefined && test.carriesToken !== 'in-stream' && test.carriesToken !== 'before-close') problems.push('carriesToken, if given, must be "in-stream" or "before-close"');
  }
  if (problems.length) throw new UsageError('BAD_TEST_FILE', `--test-file ${path}: ${problems.join('; ')}`);
  return test as TestCase;
}
