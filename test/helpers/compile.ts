import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './temp-dir.js';

const REPO = resolve(import.meta.dirname, '..', '..');

/**
 * Compiles the given src/ modules (and what they import) to plain JS in a temp
 * dir, so a test can run them in child processes (concurrency across
 * processes, SIGKILL) without depending on the whole tree's build.
 * Returns the compiled path of each entry, in order.
 */
export async function compileForChildren(entries: string[]): Promise<{ dir: string; modules: string[]; cleanup: () => Promise<void> }> {
  const t = await tempDir('kiln-compiled-');
  const out = join(t.path, 'out');
  // type errors elsewhere in the tree do not stop tsc from emitting; a missing output does fail below
  await promisify(execFile)(
    join(REPO, 'node_modules', '.bin', 'tsc'),
    ['--ignoreConfig', '--outDir', out, '--rootDir', join(REPO, 'src'), '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--skipLibCheck', '--types', 'node', '--declaration', 'false', ...entries.map((e) => join(REPO, e))],
    { cwd: REPO },
  ).catch(() => undefined);
  await writeFile(join(t.path, 'package.json'), '{"type":"module"}\n');
  await symlink(join(REPO, 'node_modules'), join(t.path, 'node_modules'));
  const modules = entries.map((e) => join(out, e.replace(/^src\//, '').replace(/\.ts$/, '.js')));
  for (const m of modules) {
    if (!existsSync(m)) {
      await t.cleanup();
      throw new Error(`tsc produced no ${m}`);
    }
  }
  return { dir: out, modules, cleanup: t.cleanup };
}
