import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { acquireCache } from '../../src/sandbox/cache-mounts.js';
import { storeLayout } from '../../src/store/layout.js';
import { makeStoreDirs } from '../../src/store/store-dirs.js';
import { Store } from '../../src/store/store.js';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The modes of what kiln creates in a store do not depend on the umask: a
 * umask of 000 makes nothing writable by others, a umask of 077 does not make
 * the OCI layout's directories private. Private directories (root, s/, tmp/,
 * cache-mounts/) are 0700, the others 0755, files 0644 (RUN logs 0600).
 */
const SOURCES = ['store/store', 'store/store-dirs', 'store/flock', 'store/verified-record', 'context/hash-cache', 'builder/executors'];
const PRIVATE = ['', 's', 'tmp', 'cache-mounts'];

let t: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => rebuildIfStale(SOURCES));
beforeEach(async () => {
  t = await tempDir('kiln-modes-');
});
afterEach(async () => t.cleanup());

/** Every directory and file kiln made (not the image file systems in s/<hex>/), relative to the root, with its mode. */
function modes(root: string): Map<string, { dir: boolean; mode: number }> {
  const out = new Map<string, { dir: boolean; mode: number }>();
  const walk = (p: string): void => {
    const st = lstatSync(p);
    const rel = relative(root, p);
    out.set(rel, { dir: st.isDirectory(), mode: st.mode & 0o7777 });
    if (st.isDirectory() && !/^s\/./.test(rel)) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(root);
  return out;
}

describe('store modes do not depend on the umask', () => {
  it('under umask 000 a build makes no directory or file writable by others', async () => {
    const ctx = join(t.path, 'ctx');
    mkdirSync(ctx);
    // over 1 MiB, so the store keeps a verified record of the blob (meta/verified/)
    writeFileSync(join(ctx, 'big'), randomBytes(2 * 1024 * 1024));
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY big /big\n');
    const root = join(t.path, 'store');
    const r = await runKiln(['--root', root, 'build', '-q', '-t', 'localhost/modes:1', ctx], { umask: '000' });
    expect(r.code, r.stderr).toBe(0);

    const all = modes(root);
    // what the finding named is among what is checked
    for (const p of ['cache', 'cache/records', 'cache/context-hashes', 'meta', 'meta/verified', 'tmp/partial', 'locks', 'blobs/sha256']) expect(all.get(p)?.dir, p).toBe(true);
    expect([...all.keys()].some((p) => /^cache\/context-hashes\/.+\.json$/.test(p))).toBe(true);
    expect([...all.keys()].some((p) => /^meta\/verified\/[a-f0-9]{64}$/.test(p))).toBe(true);
    expect([...all.keys()].some((p) => p.startsWith('locks/'))).toBe(true);
    const wrong = [...all].filter(([p, { dir, mode }]) => mode !== (dir ? (PRIVATE.includes(p) ? 0o700 : 0o755) : 0o644)).map(([p, { mode }]) => `${p || '.'} ${mode.toString(8)}`);
    expect(wrong).toEqual([]);
  });

  it('under umask 000 a cache mount, its lock and a log directory get explicit modes', async () => {
    const old = process.umask(0);
    try {
      const store = await Store.open(join(t.path, 'store'));
      try {
        const cache = await acquireCache(store.root, { id: '/root/.cache' });
        await cache.release();
        makeStoreDirs(store.layout, store.layout.logs);
        const all = modes(store.root);
        expect(all.get('cache-mounts')).toEqual({ dir: true, mode: 0o700 });
        expect(all.get('logs')).toEqual({ dir: true, mode: 0o755 });
        const locks = [...all].filter(([p]) => p.startsWith('cache-mounts/') && p.endsWith('.lock'));
        expect(locks.length).toBe(1);
        expect(locks[0]![1].mode).toBe(0o644);
      } finally {
        await store.close();
      }
    } finally {
      process.umask(old);
    }
  });

  it('under umask 077 the layout directories are still 0755, and an older kiln\'s 0777 directories are taken back at open', async () => {
    const root = join(t.path, 'store');
    const l = storeLayout(root);
    // as an older kiln left them under umask 000
    mkdirSync(l.cacheRecords, { recursive: true });
    mkdirSync(l.logs, { recursive: true });
    for (const d of [l.cache, l.cacheRecords, l.logs]) chmodSync(d, 0o777);
    const r = await runKiln(['--root', root, 'images'], { umask: '077' });
    expect(r.code, r.stderr).toBe(0);
    const all = modes(root);
    for (const p of ['blobs', 'blobs/sha256', 'cache', 'cache/records', 'logs', 'meta', 'locks', 'tmp/partial']) expect(all.get(p), p).toEqual({ dir: true, mode: 0o755 });
    for (const p of ['', 's', 'tmp']) expect(all.get(p), p || '.').toEqual({ dir: true, mode: 0o700 });
  });
});
