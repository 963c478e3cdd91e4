import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import { executeRun } from '../../src/steps/run.js';
import type { Store } from '../../src/store/store.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { tempStore } from '../helpers/temp-dir.js';
import { leftovers } from './fixtures.js';

/** The sandbox on the real store: snapshots as lowers, layers as blobs, and the `kiln run` command. */
let store: Store;
let cleanup: () => Promise<void>;
const REF = 'localhost/busybox:latest';
const out = mkdtempSync(join(tmpdir(), 'kiln-run-out-'));
chmodSync(out, 0o777); // the command runs as app (1000)

beforeAll(async () => {
  ({ store, cleanup } = await tempStore());
  await makeBusyboxImage(store, REF);
});
afterAll(async () => {
  await cleanup();
  rmSync(out, { recursive: true, force: true });
});

describe('on the real store', () => {
  test('executeRun over image snapshots writes a gzip layer blob into the store', async () => {
    const image = await store.getImage(REF);
    const lowerdirs = [];
    for (const l of image.layers) lowerdirs.unshift(await store.snapshotPath(l));
    const r = await executeRun({
      store, lowerdirs, args: ['/bin/sh', '-c', 'mkdir -p /opt && echo built > /opt/x && rm /etc/group'], env: image.config.config?.Env ?? [],
      workdir: '/', network: 'none', mounts: [], layer: { compression: 'gzip' },
    });
    expect(r.layer?.mediaType).toMatch(/gzip/);
    expect(await store.hasBlob(r.layer!.digest)).toBe(true);
    const { gunzipSync } = await import('node:zlib');
    const tar = gunzipSync(await store.readBlob(r.layer!.digest)).toString('latin1');
    expect(tar).toContain('opt/x');
    expect(tar).toContain('etc/.wh.group');
    expect(tar).not.toContain('etc/hosts');
  });

  test('kiln run: image CMD/ENV, flags, volumes and the exit code', async () => {
    const prev = process.exitCode;
    try {
      const code = await main(['--root', store.root, 'run', '--rm', '--network', 'none', '-e', 'GREETING=hi', '-u', 'app', '-w', '/work', '-v', `${out}:/out`, REF,
        'sh', '-c', 'echo "$GREETING $(id -u) $(pwd) $(ls /sys/class/net)" > /out/result; exit 7']);
      expect(code).toBe(7);
      expect(readFileSync(join(out, 'result'), 'utf8')).toBe('hi 1000 /work lo\n');
      process.exitCode = undefined;
      expect(await main(['--root', store.root, 'run', '-v', `${out}:/out:ro`, REF, 'sh', '-c', 'echo x > /out/ro'])).toBe(1);
      process.exitCode = undefined;
      expect(await main(['--root', store.root, 'run', '--entrypoint', '/bin/true', REF])).toBe(0);
      expect(await main(['--root', store.root, 'run', 'localhost/nope:latest', 'true'])).toBe(1);
    } finally {
      process.exitCode = prev;
    }
    const l = await leftovers(store.root);
    expect(l.mounts).toEqual([]);
    expect(l.tmp.filter((n) => n.startsWith('r'))).toEqual([]);
  });
});
