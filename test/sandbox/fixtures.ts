import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, chownSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Digest } from '../../src/image/digest.js';
import { sha256 } from '../../src/image/digest.js';
import type { BlobStore } from '../../src/store/types.js';
import { readMountinfo } from '../../src/sandbox/mount.js';
import { listContainers } from '../../src/sandbox/runtime.js';
import { listKilnCgroups } from '../../src/sandbox/cgroups.js';
import { runSandbox, type SandboxRequest } from '../../src/sandbox/sandbox.js';

/**
 * A busybox rootfs directory (a stand-in for a store snapshot): static
 * busybox with its applet links, passwd/group with root, nobody, app (1000)
 * and a supplementary group, /tmp 1777. No /proc, /sys, /dev, /run: the
 * runtime must create those mount points and the diff must leave them out.
 */
export function makeBusyboxRootfs(dir: string): string {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync('/usr/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(dir, 'bin', a));
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnobody:x:65534:\napp:x:1000:\nextra:x:2000:app\nother:x:2001:nobody,app\n');
  writeFileSync(join(dir, 'etc/keep'), 'lower\n');
  mkdirSync(join(dir, 'root'), { mode: 0o700 });
  mkdirSync(join(dir, 'home/app'), { recursive: true });
  chownSync(join(dir, 'home/app'), 1000, 1000);
  mkdirSync(join(dir, 'tmp'));
  chmodSync(join(dir, 'tmp'), 0o1777);
  return dir;
}

/** A minimal BlobStore in memory plus a root dir, so sandbox tests do not depend on the store's progress. */
export class MemoryStore implements BlobStore {
  readonly blobs = new Map<string, Buffer>();
  constructor(readonly root: string) {}
  async hasBlob(d: Digest): Promise<boolean> {
    return this.blobs.has(d);
  }
  async blobSize(d: Digest): Promise<number | undefined> {
    return this.blobs.get(d)?.length;
  }
  async writeBlob(data: Readable | AsyncIterable<Uint8Array>): Promise<{ digest: Digest; size: number }> {
    const parts: Buffer[] = [];
    for await (const c of data) parts.push(Buffer.from(c as Uint8Array));
    return this.putBytes(Buffer.concat(parts));
  }
  async putBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }> {
    const digest = sha256(bytes);
    this.blobs.set(digest, Buffer.from(bytes));
    return { digest, size: bytes.length };
  }
  openBlob(d: Digest): Readable {
    return Readable.from([this.blobs.get(d) ?? Buffer.alloc(0)]);
  }
  async readBlob(d: Digest): Promise<Buffer> {
    const b = this.blobs.get(d);
    if (!b) throw new Error(`no blob ${d}`);
    return b;
  }
  blobPath(d: Digest): string {
    return join(this.root, 'blobs', d);
  }
}

export interface TestEnv {
  base: string;
  root: string;
  lower: string;
  store: MemoryStore;
  cleanup(): void;
}

export function makeEnv(): TestEnv {
  const base = mkdtempSync(join(tmpdir(), 'kiln-sbx-'));
  const lower = makeBusyboxRootfs(join(base, 'lower'));
  const root = join(base, 'root');
  mkdirSync(root);
  return { base, root, lower, store: new MemoryStore(root), cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

/** Paths and contents of an uncompressed tar, for assertions. */
export function tarEntries(tar: Buffer): Array<{ path: string; type: string; size: number; data: Buffer }> {
  const out: Array<{ path: string; type: string; size: number; data: Buffer }> = [];
  let off = 0;
  let paxPath: string | undefined;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const prefix = h.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8);
    const type = String.fromCharCode(h[156] ?? 48);
    const data = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m) paxPath = m[1];
      continue;
    }
    const path = paxPath ?? (prefix ? `${prefix}/${name}` : name);
    paxPath = undefined;
    out.push({ path: path.replace(/\/$/, ''), type, size, data: Buffer.from(data) });
  }
  return out;
}

export async function gunzipIfNeeded(b: Buffer): Promise<Buffer> {
  if (b[0] !== 0x1f || b[1] !== 0x8b) return b;
  const { gunzipSync } = await import('node:zlib');
  return gunzipSync(b);
}

/** What a finished RUN must not leave behind. */
export async function leftovers(root: string): Promise<{ mounts: string[]; containers: string[]; tmp: string[]; cgroups: string[] }> {
  const mounts = readMountinfo().map((m) => m.mountPoint).filter((p) => p.startsWith(root));
  const containers = (await listContainers()).filter((c) => c.startsWith('kiln-'));
  const tmp = await readdir(join(root, 'tmp')).catch(() => [] as string[]);
  return { mounts, containers, tmp, cgroups: listKilnCgroups() };
}

export async function readText(p: string): Promise<string> {
  return readFile(p, 'utf8');
}

/**
 * Runs a shell script as a RUN on the test rootfs, stdout and stderr in one
 * stream (in order), with the given network mode unless `extra` says otherwise.
 */
export async function runScript(env: TestEnv, network: SandboxRequest['network'], script: string, extra: Partial<SandboxRequest> = {}): Promise<{ exitCode: number; out: string }> {
  const lines: string[] = [];
  const r = await runSandbox({
    storeRoot: env.root,
    lowerdirs: [env.lower],
    args: ['/bin/sh', '-c', `exec 2>&1; ${script}`],
    env: [],
    workdir: '/',
    network,
    onOutput: (_s, l) => lines.push(l),
    ...extra,
  });
  return { exitCode: r.exitCode, out: lines.join('\n') };
}
