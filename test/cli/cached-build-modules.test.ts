import path from 'node:path';
import { build, type Metafile } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * Which modules a cached build evaluates is decided by static imports: in the bundle a module's
 * initialiser runs when a module that imports it statically runs, and `await import()` defers it
 * to the call. A cached build loads the builder and, to compute each RUN's key, steps/run.js; it
 * starts no container, writes no layer, exports nothing and makes no attestation, so none of the
 * modules behind those may be reachable from there through static imports alone.
 */
const REPO = path.resolve(import.meta.dirname, '..', '..');
const ROOTS = ['dist/builder/build.js', 'dist/steps/run.js'];
const COLD_ONLY = [
  /^dist\/sandbox\/(sandbox|runtime|seccomp|bundle|mount|cgroups)\.js$/,
  /^dist\/export\/(oci-archive|docker-archive|local|tar|archive-writer)\.js$/,
  /^dist\/attest\/(index|sbom-statement)\.js$/,
  /^dist\/sbom\//,
  /^dist\/layer\/write-layer\.js$/,
];

let reached: Set<string>;

beforeAll(async () => {
  // dist/ is what `npm test` compiles before vitest runs; the bundle is made from it the same way
  const r = await build({
    absWorkingDir: REPO,
    entryPoints: ROOTS,
    outdir: path.join(REPO, 'dist', 'closure-test-unused'),
    write: false,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    metafile: true,
    logLevel: 'silent',
  });
  reached = staticClosure(r.metafile, ROOTS);
}, 60_000);

function staticClosure(meta: Metafile, roots: string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const i of meta.inputs[f]?.imports ?? []) if (i.kind === 'import-statement' && !i.external) stack.push(i.path);
  }
  return seen;
}

describe('modules a cached build evaluates', () => {
  it('reach the key computation but not the sandbox, the layer writer, the exporters or the attestation and SBOM writers', () => {
    // the walk itself sees what a cached build needs
    for (const f of ['dist/builder/build.js', 'dist/steps/run.js', 'dist/cache/keys.js', 'dist/store/store.js']) expect(reached.has(f), f).toBe(true);
    const cold = [...reached].filter((f) => COLD_ONLY.some((re) => re.test(f))).sort();
    expect(cold).toEqual([]);
  });
});
