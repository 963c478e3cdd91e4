// Base images made with kiln's own library (dist/store, dist/layer, dist/image), the same
// recipe as test/helpers/busybox.ts. Used in preference to the tar path of bases.mjs when
// dist/ has these modules; any failure falls back to the tar path.
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';

const MTIME = 0;
const CREATED = '1970-01-01T00:00:00Z';
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n';
// bump when the recipe changes
const RECIPE = { busybox: 'kiln-busybox-v1', debian: 'kiln-debian-v1' };

export function kilnLibraryAvailable(repoRoot) {
  return ['store/store.js', 'store/index.js', 'layer/index.js', 'image/config.js', 'image/platform.js']
    .every((p) => existsSync(join(repoRoot, 'dist', p)));
}

async function load(repoRoot) {
  const imp = (p) => import(pathToFileURL(join(repoRoot, 'dist', p)).href);
  const [store, layer, config, platform, walk] = await Promise.all([
    imp('store/index.js'), imp('layer/index.js'), imp('image/config.js'), imp('image/platform.js'),
    existsSync(join(repoRoot, 'dist', 'layer', 'walk.js')) ? imp('layer/walk.js') : {},
  ]);
  return { ...walk, ...store, ...layer, ...config, ...platform };
}

const dir = (path, mode = 0o755, uid = 0, gid = 0) => ({ path, type: 'directory', mode, uid, gid, mtime: MTIME });
const text = (path, content, mode = 0o644) => {
  const b = Buffer.from(content);
  return { path, type: 'file', mode, uid: 0, gid: 0, mtime: MTIME, size: b.length, open: () => Readable.from([b]) };
};

function busyboxEntries(k, bin) {
  const applets = execFileSync(bin, ['--list'], { encoding: 'utf8' }).split('\n').map((s) => s.trim())
    .filter((s) => s && s !== 'busybox' && /^[A-Za-z0-9._[-]+$/.test(s));
  const entries = [
    dir('bin'),
    { path: 'bin/busybox', type: 'file', mode: 0o755, uid: 0, gid: 0, mtime: MTIME, size: statSync(bin).size, open: () => createReadStream(bin) },
    ...applets.map((a) => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: MTIME, linkname: 'busybox' })),
    dir('etc'), text('etc/passwd', PASSWD), text('etc/group', GROUP),
    dir('home'), dir('home/app', 0o755, 1000, 1000), dir('root', 0o700), dir('tmp', 0o1777),
  ];
  return entries.sort((a, b) => k.comparePaths(a.path, b.path));
}

/** Leaves out downloaded packages, apt lists and the contents of dev/, proc/, sys/. */
async function* debianEntries(k, rootfs) {
  const skip = [/^(dev|proc|sys)\/./, /^var\/cache\/apt\/archives\/[^/]*\.deb$/, /^var\/cache\/apt\/[^/]*\.bin$/, /^var\/lib\/apt\/lists\/[^/]*_[^/]*$/];
  for await (const e of k.entriesFromDirectory(rootfs, { xattrs: true })) {
    if (!skip.some((re) => re.test(e.path))) yield e;
  }
}

async function makeImage(k, store, entries, { env, cmd, ref }) {
  const layer = await k.writeLayer(entries, store, { compression: 'gzip' });
  let config = k.emptyConfig(k.hostPlatform());
  config = k.withEnv(config, { PATH: k.DEFAULT_PATH });
  config = k.patchContainerConfig(config, { Cmd: cmd });
  config = k.withCreated(config, CREATED);
  config = k.withLayer(config, layer.diffID, { created: CREATED, created_by: 'kiln bench: base image' });
  if (env) config = k.withEnv(config, env);
  await store.putImage({ config, layers: [layer] }, { ref });
}

/**
 * A kiln store under cacheDir holding `bench/busybox:latest` (and `bench/debian:bookworm`
 * when asked), made once. Returns {busybox: {dir, tag}, debian?: {dir, tag}} for skopeo's
 * oci: transport.
 */
export async function kilnBaseLayouts(repoRoot, cacheDir, names, { busyboxBin, debianRootfs, log }) {
  const k = await load(repoRoot);
  const root = join(cacheDir, 'kiln-bases');
  const out = {};
  const todo = [];
  for (const n of names) {
    const marker = join(root, `.recipe-${n}`);
    const tag = n === 'busybox' ? 'bench/busybox:latest' : 'bench/debian:bookworm';
    out[n] = { dir: root, tag };
    if (!(existsSync(marker) && (await readFile(marker, 'utf8')) === RECIPE[n])) todo.push(n);
  }
  if (!todo.length) return out;
  const store = await k.Store.open(root);
  try {
    for (const n of todo) {
      log?.(`making ${n === 'busybox' ? 'busybox:latest' : 'debian:bookworm'} with kiln's store and layer writer`);
      if (n === 'busybox') {
        await makeImage(k, store, busyboxEntries(k, busyboxBin), { cmd: ['sh'], ref: out[n].tag });
      } else {
        await makeImage(k, store, debianEntries(k, debianRootfs), { cmd: ['bash'], ref: out[n].tag });
      }
      await writeFile(join(root, `.recipe-${n}`), RECIPE[n]);
    }
  } catch (e) {
    await store.close().catch(() => {});
    for (const n of todo) await rm(join(root, `.recipe-${n}`), { force: true });
    throw e;
  }
  await store.close();
  return out;
}
