import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store/store.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { rebuildIfStale, runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The image commands end to end through `node bin/kiln` on the compiled tree.
 * dist/ is rebuilt first when a source of these commands is newer than its output.
 */
const SOURCES = ['cli/commands/images', 'cli/commands/inspect', 'cli/commands/tag', 'cli/commands/rmi', 'cli/commands/save', 'cli/commands/load', 'cli/commands/prune', 'cli/commands/fsck', 'cli/store-from-options', 'store/store', 'store/gc', 'store/fsck', 'export/load', 'export/oci-archive', 'export/docker-archive'];

let dir: Awaited<ReturnType<typeof tempDir>>;
let root: string;

function kiln(args: string[], env: NodeJS.ProcessEnv = {}): Promise<KilnRun> {
  return runKiln(args, { env: { KILN_ROOT: root, ...env } });
}

beforeAll(async () => {
  await rebuildIfStale(SOURCES);
  dir = await tempDir('kiln-cli-');
  root = join(dir.path, 'root');
  const store = await Store.open(root);
  await makeBusyboxImage(store, 'localhost/busybox:latest');
  await store.close();
});
afterAll(async () => dir.cleanup());

describe('kiln image commands', () => {
  it('images lists names, --json gives fields', async () => {
    const r = await kiln(['images']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^REPOSITORY\s+TAG\s+DIGEST/);
    expect(r.stdout).toMatch(/localhost\/busybox\s+latest\s+[a-f0-9]{12}\s+linux\//);
    const j = JSON.parse((await kiln(['images', '--json'])).stdout) as Array<{ ref: string; size: number; digest: string }>;
    expect(j).toHaveLength(1);
    expect(j[0]!.ref).toBe('localhost/busybox:latest');
    expect(j[0]!.size).toBeGreaterThan(500_000);
  });

  it('inspect shows digest, config, layers and history; --json the documents', async () => {
    const r = await kiln(['inspect', 'localhost/busybox']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Cmd:          ["sh"]');
    expect(r.stdout).toContain('PATH=/usr/local/sbin');
    expect(r.stdout).toMatch(/Layers \(1, /);
    expect(r.stdout).toContain('kiln test fixture: busybox-static');
    const j = JSON.parse((await kiln(['inspect', '--json', 'localhost/busybox:latest'])).stdout) as { descriptor: { digest: string }; config: { os: string }; layers: Array<{ diffID: string }> };
    expect(j.config.os).toBe('linux');
    expect(j.layers[0]!.diffID).toMatch(/^sha256:/);
    const byPrefix = JSON.parse((await kiln(['inspect', '--json', j.descriptor.digest.slice(7, 19)])).stdout) as { descriptor: { digest: string } };
    expect(byPrefix.descriptor.digest).toBe(j.descriptor.digest);
  });

  it('tag normalises names, rmi removes them; errors are one line with exit 1, usage errors exit 2', async () => {
    expect((await kiln(['tag', 'localhost/busybox:latest', 'busybox'])).code).toBe(0);
    const refs = (JSON.parse((await kiln(['images', '--json'])).stdout) as Array<{ ref: string }>).map((x) => x.ref);
    expect(refs).toContain('docker.io/library/busybox:latest');
    const rm = await kiln(['rmi', 'busybox']);
    expect(rm.stdout).toBe('Untagged: docker.io/library/busybox:latest\n');
    const missing = await kiln(['inspect', 'nope:1']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^kiln: image nope:1: not found in store .*\n$/);
    const usage = await kiln(['save', 'localhost/busybox']);
    expect(usage.code).toBe(2);
    const badFormat = await kiln(['save', 'localhost/busybox', '-o', join(dir.path, 'x.tar'), '--format', 'zip']);
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('save → load between stores, in both formats', async () => {
    for (const format of ['oci', 'docker']) {
      const file = join(dir.path, `saved-${format}.tar`);
      const s = await kiln(['save', 'localhost/busybox:latest', '-o', file, '--format', format]);
      expect(s.stderr).toBe('');
      const other = join(dir.path, `other-${format}`);
      const l = await kiln(['--root', other, 'load', '-i', file]);
      expect(l.stderr).toBe('');
      expect(l.stdout).toBe('Loaded image: localhost/busybox:latest\n');
      const a = JSON.parse((await kiln(['inspect', '--json', 'localhost/busybox:latest'])).stdout) as { layers: Array<{ diffID: string }>; config: unknown };
      const b = JSON.parse((await kiln(['--root', other, 'inspect', '--json', 'localhost/busybox:latest'])).stdout) as { layers: Array<{ diffID: string }>; config: unknown };
      expect(b.layers.map((x) => x.diffID)).toEqual(a.layers.map((x) => x.diffID));
      expect(b.config).toEqual(a.config);
    }
    const skopeo = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${join(dir.path, 'saved-docker.tar')}`], { encoding: 'utf8' })) as { Layers: string[] };
    expect(skopeo.Layers).toHaveLength(1);
  });

  it('fsck passes, then finds a corrupted blob; prune frees unreferenced blobs', async () => {
    const ok = await kiln(['fsck']);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout).toMatch(/: ok\n$/);
    const store = await Store.open(root);
    const img = await store.getImage('localhost/busybox:latest');
    const stray = await store.putBytes(Buffer.from('stray'));
    await store.close();
    const cfgPath = join(root, 'blobs', 'sha256', img.configDescriptor.digest.slice(7));
    const original = await readFile(cfgPath);
    await writeFile(cfgPath, Buffer.concat([original, Buffer.from(' ')]));
    const bad = await kiln(['fsck', '--json']);
    expect(bad.code).toBe(1);
    const report = JSON.parse(bad.stdout) as { problems: Array<{ kind: string; digest: string }> };
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'corrupt-blob', digest: img.configDescriptor.digest }));
    await writeFile(cfgPath, original);

    const p = await kiln(['prune']);
    expect(p).toMatchObject({ code: 0, stderr: '' });
    expect(p.stdout).toContain(`Deleted blob ${stray.digest}`);
    expect(existsSync(join(root, 'blobs', 'sha256', stray.digest.slice(7)))).toBe(false);
    expect(await kiln(['fsck'])).toMatchObject({ code: 0, stderr: '' });
  });

  it('every command has --help', async () => {
    for (const c of ['images', 'inspect', 'tag', 'rmi', 'save', 'load', 'prune', 'fsck']) {
      const r = await kiln([c, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: kiln ${c}`);
    }
  });
});
