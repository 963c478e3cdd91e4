import { chmod, chown, copyFile, lstat, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../errors/index.js';
import { acquireCache, type AcquiredCache, type CacheSharing } from './cache-mounts.js';
import { mountOverlay, mountTmpfs } from './mount.js';
import type { OciMount } from './oci-spec.js';

/**
 * `RUN --mount=…` as plain data, sources already resolved to host paths by the
 * caller (the context dir, another stage's rootfs, an image snapshot, the
 * secret's bytes). Targets are absolute paths inside the container.
 */
export type RunMountSpec = BindMountSpec | CacheMountSpec | TmpfsMountSpec | SecretMountSpec | SshMountSpec | FileMountSpec;

export interface BindMountSpec {
  type: 'bind';
  target: string;
  /** Host file or directory. */
  source: string;
  /** `rw`: writable, but writes are discarded after the RUN (an overlay over the source). Default read-only. */
  readwrite?: boolean;
  /** With `readwrite`: write through to the source (`kiln run -v`), instead of discarding. */
  writeThrough?: boolean;
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
  /** Host directory (from=<stage|image> + source=<subpath>, resolved) whose contents seed a new cache. */
  seedFrom?: string;
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
  signal?: AbortSignal;
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
          let source = spec.source;
          const st = await lstat(source).catch(() => undefined);
          if (!st) throw new KilnError('RUN_FAILED', `bind mount source for ${spec.target} not found`);
          if (spec.readwrite && !spec.writeThrough) {
            const dir = join(ctx.scratch, `b${n}`);
            if (!st.isDirectory()) {
              await mkdir(dir, { recursive: true });
              await copyFile(source, join(dir, 'f'));
              source = join(dir, 'f');
            } else {
              await mkdir(join(dir, 'u'), { recursive: true });
              await mkdir(join(dir, 'w'), { recursive: true });
              await mkdir(join(dir, 'm'), { recursive: true });
              mountOverlay({ lowerdirs: [source], upperdir: join(dir, 'u'), workdir: join(dir, 'w'), target: join(dir, 'm'), emptyLower: source });
              source = join(dir, 'm');
            }
          }
          mounts.push({ destination: spec.target, type: 'bind', source, options: ['rbind', spec.readwrite ? 'rw' : 'ro', 'nosuid', 'nodev'] });
          break;
        }
        case 'cache': {
          const req = { id: spec.id ?? spec.target, sharing: spec.sharing ?? 'shared' } as Parameters<typeof acquireCache>[1];
          if (spec.mode !== undefined) req.mode = spec.mode;
          if (spec.uid !== undefined) req.uid = spec.uid;
          if (spec.gid !== undefined) req.gid = spec.gid;
          if (spec.seedFrom !== undefined) req.seedFrom = spec.seedFrom;
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
            value = await readFile(spec.path).catch(() => undefined);
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

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}
