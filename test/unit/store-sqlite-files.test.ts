// The embedded store's files hold every audited request: folder 0700, database and its -wal/-shm 0600
// (issue #12 item 6), whatever the process umask would have given them.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createStore } from '../../packages/gateway/src/store/index.js';

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

test(
  'a new sqlite store creates its folder 0700 and hoopgate.db, -wal, -shm 0600',
  { skip: process.platform === 'win32' },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'hoop-perms-'));
    const previous = process.umask(0o022);
    try {
      const file = join(root, 'data', 'hoopgate.db');
      const store = await createStore(`sqlite:${file}`, { replicaId: 'r1' });
      try {
        await store.audit.append([{ kind: 'request', time: Date.now(), eventId: 'e1', data: { path: '/api' } }]);
        assert.equal(mode(join(root, 'data')), '700');
        for (const name of ['hoopgate.db', 'hoopgate.db-wal', 'hoopgate.db-shm'])
          assert.equal(mode(join(root, 'data', name)), '600', name);
      } finally {
        await store.close();
      }
    } finally {
      process.umask(previous);
      rmSync(root, { recursive: true, force: true });
    }
  },
);

test('an existing database left 0644 is narrowed to 0600 at open', { skip: process.platform === 'win32' }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'hoop-perms-'));
  try {
    const file = join(root, 'hoopgate.db');
    writeFileSync(file, '');
    chmodSync(file, 0o644);
    const store = await createStore(`sqlite:${file}`, { replicaId: 'r1' });
    try {
      assert.equal(mode(file), '600');
    } finally {
      await store.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
