import { chmodSync, chownSync, closeSync, mkdirSync, openSync, statSync, type Stats, utimesSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../errors/index.js';
import { fdPath, openInRoot } from '../fs/open-in-root.js';
import { acquireCache, type AcquiredCache, type CacheSharing } from './cache-mounts.js';
import { mknod, S_IFCHR } from '../layer/device.js';
import { isMissingSecret, readSecretFile } from './secret-file.js';
import { MS_BIND, MS_REC, mount, mountOverlay, mountReadonlyLayers, mountTmpfs, readonlyBindOptions } from './mount.js';
import type { OciMount } from './oci-spec.js';

/**
 * `RUN --mount=…` as plain data. File-tree sources name a root and a path
 * inside it (resolved here, by the kernel, never leaving the root); secrets
 * and ssh sockets come from the command line. Targets are absolute paths
 * inside the container.
 */
export type RunMountSpec = BindMountSpec | CacheMountSpec | TmpfsMountSpec | SecretMountSpec | SshMountSpec | FileMountSpec;

/**
 * A file or directory inside a tree the Dockerfile's author may control: a
 * stage, an image, the build context. `path` is resolved inside `root` with
 * openInRoot, and the mount is made from the resulting descriptor, so no
 * symlink (present at the start or swapped in later) can point it at a host file.
 */
export interface RootedSource {
  /** Host directory that is the tree's root (kiln's own mount or snapshot, the context dir): trusted. */
  root: string;
  /** As the Dockerfile wrote it; "" is the root itself. */
  path: string;
  /** Image semantics (absolute links start at the root) or build-context semantics (escaping links refused). */
  chroot: boolean;
  /** Names the tree in errors: "build context", "stage build"… */
  label: string;
}

export interface BindMountSpec {
  type: 'bind';
  target: string;
  source: RootedSource;
  /** `rw`: writable, but writes are discarded after the RUN (an overlay over the source). Default read-only. */
  readwrite?: boolean;
  /** With `readwrite`: write through to the source (`kiln run -v`), instead of discarding. */
  writeThrough?: boolean;
  /** Entries of a directory source the mount must not show (not with `writeThrough`). */
  mask?: BindMask;
}

/**
 * What a bind of a directory hides: the build context's entries that `.dockerignore` excludes.
 * BuildKit sends a RUN only the context's files that are not ignored; kiln binds the context
 * directory itself, with an overlay above it whose top layer holds a whiteout for each of these.
 * Paths are relative to the bind's source.
 */
export interface BindMask {
  /** Directories on the way to a hidden entry ("" the source itself), parents first, with the metadata the merged view must show. */
  dirs: { path: string; mode: number; uid: number; gid: number; mtime: number }[];
  hidden: string[];
}

export interface CacheMountSpec {
  type: 'cache';
  target: string;
  /** Default: the target. */
  id?: string;
  sharing?: CacheSharing;
  mode?: number;
  uid?: number;
  gid?: number;
  readonly?: boolean;
  /** from=<stage|image> + source=<subpath>: the directory whose contents seed a new cache. */
  seed?: RootedSource;
  /** A stable name for the seed's content (the stage's cache key and the subpath): part of the cache's identity, as in BuildKit. */
  seedKey?: string;
}

export interface TmpfsMountSpec {
  type: 'tmpfs';
  target: string;
  /** Bytes; default: the kernel's (half of RAM). */
  size?: number;
}

export interface SecretMountSpec {
  type: 'secret';
  id: string;
  /** Default `/run/secrets/<id>` unless only `env` is given. */
  target?: string;
  /** Also (or only) expose the value as this environment variable. */
  env?: string;
  required?: boolean;
  /** Default 0400, 0:0. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** The secret's value, or a host file holding it; neither means "not provided". */
  data?: Uint8Array;
  path?: string;
}

export interface SshMountSpec {
  type: 'ssh';
  /** Default "default". */
  id?: string;
  /** Default `/run/buildkit/ssh_agent.<n>`. */
  target?: string;
  required?: boolean;
  /** Host agent socket (for id "default": $SSH_AUTH_SOCK); undefined means not provided. */
  socket?: string;
}

/** A generated read-only file, e.g. a heredoc script at /dev/pipes/EOF. */
export interface FileMountSpec {
  type: 'file';
  target: string;
  content: string | Uint8Array;
  /** Default 0755. */
  mode?: number;
}

export interface PreparedMounts {
  mounts: OciMount[];
  /** Extra environment (secret env=, SSH_AUTH_SOCK). */
  env: string[];
  /** Whether secret material lives in `secretDir` (the bundle then goes there too, off disk). */
  hasSecrets: boolean;
  release(): Promise<void>;
}

export interface MountContext {
  storeRoot: string;
  /** The RUN's scratch dir (host side, under <root>/tmp). */
  scratch: string;
  signal?: AbortSignal | undefined;
}

/** A tmpfs inside the scratch dir: secret bytes never reach the store's disk. */
export function secretDir(scratch: string): string {
  return join(scratch, 's');
}

export async function prepareMounts(specs: RunMountSpec[], ctx: MountContext): Promise<PreparedMounts> {
  const mounts: OciMount[] = [];
  const env: string[] = [];
  const caches: AcquiredCache[] = [];
  let secretsMounted = false;
  let n = 0;
  let sshCount = 0;
  const release = async (): Promise<void> => {
    for (const c of caches.splice(0)) await c.release();
  };
  try {
    for (const spec of specs) {
      n += 1;
      switch (spec.type) {
        case 'bind': {
          const pinned = join(ctx.scratch, `p${n}`);
          const st = pinSource(spec.source, pinned, `bind mount source for ${spec.target}`);
          let source = pinned;
          // the masked view's top layer: the source itself stays the lowest
          const lowers = spec.mask && !spec.writeThrough && st.isDirectory() ? [maskLayer(join(ctx.scratch, `k${n}`), spec.mask, spec.target), pinned] : [pinned];
          if (spec.readwrite && !spec.writeThrough) {
            const dir = join(ctx.scratch, `b${n}`);
            if (!st.isDirectory() && !st.isFile()) {
              throw new KilnError('RUN_FAILED', `bind mount source for ${spec.target} is neither a file nor a directory; it cannot be mounted rw`);
            }
            if (!st.isDirectory()) {
              await mkdir(dir, { recursive: true });
              await copyFile(source, join(dir, 'f'));
              source = join(dir, 'f');
            } else {
              await mkdir(join(dir, 'u'), { recursive: true });
              await mkdir(join(dir, 'w'), { recursive: true });
              await mkdir(join(dir, 'm'), { recursive: true });
              mountOverlay({ lowerdirs: lowers, upperdir: join(dir, 'u'), workdir: join(dir, 'w'), target: join(dir, 'm'), emptyLower: source });
              source = join(dir, 'm');
            }
          } else if (lowers.length > 1) {
            const view = join(ctx.scratch, `v${n}`);
            mkdirSync(view, { mode: 0o700 });
            mountReadonlyLayers(lowers, view);
            source = view;
          }
          mounts.push({ destination: spec.target, type: 'bind', source, options: ['rbind', ...(spec.readwrite ? ['rw'] : readonlyBindOptions()), 'nosuid', 'nodev'] });
          break;
        }
        case 'cache': {
          const req = { id: spec.id ?? spec.target, sharing: spec.sharing ?? 'shared' } as Parameters<typeof acquireCache>[1];
          if (spec.mode !== undefined) req.mode = spec.mode;
          if (spec.uid !== undefined) req.uid = spec.uid;
          if (spec.gid !== undefined) req.gid = spec.gid;
          if (spec.seed !== undefined) {
            const pinned = join(ctx.scratch, `p${n}`);
            if (!pinSource(spec.seed, pinned, `cache mount source for ${spec.target}`).isDirectory()) {
              throw new KilnError('RUN_FAILED', `cache mount source for ${spec.target} is not a directory in ${spec.seed.label}`);
            }
            req.seedFrom = pinned;
            req.seedKey = spec.seedKey ?? '';
          }
          const cache = await acquireCache(ctx.storeRoot, req, ctx.signal);
          caches.push(cache);
          mounts.push({ destination: spec.target, type: 'bind', source: cache.dir, options: ['rbind', spec.readonly ? 'ro' : 'rw', 'nosuid', 'nodev'] });
          break;
        }
        case 'tmpfs': {
          const options = ['nosuid', 'nodev'];
          if (spec.size !== undefined) options.push(`size=${spec.size}`);
          mounts.push({ destination: spec.target, type: 'tmpfs', source: 'tmpfs', options });
          break;
        }
        case 'secret': {
          let value: Uint8Array | undefined = spec.data;
          if (!value && spec.path) {
            value = await readSecretFile(spec.path, spec.id).catch((e: unknown) => {
              // a missing file is a secret not given; anything else (a FIFO, a device, too big) is an error
              if (isMissingSecret(e)) return undefined;
              throw e;
            });
          }
          if (!value) {
            if (spec.required) throw new KilnError('RUN_FAILED', `secret ${spec.id} is required but was not provided (--secret id=${spec.id},src=…)`);
            break;
          }
          if (spec.env) env.push(`${spec.env}=${Buffer.from(value).toString('utf8')}`);
          const target = spec.target ?? (spec.env ? undefined : `/run/secrets/${spec.id}`);
          if (!target) break;
          const dir = secretDir(ctx.scratch);
          if (!secretsMounted) {
            await mkdir(dir, { recursive: true });
            mountTmpfs(dir, { size: 16 * 1024 * 1024, mode: 0o700 });
            secretsMounted = true;
          }
          const file = join(dir, `secret${n}`);
          await writeFile(file, value, { mode: 0o600 });
          await chown(file, spec.uid ?? 0, spec.gid ?? 0);
          await chmod(file, spec.mode ?? 0o400);
          mounts.push({ destination: target, type: 'bind', source: file, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
          break;
        }
        case 'ssh': {
          const id = spec.id ?? 'default';
          if (!spec.socket) {
            if (spec.required) throw new KilnError('RUN_FAILED', `ssh agent ${id} is required but was not provided (--ssh ${id})`);
            break;
          }
          // only an agent's socket: a key file given here would be bind-mounted as it is, and the RUN could
          // read (and change) the private key, which BuildKit's agent never hands over
          const agent = statSync(spec.socket, { throwIfNoEntry: false });
          if (!agent?.isSocket()) {
            throw new KilnError('USAGE', `--ssh ${id}=${spec.socket}: ${agent ? 'not an SSH agent socket (kiln forwards an agent; key files are not supported: add the key to an agent with ssh-add and give its socket)' : 'no such socket'}`);
          }
          const target = spec.target ?? `/run/buildkit/ssh_agent.${sshCount}`;
          if (sshCount === 0) env.push(`SSH_AUTH_SOCK=${target}`);
          sshCount += 1;
          mounts.push({ destination: target, type: 'bind', source: spec.socket, options: ['rbind', 'rw', 'nosuid', 'nodev', 'noexec'] });
          break;
        }
        case 'file': {
          const dir = join(ctx.scratch, 'f');
          await mkdir(dir, { recursive: true });
          const file = join(dir, `f${n}`);
          await writeFile(file, spec.content);
          await chmod(file, spec.mode ?? 0o755);
          mounts.push({ destination: spec.target, type: 'bind', source: file, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
          break;
        }
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  // Parents before children, like BuildKit: a mount at /a/b must not be hidden by one at /a.
  mounts.sort((a, b) => depth(a.destination) - depth(b.destination));
  return { mounts, env, hasSecrets: secretsMounted, release };
}

/**
 * Resolves `src` inside its root and bind-mounts exactly the file found onto
 * `at` (created here, inside the RUN's private scratch dir), through the
 * descriptor's /proc/self/fd path. runc is then handed `at`: a mount point in
 * a directory only kiln writes, so nothing in the source tree, changed before
 * or during the build, can redirect the mount to a host file.
 */
function pinSource(src: RootedSource, at: string, what: string): Stats {
  let opened;
  try {
    opened = openInRoot(src.root, src.path, { chroot: src.chroot, label: src.label, what: src.path || '/' });
  } catch (e) {
    if (e instanceof KilnError) throw new KilnError(e.code === 'NOT_FOUND' ? 'RUN_FAILED' : e.code, `${what}: ${e.message}`, { cause: e });
    throw e;
  }
  try {
    if (opened.stat.isDirectory()) mkdirSync(at, { mode: 0o700 });
    else closeSync(openSync(at, 'wx', 0o600));
    mount(fdPath(opened.fd), at, 'none', MS_BIND | MS_REC, null);
  } finally {
    closeSync(opened.fd);
  }
  return opened.stat;
}

/**
 * The overlay layer that hides `mask.hidden`: a whiteout (a 0:0 character device, overlayfs's own
 * mark) for each, in directories that carry the source's owners, modes and times, since a merged
 * directory shows the topmost layer's. Written in the RUN's private scratch directory; every name
 * is one the source directory listed, so none holds a "/" or is "." or "..".
 */
function maskLayer(dir: string, mask: BindMask, target: string): string {
  mkdirSync(dir, { mode: 0o700 });
  for (const d of mask.dirs) if (d.path !== '') mkdirSync(join(dir, d.path), { mode: 0o700 });
  try {
    for (const h of mask.hidden) mknod(join(dir, h), S_IFCHR, 0, 0);
  } catch (e) {
    throw new KilnError('SANDBOX', `bind mount at ${target}: cannot hide the context's ignored entries: ${(e as Error).message}`, { cause: e });
  }
  // metadata last and deepest first: each whiteout and subdirectory made in a directory moved its mtime
  for (const d of [...mask.dirs].reverse()) {
    const p = join(dir, d.path);
    try {
      chownSync(p, d.uid, d.gid);
    } catch (e) {
      // an owner the rootless user namespace does not map: the directory shows that namespace's root
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
    chmodSync(p, d.mode);
    utimesSync(p, d.mtime, d.mtime);
  }
  return dir;
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}
