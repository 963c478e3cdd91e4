import path from 'node:path';
import { KilnError } from '../errors/index.js';
import type { RunMount } from '../frontend/instructions.js';
import { hashSelection } from '../context/content-hash.js';
import { resolvePath } from '../context/fs-view.js';
import type { RunMountSpec } from '../sandbox/run-mounts.js';
import type { StepContext } from './step-context.js';
import { secretMount } from './run-secret.js';
import { sshMount } from './run-ssh.js';
import { monotonicMs } from '../events/index.js';

/**
 * `RUN --mount` → what goes into the cache key now (pushed to `inputs`) and a
 * function that makes the sandbox's plain mount spec when the step runs:
 * mount sources are materialised only then, so a cache hit never unpacks or
 * downloads them. Hashing context files for a bind mount adds to `hashed`.
 */
export async function runMount(mount: RunMount, ctx: StepContext, inputs: string[], hashed: { ms: number; any: boolean }, workdir: string): Promise<() => Promise<RunMountSpec>> {
  const m = withTarget(mount, workdir);
  switch (m.type) {
    case 'bind': {
      const source = m.source ?? '';
      if (m.from !== undefined) {
        const src = await ctx.resolveFrom(m.from);
        inputs.push(`bind:${m.target}:${src.key}:${source}`);
        // resolved inside the stage when the RUN runs (run-mounts pins it by descriptor): never on the host
        return async () => ({ type: 'bind', target: m.target, source: { root: await ctx.rootfsDir(src.layers), path: source, chroot: true, label: `stage ${m.from}` }, readwrite: !m.readonly });
      }
      const hashStart = monotonicMs();
      const c = ctx.context();
      // the key covers what the mount will show: a symlink is followed (inside the context) before hashing
      const rel = resolvePath(c, safeSub(source), { followFinal: true, what: source });
      inputs.push(`bind:${m.target}:${hashSelection(c, [rel === '' ? '.' : rel], ctx.hashes())}`);
      hashed.ms += monotonicMs() - hashStart;
      hashed.any = true;
      return async () => {
        // the context as BuildKit sends it: what .dockerignore excludes is not there (the walk above listed it all)
        const left = c.leftOutBeneath(rel);
        const mask = left && {
          dirs: left.dirs.map(({ path: p, node }) => ({ path: p, mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime })),
          hidden: left.entries,
        };
        return { type: 'bind', target: m.target, source: { root: c.root, path: rel, chroot: false, label: c.label }, readwrite: !m.readonly, ...(mask ? { mask } : {}) };
      };
    }
    case 'cache': {
      const src = m.from !== undefined ? await ctx.resolveFrom(m.from) : undefined;
      return async () => ({
        type: 'cache',
        target: m.target,
        // BuildKit's default id is the target as written, cleaned (before WORKDIR applies): "/c/" and "/c" share one cache
        id: m.id ?? path.posix.normalize(mount.target ?? m.target).replace(/(.)\/$/, '$1'),
        sharing: m.sharing,
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        readonly: m.readonly,
        ...(src
          ? {
              seed: { root: await ctx.rootfsDir(src.layers), path: m.source ?? '', chroot: true, label: `stage ${m.from}` },
              seedKey: `${src.key}:${safeSub(m.source ?? '')}`,
            }
          : {}),
      });
    }
    case 'tmpfs':
      return async () => ({ type: 'tmpfs', target: m.target, ...(m.size !== undefined ? { size: m.size } : {}) });
    case 'secret':
      return secretMount(m, ctx.policy.secrets, inputs);
    case 'ssh':
      return sshMount(m, ctx.policy.ssh);
  }
}

/**
 * A bind, cache or tmpfs mount's target relative to the RUN's working directory, as BuildKit resolves
 * it (a relative target was handed to the runtime as it was, which mounted it at the root). The root
 * itself is no target.
 */
function withTarget(m: RunMount, workdir: string): RunMount {
  if (m.type !== 'bind' && m.type !== 'cache' && m.type !== 'tmpfs') return m;
  const target = path.posix.join('/', m.target.startsWith('/') ? '' : workdir, m.target);
  if (target === '/') throw new KilnError('DOCKERFILE_PARSE', `invalid mount target "${m.target}": it is the root directory`);
  return target === m.target ? m : { ...m, target: target.length > 1 ? target.replace(/\/$/, '') : target };
}

/** A mount source as a clean relative path: `..` cannot climb above the root it is resolved in. */
function safeSub(p: string): string {
  const clean = path.posix.normalize(`/${p}`).slice(1);
  return clean.replace(/\/$/, '');
}
