import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildContext } from '../../src/context/build-context.js';
import { MAX_IGNORE_FILE_BYTES, MAX_PATTERN_BYTES, MAX_PATTERNS, PatternMatcher, loadIgnoreFile, readIgnoreFile } from '../../src/context/dockerignore.js';
import { goMatch, WorkMeter } from '../../src/context/glob.js';
import { isKilnError } from '../../src/errors/index.js';
import { MAX_DOCKERFILE_BYTES } from '../../src/frontend/syntax-tree.js';
import { MAX_EXPANDED_WORD, MAX_PATTERN_WORK, processWord } from '../../src/frontend/shell-lex.js';
import { fsck } from '../../src/store/fsck.js';
import { liveLeftovers } from '../../src/sandbox/scratch.js';
import { Store } from '../../src/store/store.js';
import { KILN_BIN, rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Hostile inputs that used to cost minutes or all memory: a backtracking
 * .dockerignore line, a Dockerfile of doubling ENV values, an oversized
 * Dockerfile, and a long build that ignored SIGTERM. Work is asserted as
 * counted matcher steps, never as elapsed time.
 */

let dir: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  await rebuildIfStale(['frontend/syntax-tree', 'frontend/shell-lex', 'frontend/var-scope', 'solver/solver', 'builder/build', 'cli/main', 'cli/commands/build']);
  dir = await tempDir('kiln-patho-');
});
afterAll(async () => {
  await dir.cleanup();
});

function context(name: string, files: Record<string, string>): string {
  const root = join(dir.path, name);
  for (const [p, body] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), body);
  }
  return root;
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('.dockerignore matching is linear in pattern × path', () => {
  const pathological = {
    // `*a*a*…` against `aaa…` is exponential for a backtracking regexp
    stars: '*a'.repeat(MAX_PATTERN_BYTES / 2 - 1) + 'b',
    doubleStars: '**/'.repeat(Math.floor(MAX_PATTERN_BYTES / 3) - 1) + 'x',
    questions: '?*'.repeat(MAX_PATTERN_BYTES / 2),
    classes: '[a-z]*'.repeat(Math.floor(MAX_PATTERN_BYTES / 6)),
    anchors: '*^'.repeat(MAX_PATTERN_BYTES / 2),
  };
  const paths = [...Array(20).keys()].map((i) => `d${i}/${'a'.repeat(200)}`);

  for (const [name, line] of Object.entries(pathological)) {
    it(`${name}: a ${line.length}-byte line costs at most a constant × pattern × path steps`, () => {
      expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_PATTERN_BYTES);
      const m = new PatternMatcher(readIgnoreFile(line));
      for (const p of paths) m.excludes(p);
      const chars = paths.reduce((n, p) => n + p.length, 0);
      // every prefix of a path is matched once (the walk checks parents first)
      expect(m.meter.steps).toBeLessThanOrEqual(8 * line.length * (chars + paths.length * 4) + 8 * line.length);
    });
  }

  it('the classic backtracking case still matches correctly: a 256-star pattern against 300 characters', () => {
    const m = new PatternMatcher(['*a'.repeat(256) + 'b', '!*a'.repeat(1) + 'c']);
    expect(m.excludes('a'.repeat(300))).toBe(false);
    expect(m.excludes('a'.repeat(300) + 'b')).toBe(true);
    // 512 tokens × 301 characters, within a small constant
    expect(m.meter.steps).toBeLessThan(8 * 513 * 302 * 2);
  });

  it('a real context walk with a 64 KiB .dockerignore line finishes and excludes what it should', () => {
    const root = context('ignore-walk', {
      '.dockerignore': `${'*a'.repeat(MAX_PATTERN_BYTES / 2 - 2)}*\nskip-*\n`,
      [`keep/${'a'.repeat(100)}`]: 'x',
      'skip-me': 'x',
    });
    const ctx = BuildContext.open(root);
    expect(ctx.lstat('skip-me')).toBeUndefined();
    expect(ctx.lstat(`keep/${'a'.repeat(100)}`)?.type).toBe('file');
  });

  it('filepath.Match (COPY sources, pattern checks) walks a 64 KiB pattern in linear steps', () => {
    const meter = new WorkMeter();
    const pattern = '*a'.repeat(MAX_PATTERN_BYTES / 2);
    expect(goMatch(pattern, 'a'.repeat(255), meter)).toBe(false);
    expect(goMatch(pattern, 'a'.repeat(MAX_PATTERN_BYTES / 2), meter)).toBe(true);
    expect(meter.steps).toBeLessThan(4 * pattern.length * 2 + 4 * 256 + 4 * pattern.length);
  });
});

describe('.dockerignore caps', () => {
  it('a line over the pattern limit is refused with file and line', () => {
    const e = thrown(() => readIgnoreFile(`ok\n# comment\n${'a'.repeat(MAX_PATTERN_BYTES + 1)}\n`, 'ctx/.dockerignore'));
    expect(isKilnError(e) && e.format()).toBe(`ctx/.dockerignore:3: pattern of ${MAX_PATTERN_BYTES + 1} bytes is longer than the limit of ${MAX_PATTERN_BYTES}`);
  });
  it('more patterns than the limit are refused at the first one over', () => {
    const text = Array.from({ length: MAX_PATTERNS + 1 }, (_, i) => `f${i}`).join('\n');
    const e = thrown(() => readIgnoreFile(text));
    expect(isKilnError(e) && e.format()).toBe(`.dockerignore:${MAX_PATTERNS + 1}: more than ${MAX_PATTERNS} patterns`);
    expect(() => new PatternMatcher(text.split('\n'), '--exclude')).toThrow(/--exclude holds 10001 patterns; the limit is 10000/);
  });
  it('an ignore file over the size limit is refused before it is read', () => {
    const root = context('ignore-big', { '.dockerignore': '#'.repeat(MAX_IGNORE_FILE_BYTES + 1) });
    expect(() => loadIgnoreFile(join(root, '.dockerignore'))).toThrow(/larger than the limit of 1048576 for an ignore file/);
  });
});

describe('${VAR/pattern/…} substitutions do not backtrack', () => {
  it('a many-star pattern over a long value is linear (it never finished as a RegExp)', () => {
    const env = new Map([['L', 'a'.repeat(200_000)]]);
    expect(processWord('${L//*a*a*a*a*a*a*c/x}', env)).toBe('a'.repeat(200_000));
    expect(processWord('${L#*a*a*a*a*a*c}', env)).toBe('a'.repeat(200_000));
    expect(processWord('${L%%a*a*a*a*a*a}', env)).toBe('');
  });
  it('pattern × value beyond the work limit is a clear error', () => {
    const env = new Map([['L', 'a'.repeat(MAX_EXPANDED_WORD)]]);
    expect(() => processWord(`\${L//${'?'.repeat(100)}/x}`, env)).toThrow(
      `substitution pattern of 100 characters over a value of ${MAX_EXPANDED_WORD} is more work than the limit of ${MAX_PATTERN_WORK}`,
    );
  });
});

describe('Dockerfile caps through bin/kiln', () => {
  it('a Dockerfile over the size limit fails naming the file and the line that crosses the limit', async () => {
    const line = 'LABEL a=b\n';
    const count = Math.floor(MAX_DOCKERFILE_BYTES / line.length) + 10;
    const ctx = context('too-big', { Dockerfile: `FROM scratch\n${line.repeat(count)}` });
    const r = await runKiln(['--root', join(dir.path, 'root'), 'build', '--progress', 'plain', ctx]);
    expect(r.code).toBe(1);
    const crossing = Math.floor((MAX_DOCKERFILE_BYTES - 'FROM scratch\n'.length) / line.length) + 2;
    expect(r.stderr).toContain(`Dockerfile:${crossing}: Dockerfile is ${'FROM scratch\n'.length + count * line.length} bytes, larger than the limit of ${MAX_DOCKERFILE_BYTES}`);
  });

  it('40 lines of doubling ENV values stop at the word limit with file and line, not out of memory', async () => {
    const lines = ['FROM scratch', 'ENV A=0123456789abcdef'];
    for (let i = 0; i < 40; i++) lines.push('ENV A=$A$A');
    const ctx = context('doubling', { Dockerfile: `${lines.join('\n')}\n` });
    const r = await runKiln(['--root', join(dir.path, 'root'), 'build', '--progress', 'plain', ctx]);
    expect(r.code).toBe(1);
    // 16 × 2^16 = 1 Mi is the last value that fits: the 17th doubling (line 19) is refused
    expect(r.stderr).toContain(`Dockerfile:19: ENV: expanded word is ${2 * MAX_EXPANDED_WORD} characters, longer than the limit of ${MAX_EXPANDED_WORD}`);
  });

  it('many words each under the limit stop at the stage total', async () => {
    const lines = ['FROM scratch', 'ENV A=0123456789abcdef'];
    for (let i = 0; i < 15; i++) lines.push('ENV A=$A$A');
    // A is 512 Ki characters; 40 copies of it exceed the 16 Mi stage total
    for (let i = 0; i < 40; i++) lines.push(`LABEL l${i}=$A`);
    const ctx = context('stage-total', { Dockerfile: `${lines.join('\n')}\n` });
    const r = await runKiln(['--root', join(dir.path, 'root'), 'build', '--progress', 'plain', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Dockerfile:\d+: LABEL: the stage's ENV, LABEL and ARG values \(with those it inherits\) exceed the limit of 16777216 characters/);
  });

  it('a chain of FROM <stage> stages, each under the stage total alone, stops at it too: what a stage inherits counts', async () => {
    const lines: string[] = [];
    for (let k = 0; k < 4; k++) {
      lines.push(k === 0 ? 'FROM scratch AS s0' : `FROM s${k - 1} AS s${k}`, `ENV A${k}=0123456789abcdef`);
      for (let i = 0; i < 15; i++) lines.push(`ENV A${k}=$A${k}$A${k}`);
      // 512 Ki characters × 12 = 6 Mi a stage: three stages pass 16 Mi together
      for (let j = 0; j < 12; j++) lines.push(`ENV B${k}_${j}=$A${k}`);
    }
    const ctx = context('stage-chain', { Dockerfile: `${lines.join('\n')}\n` });
    const r = await runKiln(['--root', join(dir.path, 'root'), 'build', '--progress', 'plain', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Dockerfile:\d+: ENV: the stage's ENV, LABEL and ARG values \(with those it inherits\) exceed the limit of 16777216 characters/);
  });
});

describe('SIGTERM during a long CPU-bound build', () => {
  // ~200,000 LABEL lines, just under the Dockerfile cap: minutes of work before the fix, no I/O between steps
  function bigLabels(): string {
    const line = (i: number) => `LABEL l${i}=v${i}\n`;
    let text = 'FROM scratch\n';
    const parts: string[] = [text];
    let size = text.length;
    for (let i = 0; ; i++) {
      const l = line(i);
      if (size + l.length > MAX_DOCKERFILE_BYTES) break;
      parts.push(l);
      size += l.length;
    }
    text = parts.join('');
    return text;
  }

  interface Run {
    done: Promise<number>;
    stderr: () => string;
    waitFor: (re: RegExp) => Promise<void>;
    kill: () => void;
  }

  function start(root: string, ctx: string, args: string[] = []): Run {
    const child = spawn(process.execPath, [KILN_BIN, '--root', root, 'build', '--progress', 'plain', ...args, ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let exited = false;
    const waiters: Array<{ re: RegExp; resolve: () => void; reject: (e: Error) => void }> = [];
    child.stderr.on('data', (d: Buffer) => {
      // Match against the whole new chunk before trimming: under load one read can carry tens of kilobytes,
      // and trimming first could drop the very line a waiter is looking for.
      const seen = err + d.toString();
      for (const w of waiters.splice(0)) {
        if (w.re.test(seen)) w.resolve();
        else waiters.push(w);
      }
      // keep only the tail: the progress of 200,000 steps is large
      err = seen.slice(-20000);
    });
    const done = new Promise<number>((resolve) =>
      child.on('close', (code, signal) => {
        exited = true;
        // a build that ends before the awaited line can never show it: fail now, not at the test timeout
        for (const w of waiters.splice(0)) w.reject(new Error(`kiln exited (${code ?? signal}) before printing ${w.re}: ${err.slice(-2000)}`));
        resolve(code ?? (signal ? -1 : -2));
      }),
    );
    return {
      done,
      stderr: () => err,
      waitFor: (re) =>
        re.test(err)
          ? Promise.resolve()
          : exited
            ? Promise.reject(new Error(`kiln exited before printing ${re}`))
            : new Promise((resolve, reject) => waiters.push({ re, resolve, reject })),
      kill: () => child.kill('SIGTERM'),
    };
  }

  async function expectCleanStore(root: string): Promise<void> {
    const store = await Store.open(root);
    try {
      expect((await fsck(store, { leftovers: liveLeftovers })).problems).toEqual([]);
    } finally {
      await store.close();
    }
  }

  it('stops mid-solve with exit 130 and a consistent store', async () => {
    const root = join(dir.path, 'sigterm-root');
    const ctx = context('sigterm', { Dockerfile: bigLabels() });
    const run = start(root, ctx);
    // well inside the metadata steps: they never wait on I/O, so only the solver's own yields let the handler run
    await run.waitFor(/LABEL l1500=/);
    run.kill();
    // a build that ignored the signal would run all 200,000 steps and exit 0
    expect(await run.done).toBe(130);
    expect(run.stderr()).toContain('kiln: build interrupted (SIGTERM)');
    await expectCleanStore(root);
  });

  it('stops while a COPY writes its layer: the layer is not finished and no blob is published', async () => {
    const root = join(dir.path, 'sigterm-copy-root');
    const ctx = context('sigterm-copy', { Dockerfile: 'FROM scratch\nCOPY big /big\n' });
    // 4 GiB of holes: read as zeros at memory speed, stored as written (uncompressed), so the blob grows on disk
    const size = 4 * 1024 ** 3;
    execFileSync('truncate', ['-s', String(size), join(ctx, 'big')]);
    const run = start(root, ctx, ['--compression', 'uncompressed']);
    const tmp = join(root, 'tmp');
    // well into the layer: its blob is being written under tmp/
    const growing = async (): Promise<boolean> => {
      for (const n of await readdir(tmp).catch(() => [] as string[])) {
        const st = await stat(join(tmp, n)).catch(() => undefined);
        if (st?.isFile() && st.size >= 64 * 1024 ** 2) return true;
      }
      return false;
    };
    for (let i = 0; !(await growing()); i++) {
      if (i > 6000) throw new Error(`no layer blob grew under ${tmp}: ${run.stderr().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    run.kill();
    // before the fix the writer read all 4 GiB and published the blob, then the build stopped
    expect(await run.done).toBe(130);
    expect(run.stderr()).toContain('kiln: build interrupted (SIGTERM)');
    const blobs = join(root, 'blobs', 'sha256');
    const sizes = await Promise.all((await readdir(blobs)).map(async (n) => (await stat(join(blobs, n))).size));
    expect(sizes.filter((s) => s >= size)).toEqual([]);
    expect((await readdir(tmp)).filter((n) => n.startsWith('blob'))).toEqual([]);
    await expectCleanStore(root);
  });

  it('stops while parsing and planning with exit 130', async () => {
    const root = join(dir.path, 'sigterm-early-root');
    const ctx = context('sigterm-early', { 'file.txt': 'x' });
    // the Dockerfile is a FIFO: once kiln has read all of it, it is parsing, planning or checking (seconds of CPU)
    const fifo = join(dir.path, 'Dockerfile.fifo');
    execFileSync('mkfifo', [fifo]);
    const run = start(root, ctx, ['-f', fifo]);
    await writeFile(fifo, bigLabels());
    run.kill();
    expect(await run.done).toBe(130);
    expect(run.stderr()).toContain('kiln: build interrupted (SIGTERM)');
    expect(run.stderr()).not.toMatch(/\[stage-0 \d+\/\d+\] LABEL/);
    await expectCleanStore(root);
  });
});
