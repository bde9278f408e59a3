// The store entry point: picks the implementation from `audit.store`: `sqlite:PATH` (`sqlite::memory:`
// in tests) or a MongoDB connection string.
import { HoopError } from '../lib/errors.js';
import type { Store, StoreOptions } from './types.js';

export async function createStore(url: string, options: StoreOptions): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '')
      throw new HoopError('ERR_CONFIG', 'audit.store: "sqlite:" needs a file path, e.g. sqlite:./data/hoopgate.db');
    const { createSqliteStore } = await import('./sqlite/index.js');
    return createSqliteStore(path, options);
  }
  if (url.startsWith('mongodb://') || url.startsWith('mongodb+srv://')) {
    const { createMongoStore } = await import('./mongo/index.js');
    return createMongoStore(url, options);
  }
  throw new HoopError(
    'ERR_CONFIG',
    `audit.store: unsupported store "${url.split(':')[0] ?? url}"; use sqlite:PATH or mongodb://…`,
  );
}
export type * from './types.js';
