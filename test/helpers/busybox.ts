import { execFileSync } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { emptyConfig, withEnv, DEFAULT_PATH, withLayer, patchContainerConfig, withCreated } from '../../src/image/config.js';
import { hostPlatform } from '../../src/image/platform.js';
import type { Descriptor } from '../../src/image/types.js';
import { comparePaths, writeLayer } from '../../src/layer/index.js';
import type { LayerEntry } from '../../src/layer/types.js';
import type { Store } from '../../src/store/store.js';

/** Debian's busybox-static; the same binary on every test machine. */
export const BUSYBOX_BIN = '/usr/bin/busybox';
/** Fixed timestamps make the image byte-identical on every run. */
const MTIME = 1704067200; // 2024-01-01T00:00:00Z
const CREATED = '2024-01-01T00:00:00Z';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\napp:x:1000:\n';

function applets(): string[] {
  const out = execFileSync(BUSYBOX_BIN, ['--list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'busybox' && /^[A-Za-z0-9._[-]+$/.test(s));
}

function dir(path: string, mode = 0o755, uid = 0, gid = 0): LayerEntry {
  return { path, type: 'directory', mode, uid, gid, mtime: MTIME };
}

function text(path: string, content: string, mode = 0o644): LayerEntry {
  const b = Buffer.from(content);
  return { path, type: 'file', mode, uid: 0, gid: 0, mtime: MTIME, size: b.length, open: () => Readable.from([b]) };
}

/** The entries of the busybox layer, sorted as the layer writer wants them. */
export function busyboxEntries(): LayerEntry[] {
  const size = statSync(BUSYBOX_BIN).size;
  const entries: LayerEntry[] = [
    dir('bin'),
    { path: 'bin/busybox', type: 'file', mode: 0o755, uid: 0, gid: 0, mtime: MTIME, size, open: () => createReadStream(BUSYBOX_BIN) },
    ...applets().map((a): LayerEntry => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: MTIME, linkname: 'busybox' })),
    dir('etc'),
    text('etc/passwd', PASSWD),
    text('etc/group', GROUP),
    dir('home'),
    dir('home/app', 0o755, 1000, 1000),
    dir('root', 0o700),
    dir('tmp', 0o1777),
  ];
  return entries.sort((a, b) => comparePaths(a.path, b.path));
}

/**
 * Builds the test base image with kiln's own layer writer and store: busybox
 * plus applet symlinks, passwd/group with root, nobody and app (1000:1000),
 * /tmp, /root, /home/app; PATH and `Cmd ["sh"]`. Stored and tagged as `ref`.
 */
export async function makeBusyboxImage(store: Store, ref = 'localhost/busybox:latest'): Promise<Descriptor> {
  const layer = await writeLayer(busyboxEntries(), store, { compression: 'gzip' });
  let config = emptyConfig(hostPlatform());
  config = withEnv(config, { PATH: DEFAULT_PATH });
  config = patchContainerConfig(config, { Cmd: ['sh'] });
  config = withCreated(config, CREATED);
  config = withLayer(config, layer.diffID, { created: CREATED, created_by: 'kiln test fixture: busybox-static' });
  const image = await store.putImage({ config, layers: [layer] }, { ref });
  return image.descriptor;
}

/**
 * Copies an image from the store to a registry with skopeo (for tests that
 * need an image in a registry before kiln's own push is used).
 */
export function pushWithSkopeo(store: Store, ref: string, dest: string): void {
  execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${store.root}:${ref}`, `docker://${dest}`], { stdio: ['ignore', 'ignore', 'pipe'] });
}
