import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKiln } from '../helpers/kiln-cli.js';
import { VERSION } from '../../src/version.js';

/** The bundled CLI (scripts/bundle.mjs), made from dist/ by `npm test` before vitest runs. */
const REPO = path.resolve(import.meta.dirname, '..', '..');
let dir: string;
let entry: string;

/** The chunks a module of the bundle imports statically, transitively: what loading it reads. */
async function staticClosure(file: string, seen = new Set<string>()): Promise<Set<string>> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = await readFile(file, 'utf8');
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gms)) {
    await staticClosure(path.resolve(path.dirname(file), m[1]!), seen);
  }
  return seen;
}

beforeAll(async () => {
  // inside the checkout: the bundle finds koffi (kept external) in the repository's node_modules
  dir = await mkdtemp(path.join(REPO, 'dist', 'bundle-test-'));
  await promisify(execFile)(process.execPath, [path.join(REPO, 'scripts', 'bundle.mjs'), '--outdir', path.join(dir, 'bundle')]);
  entry = path.join(dir, 'bundle', 'run.mjs');
  await writeFile(entry, "import { main } from './main.js';\nprocess.exitCode = await main(process.argv.slice(2));\n");
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('bundled CLI', () => {
  it('prints the version, and its entry does not load the build, registry or sandbox code', async () => {
    const r = await runKiln(['--version'], { entry });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(VERSION);
    const loaded = await staticClosure(path.join(dir, 'bundle', 'main.js'));
    const text = (await Promise.all([...loaded].map((f) => readFile(f, 'utf8')))).join('\n');
    // esbuild marks each bundled module with a `// dist/<path>.js` comment
    expect(text).toContain('// dist/cli/main.js');
    for (const heavy of ['dist/solver/solver.js', 'dist/registry/client.js', 'dist/sandbox/sandbox.js', 'dist/layer/tar-writer.js']) {
      expect(text).not.toContain(`// ${heavy}`);
    }
  });

  it('imports no CommonJS package dynamically (its chunk would give only `default`, not the named exports Node gives)', async () => {
    const { readdir } = await import('node:fs/promises');
    const chunks = path.join(dir, 'bundle', 'chunks');
    const cjsOnly: string[] = [];
    for (const f of await readdir(chunks)) {
      if (/^export default require_\w+\(\);$/m.test(await readFile(path.join(chunks, f), 'utf8'))) cjsOnly.push(f);
    }
    expect(cjsOnly).toEqual([]);
  });

  it('builds an image, and a rebuild is served from the cache', async () => {
    const root = path.join(dir, 'root');
    const ctx = path.join(dir, 'ctx');
    await promisify(execFile)('mkdir', ['-p', ctx]);
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\nCOPY a.txt /b.txt\nLABEL from=bundle\n');
    await writeFile(path.join(ctx, 'a.txt'), 'bundled\n');
    const first = await runKiln(['--root', root, 'build', '--progress', 'plain', '-t', 'localhost/bundle/t:1', ctx], { entry });
    expect(first.stderr + first.stdout).toContain('2 steps ran, 0 cached');
    expect(first.code).toBe(0);
    const again = await runKiln(['--root', root, 'build', '--progress', 'plain', '-t', 'localhost/bundle/t:1', ctx], { entry });
    expect(again.code).toBe(0);
    expect(again.stderr + again.stdout).toContain('0 steps ran, 2 cached');
    const inspect = await runKiln(['--root', root, 'inspect', '--json', 'localhost/bundle/t:1'], { entry });
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toContain('"from": "bundle"');
  });
});
