import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { emptyConfig, withLayer } from '../../src/image/config.js';
import { hostPlatform } from '../../src/image/platform.js';
import { comparePaths, writeLayer } from '../../src/layer/index.js';
import { push } from '../../src/registry/index.js';
import { parseReference } from '../../src/registry/reference.js';
import { fsck } from '../../src/store/fsck.js';
import { liveLeftovers } from '../../src/sandbox/scratch.js';
import { Store } from '../../src/store/store.js';
import { busyboxEntries } from '../helpers/busybox.js';
import { rebuildIfStale } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import type { Digest } from '../../src/image/digest.js';

/**
 * Many kiln processes fetching the same large (resumable, >= 4 MiB) blob into
 * one store at once: every one must succeed, and the store must hold exactly
 * the right bytes afterwards — 8 concurrent `kiln pull`s and 4 concurrent
 * builds on a fresh store, 20 rounds each, fsck clean after every round.
 */
const reg = inject('registry');
const ROUNDS = 20;

const DIST = join(import.meta.dirname, '..', '..', 'dist');

/**
 * A separate node process that pulls or builds on request (one JSON line in,
 * one out), through kiln's compiled modules: each round is a real
 * cross-process race on one store without paying a process start per pull
 * (on a busy 2-core machine that start dominates).
 */
const WORKER = `
import { createInterface } from 'node:readline';
const { pull } = await import(${JSON.stringify(join(DIST, 'registry', 'pull.js'))});
const { build } = await import(${JSON.stringify(join(DIST, 'builder', 'build.js'))});
const { Store } = await import(${JSON.stringify(join(DIST, 'store', 'store.js'))});
for await (const line of createInterface({ input: process.stdin })) {
  const job = JSON.parse(line);
  try {
    let digest;
    if (job.kind === 'pull') {
      const store = await Store.open(job.root);
      try {
        digest = (await pull(store, job.ref)).manifestDigest;
      } finally {
        await store.close();
      }
    } else {
      digest = (await build({ context: job.context, root: job.root, tags: [job.tag], buildArgs: job.buildArgs, jobs: 1 })).manifestDigest;
    }
    process.stdout.write(JSON.stringify({ ok: true, digest }) + '\\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.stack || e) }) + '\\n');
  }
}
`;

interface Worker {
  run(job: Record<string, unknown>): Promise<{ ok: boolean; digest?: string; error?: string }>;
  stop(): void;
}

function startWorker(script: string): Worker {
  const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  const waiting: Array<(v: { ok: boolean; digest?: string; error?: string }) => void> = [];
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiting.shift()?.(JSON.parse(line) as { ok: boolean; digest?: string; error?: string });
    }
  });
  return {
    run: (job) => new Promise((resolve) => {
      waiting.push(resolve);
      child.stdin.write(`${JSON.stringify(job)}\n`);
    }),
    stop: () => child.stdin.end(),
  };
}

async function expectClean(root: string, blob: string): Promise<void> {
  const store = await Store.open(root);
  try {
    const report = await fsck(store, { leftovers: liveLeftovers });
    expect(report.problems).toEqual([]);
    expect(await store.hasBlob(blob as Digest)).toBe(true);
  } finally {
    await store.close();
  }
  expect(await readdir(join(root, 'tmp', 'partial'))).toEqual([]);
}

describe('concurrent downloads of one blob', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let ref: string;
  let manifestDigest: string;
  let bigLayer: string;
  let script: string;

  beforeAll(async () => {
    await rebuildIfStale(['registry/pull', 'store/partial-blob', 'store/store', 'cli/commands/pull', 'builder/build']);
    dir = await tempDir('kiln-concurrent-');
    script = join(dir.path, 'worker.mjs');
    await writeFile(script, WORKER);
    // busybox plus 5 MiB of random bytes in one gzip layer: incompressible, so the blob is over the 4 MiB resumable threshold
    const src = await Store.open(join(dir.path, 'src'));
    try {
      const big = randomBytes(5 * 1024 * 1024);
      const entries = [
        ...busyboxEntries(),
        { path: 'big.bin', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 1704067200, size: big.length, open: () => Readable.from([big]) },
      ].sort((a, b) => comparePaths(a.path, b.path));
      const layer = await writeLayer(entries, src, { compression: 'gzip' });
      expect(layer.size).toBeGreaterThan(4 * 1024 * 1024);
      bigLayer = layer.digest;
      const config = withLayer(emptyConfig(hostPlatform()), layer.diffID, { created_by: 'concurrent-pulls fixture' });
      ref = `${reg.anon}/security/concurrent-${process.pid}:base`;
      const image = await src.putImage({ config, layers: [layer] }, { ref: parseReference(ref).toString() });
      manifestDigest = image.descriptor.digest;
      await push(src, ref);
    } finally {
      await src.close();
    }
  });
  afterAll(async () => {
    await dir?.cleanup();
  });

  it(`8 concurrent pulls into one fresh store, ${ROUNDS} rounds`, async () => {
    const workers = Array.from({ length: 8 }, () => startWorker(script));
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const root = join(dir.path, `pull-${round}`);
        const runs = await Promise.all(workers.map((w) => w.run({ kind: 'pull', root, ref })));
        for (const r of runs) expect(r).toEqual({ ok: true, digest: manifestDigest });
        await expectClean(root, bigLayer);
      }
    } finally {
      for (const w of workers) w.stop();
    }
  }, 600_000);

  it(`4 concurrent builds from the same base on one fresh store, ${ROUNDS} rounds`, async () => {
    const context = join(dir.path, 'ctx');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), `FROM ${ref}\nARG N\nLABEL n=$N\n`);
    const workers = Array.from({ length: 4 }, () => startWorker(script));
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const root = join(dir.path, `build-${round}`);
        const runs = await Promise.all(workers.map((w, i) => w.run({ kind: 'build', root, context, tag: `localhost/concurrent:${i}`, buildArgs: { N: String(i) } })));
        for (const r of runs) {
          expect(r.error).toBeUndefined();
          expect(r.ok).toBe(true);
        }
        await expectClean(root, bigLayer);
      }
    } finally {
      for (const w of workers) w.stop();
    }
  }, 600_000);
});
