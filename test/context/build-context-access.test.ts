import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rebuildIfStale } from '../helpers/kiln-cli.js';
import { tempDir } from '../layer/helpers.js';

/**
 * The context is read through directory descriptors (src/fs/stat-at.ts). A lookup in a directory
 * needs only its search permission, as a lookup by path does; an entry the builder may not reach
 * fails with one line naming it. Permission checks do not apply to root, so the reads run in a
 * child process as nobody (65534), against the compiled tree in dist/ (built by `npm test`).
 */
const DIST = fileURLToPath(new URL('../../dist/context/build-context.js', import.meta.url));

let t: { path: string; cleanup: () => void };
let ctx: string;
// the child runs dist/: compiled from the sources under test, not left stale
beforeAll(() => rebuildIfStale(['context/build-context', 'fs/stat-at']));
beforeEach(() => {
  t = tempDir('kiln-ctx-access-');
  chmodSync(t.path, 0o755);
  ctx = join(t.path, 'ctx');
  mkdirSync(join(ctx, 'xonly'), { recursive: true });
  writeFileSync(join(ctx, 'xonly', 'f'), 'abc');
  symlinkSync('f', join(ctx, 'xonly', 'l'));
  mkdirSync(join(ctx, 'ronly'));
  writeFileSync(join(ctx, 'ronly', 'g'), 'g');
  chmodSync(join(ctx, 'xonly'), 0o311); // search, no read
  chmodSync(join(ctx, 'ronly'), 0o644); // read, no search
});
afterEach(() => t.cleanup());

function asNobody(body: string): { out: string; err: string } {
  const script = `import { BuildContext } from ${JSON.stringify(DIST)};\nconst ctx = BuildContext.open(${JSON.stringify(ctx)});\n${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
  return { out: r.stdout.trim(), err: r.stderr };
}

describe('build context access as another user', () => {
  it('finds a file and a symlink in an execute-only directory by name', () => {
    const r = asNobody("const n = ctx.lstat('xonly/f'); const l = ctx.lstat('xonly/l'); console.log(n?.type, n?.size, l?.type, l?.linkname);");
    expect(r.err).toBe('');
    expect(r.out).toBe('file 3 symlink f');
  });

  it('an entry below a directory it may not search fails with one line naming the entry and the cause', () => {
    const r = asNobody("try { ctx.lstat('ronly/g'); console.log('no error'); } catch (e) { console.log(e.code, e.message); }");
    expect(r.out).toBe('CONTEXT cannot read "ronly/g" in the build context: EACCES (permission denied)');
  });
});
