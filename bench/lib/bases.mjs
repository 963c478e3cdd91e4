// Base images for the bench Dockerfiles, made locally and pushed to the bench registry:
//   busybox:latest  — Debian's busybox-static as bin/busybox + applet symlinks, passwd/group, tmp 1777
//   debian:bookworm — `debootstrap --variant=minbase bookworm` as one layer (rootfs cached under bench/work/cache)
// Layers are written by GNU tar (sorted, numeric owners, mtime 0) and gzip-compressed with both
// digests computed in one pass; the result is an OCI image layout that skopeo copies to the registry.
// bases-kiln.mjs makes the same images with kiln's own library and is used first; this GNU tar path is
// its fallback (see the README's Benchmarks section).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, readdir, rename, rm, symlink, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import { must } from './proc.mjs';

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
// bump when the recipe changes, so cached layouts are rebuilt
const RECIPE = { busybox: 'busybox-v1', debian: 'debian-v1' };

function goArch() {
  return { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' }[process.arch] ?? process.arch;
}

function hashing(hash) {
  return new Transform({
    transform(chunk, _enc, cb) { hash.update(chunk); cb(null, chunk); },
  });
}

async function writeBlob(layout, data) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const hex = createHash('sha256').update(buf).digest('hex');
  await writeFile(join(layout, 'blobs', 'sha256', hex), buf);
  return { digest: `sha256:${hex}`, size: buf.length };
}

/** tar (GNU) of `entries` under `rootfs` → gzip → blob, returning {digest, size, diffID}. */
async function tarLayer(layout, rootfs, entries, extraTarArgs = []) {
  const tmp = join(layout, 'blobs', 'sha256', '.layer.tmp');
  const tar = spawn('tar', [
    '-C', rootfs, '--sort=name', '--numeric-owner', '--mtime=@0', '--format=gnu',
    ...extraTarArgs, '-cf', '-', '--', ...entries,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  tar.stderr.on('data', (d) => { stderr += d; });
  const exit = new Promise((r) => tar.on('close', r));
  const diff = createHash('sha256');
  const comp = createHash('sha256');
  let size = 0;
  const counter = new Transform({ transform(c, _e, cb) { size += c.length; comp.update(c); cb(null, c); } });
  await pipeline(tar.stdout, hashing(diff), createGzip({ level: 6 }), counter, createWriteStream(tmp));
  const code = await exit;
  if (code !== 0) throw new Error(`tar failed (${code}): ${stderr.trim().split('\n')[0]}`);
  const hex = comp.digest('hex');
  await rename(tmp, join(layout, 'blobs', 'sha256', hex));
  return { digest: `sha256:${hex}`, size, diffID: `sha256:${diff.digest('hex')}` };
}

async function writeLayout(layout, { layer, config, tag }) {
  const cfg = await writeBlob(layout, JSON.stringify({
    created: '1970-01-01T00:00:00Z',
    architecture: goArch(),
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: [layer.diffID] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'kiln bench: base image' }],
  }));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
  });
  const m = await writeBlob(layout, manifest);
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    }],
  }));
}

async function freshLayout(dir) {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
}

export function busyboxBinary() {
  for (const p of ['/usr/bin/busybox', '/bin/busybox']) if (existsSync(p)) return p;
  throw new Error('busybox-static is not installed (apt-get install busybox-static)');
}

/** OCI layout for busybox:latest under cacheDir (reused when the recipe is unchanged). */
export async function busyboxLayout(cacheDir, log) {
  const dir = join(cacheDir, 'oci-busybox');
  const marker = join(dir, '.recipe');
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === RECIPE.busybox) return { dir, tag: 'latest' };
  log?.('making busybox:latest from busybox-static');
  const rootfs = join(cacheDir, 'busybox-rootfs.tmp');
  await rm(rootfs, { recursive: true, force: true });
  for (const d of ['bin', 'etc', 'tmp', 'root', 'home/app']) await mkdir(join(rootfs, d), { recursive: true });
  const bb = busyboxBinary();
  await copyFile(bb, join(rootfs, 'bin', 'busybox'));
  await chmod(join(rootfs, 'bin', 'busybox'), 0o755);
  const list = (await must(bb, ['--list'])).output.split('\n').map((s) => s.trim()).filter(Boolean);
  for (const applet of list) {
    if (applet === 'busybox' || applet.includes('/')) continue;
    await symlink('busybox', join(rootfs, 'bin', applet));
  }
  await writeFile(join(rootfs, 'etc', 'passwd'), [
    'root:x:0:0:root:/root:/bin/sh',
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
    'app:x:1000:1000:app:/home/app:/bin/sh',
    '',
  ].join('\n'));
  await writeFile(join(rootfs, 'etc', 'group'), ['root:x:0:', 'nogroup:x:65534:', 'app:x:1000:', ''].join('\n'));
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await chmod(join(rootfs, 'root'), 0o700);
  await chown(join(rootfs, 'home', 'app'), 1000, 1000);
  await freshLayout(dir);
  const layer = await tarLayer(dir, rootfs, ['bin', 'etc', 'home', 'root', 'tmp']);
  await writeLayout(dir, { layer, tag: 'latest', config: { Env: [PATH_ENV], Cmd: ['sh'] } });
  await rm(rootfs, { recursive: true, force: true });
  await writeFile(marker, RECIPE.busybox);
  return { dir, tag: 'latest' };
}

/** `debootstrap --variant=minbase bookworm`, once, cached in cacheDir/debian-bookworm-rootfs. */
export async function ensureDebianRootfs(cacheDir, log) {
  const rootfs = join(cacheDir, 'debian-bookworm-rootfs');
  if (!existsSync(join(rootfs, 'usr', 'bin', 'bash'))) {
    if (!existsSync('/usr/sbin/debootstrap')) throw new Error('debootstrap is not installed (apt-get install -y debootstrap)');
    log?.(`debootstrap --variant=minbase bookworm (once; cached in ${rootfs}) …`);
    const tmp = `${rootfs}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await must('debootstrap', ['--variant=minbase', 'bookworm', tmp, DEBIAN_MIRROR], { log: join(cacheDir, 'debootstrap.log'), timeoutMs: 30 * 60e3 });
    await rm(rootfs, { recursive: true, force: true });
    await rename(tmp, rootfs);
  }
  return rootfs;
}

/** OCI layout for debian:bookworm; the debootstrap rootfs is made once and cached. */
export async function debianLayout(cacheDir, log) {
  const dir = join(cacheDir, 'oci-debian-bookworm');
  const marker = join(dir, '.recipe');
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === RECIPE.debian) return { dir, tag: 'bookworm' };
  const rootfs = await ensureDebianRootfs(cacheDir, log);
  log?.('making debian:bookworm layer from the debootstrap rootfs');
  await freshLayout(dir);
  const entries = (await readdir(rootfs)).sort();
  // downloaded packages, apt lists and device nodes are not part of an image
  // (--anchored/--wildcards must come before the --exclude options they govern)
  const layer = await tarLayer(dir, rootfs, entries, [
    '--anchored', '--wildcards',
    '--exclude=var/cache/apt/archives/*.deb', '--exclude=var/cache/apt/*.bin',
    '--exclude=var/lib/apt/lists/*_*', '--exclude=dev/*', '--exclude=proc/*', '--exclude=sys/*',
  ]);
  await writeLayout(dir, { layer, tag: 'bookworm', config: { Env: [PATH_ENV], Cmd: ['bash'] } });
  await writeFile(marker, RECIPE.debian);
  return { dir, tag: 'bookworm' };
}

/** skopeo copy oci:DIR:tag → docker://host/name:tag */
export async function pushLayout(layout, ref, logFile) {
  await must('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout.dir}:${layout.tag}`, `docker://${ref}`], { log: logFile, timeoutMs: 10 * 60e3 });
}

export const BASES = {
  busybox: { ref: 'busybox:latest', make: busyboxLayout },
  debian: { ref: 'debian:bookworm', make: debianLayout },
};

/** Which base images a Dockerfile needs (from its FROM lines). */
export function basesOf(dockerfileText) {
  const need = new Set();
  for (const m of dockerfileText.matchAll(/^\s*FROM\s+(?:--\S+\s+)*(\S+)/gim)) {
    if (/busybox/.test(m[1])) need.add('busybox');
    if (/debian/.test(m[1])) need.add('debian');
  }
  return [...need];
}
