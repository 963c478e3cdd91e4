import { mkdir, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { Store } from '../../src/store/store.js';
import { LayeredFs } from '../../src/context/layered-fs.js';
import { build } from '../../src/builder/build.js';
import type { BuildOptions, BuildResult } from '../../src/builder/options.js';
import type { BuildEvent } from '../../src/events/index.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { expectValidStore } from '../helpers/oci-validate.js';

export const BASE = 'localhost/busybox:latest';

/** A store root with the busybox base in it, and helpers to build into it and look inside images. */
export interface Bench {
  root: string;
  dir: string;
  /** Writes a context: `{ 'Dockerfile': '…', 'a/b.txt': '…' }`; `{content, mode}` sets the mode. */
  context(files: Record<string, string | { content: string; mode: number }>): Promise<string>;
  build(ctx: string, opts?: Partial<BuildOptions>): Promise<{ result: BuildResult; events: BuildEvent[] }>;
  /** The image's merged file system, read through its layer snapshots. */
  fs(ref: string): Promise<LayeredFs>;
  read(ref: string, file: string): Promise<string>;
  store(): Promise<Store>;
  /** Closes this process's handle on the store (an open store keeps other processes from sweeping tmp/). */
  release(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function bench(): Promise<Bench> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-build-'));
  const root = path.join(dir, 'root');
  let s: Store | undefined = await Store.open(root);
  await makeBusyboxImage(s, BASE);
  const open = async (): Promise<Store> => (s ??= await Store.open(root));
  let n = 0;
  const imageFs = async (ref: string): Promise<LayeredFs> => {
    const st = await open();
    const img = await st.getImage(ref);
    const dirs = await Promise.all(img.layers.map((l) => st.snapshotPath(l)));
    return new LayeredFs(dirs.reverse(), ref);
  };
  return {
    root,
    dir,
    async context(files) {
      const ctx = path.join(dir, `ctx-${n++}`);
      await mkdir(ctx, { recursive: true });
      for (const [name, v] of Object.entries(files)) {
        const p = path.join(ctx, name);
        await mkdir(path.dirname(p), { recursive: true });
        if (typeof v === 'string') await writeFile(p, v);
        else {
          await writeFile(p, v.content);
          await chmod(p, v.mode);
        }
      }
      return ctx;
    },
    async build(ctx, opts = {}) {
      const events: BuildEvent[] = [];
      const result = await build({ context: ctx, root, jobs: 2, onEvent: (e) => events.push(e), ...opts });
      return { result, events };
    },
    fs: imageFs,
    async read(ref, file) {
      const fs = await imageFs(ref);
      return text(fs.open(file.replace(/^\//, '')));
    },
    async store() {
      return open();
    },
    async release() {
      await s?.close();
      s = undefined;
    },
    async cleanup() {
      try {
        // every manifest, index and config the builds wrote passes the OCI schemas
        await expectValidStore(await open());
      } finally {
        await s?.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

export const cachedSteps = (events: BuildEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'step-cached' ? [e.step.text] : []));
export const executedSteps = (events: BuildEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'step-done' && (e.layer !== undefined || e.usage !== undefined) ? [e.step.text] : []));
export const ranSteps = (events: BuildEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'step-done' && e.usage !== undefined ? [e.step.text] : []));
