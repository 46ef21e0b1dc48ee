import { createRequire } from 'node:module';
import { MbprobeError } from '../wire/errors.js';

const loaded = new Map<string, unknown>();

/**
 * Loads a native addon on first use (so importing the shell never fails on a machine without it) and
 * turns a failed load into an error that says how to repair it.
 */
export function requireNative<T>(name: string, what: string, repair: string): T {
  if (!loaded.has(name)) {
    try {
      loaded.set(name, createRequire(import.meta.url)(name));
    } catch (err) {
      throw new MbprobeError('NATIVE_MODULE_MISSING', `The ${what} module "${name}" could not be loaded (${(err as Error).message}). ${repair}`, { cause: err });
    }
  }
  return loaded.get(name) as T;
}
