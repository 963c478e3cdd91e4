import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterAll, expect } from 'vitest';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isKilnError } from '../../src/errors/index.js';
import type { LayerEntry } from '../../src/layer/types.js';

const made: string[] = [];
// Registered in the suite of whichever test file imports these helpers.
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'kiln-copy-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export type Spec = Record<string, string | { dir: true; mode?: number } | { link: string } | { content: string; mode?: number; mtime?: number }>;

/** Builds a directory tree: "a/b.txt": "text", "d/": {dir:true}, "l": {link:"target"}. */
export function makeTree(root: string, spec: Spec): string {
  for (const [path, v] of Object.entries(spec)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    if (typeof v === 'string') writeFileSync(full, v);
    else if ('dir' in v) {
      mkdirSync(full, { recursive: true });
      if (v.mode !== undefined) chmodSync(full, v.mode);
    } else if ('link' in v) symlinkSync(v.link, full);
    else {
      writeFileSync(full, v.content);
      if (v.mode !== undefined) chmodSync(full, v.mode);
      if (v.mtime !== undefined) utimesSync(full, v.mtime, v.mtime);
    }
  }
  return root;
}

export interface Seen {
  type: LayerEntry['type'];
  mode: string;
  uid: number;
  gid: number;
  linkname?: string;
  content?: string;
  mtime: number;
}

export async function collect(entries: LayerEntry[]): Promise<Record<string, Seen>> {
  const out: Record<string, Seen> = {};
  for (const e of entries) {
    const s: Seen = { type: e.type, mode: e.mode.toString(8), uid: e.uid, gid: e.gid, mtime: e.mtime };
    if (e.linkname !== undefined) s.linkname = e.linkname;
    // the layer writer reads a host file from its path and anything else through open()
    if (e.sourcePath !== undefined) {
      s.content = (await readFile(e.sourcePath)).toString();
    } else if (e.open) {
      const chunks: Buffer[] = [];
      for await (const c of e.open()) chunks.push(c as Buffer);
      s.content = Buffer.concat(chunks).toString();
    }
    out[e.path] = s;
  }
  return out;
}

/** The code and message of the KilnError `p` rejects with; anything else fails the test. */
export async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isKilnError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a KilnError');
}

/** An entry as plain data: functions (openers, digest callbacks) reduced to whether they are there. */
function plain(e: LayerEntry): Record<string, unknown> {
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, typeof v === 'function' ? 'function' : v]));
}

/**
 * Plans the same copy twice and checks that the entries the layer writer gets (`layerEntries()`,
 * made while walking for a copy of one directory) are `entries`, field for field and in order,
 * or fail with the same error. Returns the first plan's entries.
 */
export async function plannedBothWays(plan: () => Promise<{ entries: LayerEntry[]; layerEntries(): Iterable<LayerEntry> }>): Promise<LayerEntry[]> {
  const listed = await plan();
  const walked = await plan();
  let entries: LayerEntry[];
  try {
    entries = listed.entries;
  } catch (e) {
    expect(() => [...walked.layerEntries()]).toThrow((e as Error).message);
    throw e;
  }
  expect([...walked.layerEntries()].map(plain)).toEqual(entries.map(plain));
  return entries;
}
