import { KilnError } from '../errors/index.js';
import type { FsView } from '../context/fs-view.js';
import type { LayerEntry } from '../layer/types.js';
import { resolveChown } from './copy-chown.js';
import type { PreparedStep, StepContext, StepInput } from './step-context.js';
import { writeStepLayer } from './step-layer.js';

/**
 * WORKDIR as a file-system step: the config already names the new directory
 * (meta.ts); this writes the layer creating it when it is missing. Nothing
 * but the config goes into the key, so there are no inputs.
 */
export function prepareWorkdir(step: StepInput, ctx: StepContext): PreparedStep {
  const workdir = workdirOf(step);
  return {
    inputs: [],
    execute: async () => {
      const fs = step.layers.length ? await ctx.fsOf(step.layers, 'image') : undefined;
      const entries = await workdirEntries(workdir, fs, step.config.User, ctx.sourceDateEpoch);
      return entries.length ? { layer: await writeStepLayer(entries, ctx, step.snapshotWanted === true) } : {};
    },
  };
}

/** The stage's working directory, absolute; `/` when unset. */
export function workdirOf(step: Pick<StepInput, 'config'>): string {
  const w = step.config.WorkingDir;
  return w && w !== '' ? w : '/';
}

/** WORKDIR creates a missing directory (and parents) owned by the current USER, as BuildKit does. */
export async function workdirEntries(dir: string, fs: FsView | undefined, user: string | undefined, epoch: number | undefined): Promise<LayerEntry[]> {
  const rel = dir.replace(/^\/+/, '').replace(/\/+$/, '');
  if (rel === '') return [];
  const parts = rel.split('/');
  const entries: LayerEntry[] = [];
  const owner = user ? await resolveChown(user, fs).catch(() => ({ uid: 0, gid: 0 })) : { uid: 0, gid: 0 };
  const mtime = epoch ?? Math.floor(Date.now() / 1000);
  let missing = false;
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join('/');
    const node = missing ? undefined : fs?.lstat(p);
    if (node && node.type !== 'directory') {
      if (node.type === 'symlink') return []; // a symlinked WORKDIR is the RUN's business
      throw new KilnError('CONTEXT', `WORKDIR ${dir}: "/${p}" exists and is not a directory`);
    }
    if (node) {
      entries.push({ path: p, type: 'directory', mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime });
    } else {
      missing = true;
      entries.push({ path: p, type: 'directory', mode: 0o755, uid: owner.uid, gid: owner.gid, mtime });
    }
  }
  return missing ? entries : [];
}
