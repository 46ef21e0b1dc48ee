import { UsageError } from '../../shared/cli.js';
import { Store, StoreError } from '../../shared/store.js';

/**
 * Opens a results database read-only, as every results command but merge does; a missing file, or one
 * that is not an mbprobe database of this schema version, is a usage error naming it.
 */
export function openDatabase(path: string): Store {
  try {
    return Store.open(path, { readonly: true });
  } catch (error) {
    if (error instanceof StoreError && error.code === 'DATABASE_NOT_FOUND') {
      throw new UsageError('DATABASE_NOT_FOUND', `no mbprobe database at ${path}: check the path`);
    }
    if (error instanceof StoreError) throw new UsageError(error.code, error.message);
    throw error;
  }
}
