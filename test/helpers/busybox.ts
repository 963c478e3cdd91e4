import { execFileSync } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { emptyConfig, withEnv, DEFAULT_PATH, withLayer, patchContainerConfig, withCreated } from '../../src/image/config.js';
import { hostPlatform } from '../../src/image/platform.js';
import type { Descriptor, Platform } from '../../src/image/types.js';
import { MediaType } from '../../src/image/media-types.js';
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

/**
 * Debian's busybox-static for arm64, unpacked by scripts/setup-test-emulation.sh
 * (part of scripts/install-debian-packages.sh) from `apt-get download busybox-static:arm64`.
 */
export const BUSYBOX_ARM64_BIN = `${process.env['KILN_TEST_FOREIGN_DIR'] ?? '/var/lib/kiln-test'}/arm64/busybox`;

// the applet list comes from the binary itself (an arm64 one runs through the qemu-aarch64 handler the setup enables)
function applets(bin = BUSYBOX_BIN): string[] {
  const out = execFileSync(bin, ['--list'], { encoding: 'utf8' });
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
export function busyboxEntries(bin = BUSYBOX_BIN): LayerEntry[] {
  const size = statSync(bin).size;
  const entries: LayerEntry[] = [
    dir('bin'),
    { path: 'bin/busybox', type: 'file', mode: 0o755, uid: 0, gid: 0, mtime: MTIME, size, open: () => createReadStream(bin) },
    ...applets(bin).map((a): LayerEntry => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: MTIME, linkname: 'busybox' })),
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
export async function makeBusyboxImage(store: Store, ref: string | null = 'localhost/busybox:latest', opts: { platform?: Platform; bin?: string } = {}): Promise<Descriptor> {
  const layer = await writeLayer(busyboxEntries(opts.bin), store, { compression: 'gzip' });
  let config = emptyConfig(opts.platform ?? hostPlatform());
  config = withEnv(config, { PATH: DEFAULT_PATH });
  config = patchContainerConfig(config, { Cmd: ['sh'] });
  config = withCreated(config, CREATED);
  config = withLayer(config, layer.diffID, { created: CREATED, created_by: 'kiln test fixture: busybox-static' });
  const image = await store.putImage({ config, layers: [layer] }, ref !== null ? { ref } : {});
  return image.descriptor;
}

/**
 * The same busybox image for linux/amd64 (the host's busybox-static) and
 * linux/arm64 (Debian's arm64 busybox-static), as one OCI index tagged `ref`:
 * the multi-platform base the multi-platform tests build on.
 */
export async function makeBusyboxIndex(store: Store, ref = 'localhost/busybox-multi:latest'): Promise<Descriptor> {
  const amd64: Platform = { os: 'linux', architecture: 'amd64' };
  const arm64: Platform = { os: 'linux', architecture: 'arm64' };
  const manifests = [
    { ...(await makeBusyboxImage(store, null, { platform: amd64 })), platform: amd64 },
    { ...(await makeBusyboxImage(store, null, { platform: arm64, bin: BUSYBOX_ARM64_BIN })), platform: arm64 },
  ];
  const index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
  const desc = await store.putJSON(index, MediaType.OCI_INDEX);
  await store.setRef(ref, desc);
  return desc;
}

/**
 * Copies an image from the store to a registry with skopeo (for tests that
 * need an image in a registry before kiln's own push is used).
 */
export function pushWithSkopeo(store: Store, ref: string, dest: string): void {
  execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${store.root}:${ref}`, `docker://${dest}`], { stdio: ['ignore', 'ignore', 'pipe'] });
}
