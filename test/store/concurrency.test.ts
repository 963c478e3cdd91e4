import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import type { Index } from '../../src/image/types.js';
import { REF_ANNOTATION, Store } from '../../src/store/store.js';
import { compileForChildren } from '../helpers/compile.js';
import { tempDir } from '../helpers/temp-dir.js';
import { makeBusyboxImage } from '../helpers/busybox.js';

/**
 * Several kiln processes on one root: these tests run real child processes on
 * the compiled store, because flock semantics only show across processes.
 */

let compiled: Awaited<ReturnType<typeof compileForChildren>>;
let scripts: string;

const WRITER = `
import { Store } from 'STORE';
const [root, prefix, n] = process.argv.slice(2);
const store = await Store.open(root);
const tasks = [];
for (let i = 0; i < Number(n); i++) {
  tasks.push((async () => {
    const d = await store.putJSON({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], annotations: { who: prefix + i } }, 'application/vnd.oci.image.index.v1+json');
    await store.setRef('localhost/' + prefix + ':' + i, d);
  })());
}
await Promise.all(tasks);
await store.close();
`;

const HOLDER = `
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from 'STORE';
const [root] = process.argv.slice(2);
const store = await Store.open(root);
writeFileSync(join(root, 'tmp', 'blob-inflight-' + process.pid), 'in flight');
process.stdout.write('ready\\n');
setInterval(() => {}, 1000);
`;

const LISTER = `
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from 'STORE';
const [root] = process.argv.slice(2);
const store = await Store.open(root);
process.stdout.write(JSON.stringify(readdirSync(join(root, 'tmp'))));
await store.close();
`;

const SNAPPER = `
import { Store } from 'STORE';
const [root, ref] = process.argv.slice(2);
const store = await Store.open(root);
const img = await store.getImage(ref);
const paths = await Promise.all(img.layers.map((l) => store.snapshotPath(l)));
process.stdout.write(JSON.stringify(paths));
await store.close();
`;

function run(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [join(scripts, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function startHolder(root: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [join(scripts, 'holder.mjs'), root], { stdio: ['ignore', 'pipe', 'inherit'] });
    c.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && resolve(c));
    c.on('error', reject);
    c.on('exit', (code) => reject(new Error(`holder exited early with ${code}`)));
  });
}

function killed(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    c.removeAllListeners('exit');
    c.on('exit', () => resolve());
    c.kill('SIGKILL');
  });
}

beforeAll(async () => {
  compiled = await compileForChildren(['src/store/store.ts']);
  scripts = compiled.dir;
  const store = compiled.modules[0]!;
  await writeFile(join(scripts, 'writer.mjs'), WRITER.replace('STORE', store));
  await writeFile(join(scripts, 'holder.mjs'), HOLDER.replace('STORE', store));
  await writeFile(join(scripts, 'lister.mjs'), LISTER.replace('STORE', store));
  await writeFile(join(scripts, 'snapper.mjs'), SNAPPER.replace('STORE', store));
});
afterAll(async () => compiled.cleanup());

describe('several processes on one store', () => {
  it('concurrent writers from four processes lose no ref and leave a valid index.json', async () => {
    const d = await tempDir();
    try {
      const root = join(d.path, 'root');
      // four processes racing from the very first open (layout creation, sweep, index updates)
      const runs = await Promise.all(['a', 'b', 'c', 'd'].map((p) => run('writer.mjs', [root, p, '25'])));
      expect(runs.map((r) => r.stderr).join('')).toBe('');
      expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0]);
      const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8')) as Index;
      const refs = index.manifests.map((m) => m.annotations?.[REF_ANNOTATION]);
      expect(refs).toHaveLength(100);
      expect(new Set(refs).size).toBe(100);
      const store = await Store.open(root);
      for (const r of await store.listRefs()) expect(await store.hasBlob(r.descriptor.digest)).toBe(true);
      await store.close();
      expect(await readdir(join(root, 'tmp'))).toEqual(['partial']);
    } finally {
      await d.cleanup();
    }
  });

  it('another process holding the store blocks exclusive use and the tmp sweep; SIGKILL releases it', async () => {
    const d = await tempDir();
    const root = join(d.path, 'root');
    const holder = await startHolder(root);
    try {
      const inflight = `blob-inflight-${holder.pid}`;
      // a second process opening the store must not sweep the holder's in-flight file
      const listed = await run('lister.mjs', [root]);
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toContain(inflight);

      const store = await Store.open(root);
      const err = await store.withExclusive(async () => 'alone').catch((e: unknown) => e);
      expect(isKilnError(err) && err.code).toBe('STORE_LOCKED');
      // still usable (the shared lock was taken back)
      await store.putBytes(Buffer.from('after a failed exclusive attempt'));
      await store.close();

      await killed(holder);
      // the lock died with the process: the next process is alone and sweeps
      const after = await run('lister.mjs', [root]);
      expect(JSON.parse(after.stdout)).toEqual(['partial']);
      const again = await Store.open(root);
      expect(await again.withExclusive(async () => 'alone')).toBe('alone');
      await again.close();
    } finally {
      if (holder.exitCode === null && holder.signalCode === null) await killed(holder);
      await d.cleanup();
    }
  });

  it('two processes asking for the same snapshot share one complete extraction', async () => {
    const d = await tempDir();
    try {
      const root = join(d.path, 'root');
      const store = await Store.open(root);
      await makeBusyboxImage(store, 'localhost/busybox:latest');
      await store.close();
      const runs = await Promise.all([run('snapper.mjs', [root, 'localhost/busybox:latest']), run('snapper.mjs', [root, 'localhost/busybox:latest'])]);
      for (const r of runs) expect(r.stderr).toBe('');
      const [a, b] = runs.map((r) => JSON.parse(r.stdout) as string[]);
      expect(a).toEqual(b);
      const snap = a![0]!;
      expect((await readdir(join(root, 's'))).sort()).toEqual([snap.slice(-12), `${snap.slice(-12)}.diffid`].sort());
      expect(await readFile(join(snap, 'etc', 'passwd'), 'utf8')).toContain('app:x:1000');
      expect(await readdir(join(root, 'tmp'))).toEqual(['partial']);
    } finally {
      await d.cleanup();
    }
  });
});
