// The bench Dockerfiles live in ../shared/bench (read in place, possibly read-only).
// Each build uses a private copy of the contexts in a temp work dir, where gen.sh runs.
import { existsSync } from 'node:fs';
import { appendFile, cp, readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { must } from './proc.mjs';

/** Order of the default run (cheap and most telling first). */
export const ORDER = ['copy-many', 'many-steps', 'multistage', 'cache-hit', 'debian-app', 'big-layer'];

export function sharedBenchDir(repoRoot) {
  return process.env.KILN_BENCH_DIR ? resolve(process.env.KILN_BENCH_DIR) : resolve(repoRoot, '..', 'shared', 'bench');
}

function parseEnv(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

/** Parse the "stresses" table of the shared README: name → description. */
function stressesOf(readme) {
  const out = {};
  for (const m of readme.matchAll(/^\|\s*([a-z][\w-]*)\s*\|\s*([^|]+?)\s*\|\s*$/gm)) out[m[1]] = m[2];
  return out;
}

/** The benches found in the shared dir: [{name, dir, dockerfile, env, stresses}] in ORDER. */
export async function listBenches(sharedDir) {
  if (!existsSync(sharedDir)) throw new Error(`bench Dockerfiles not found at ${sharedDir} (set KILN_BENCH_DIR)`);
  let readme = '';
  try { readme = await readFile(join(sharedDir, 'README.md'), 'utf8'); } catch { /* optional */ }
  const stresses = stressesOf(readme);
  const names = [];
  for (const n of await readdir(sharedDir)) {
    if (existsSync(join(sharedDir, n, 'Dockerfile')) && (await stat(join(sharedDir, n))).isDirectory()) names.push(n);
  }
  names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const out = [];
  for (const name of names) {
    const dir = join(sharedDir, name);
    const envText = existsSync(join(dir, 'bench.env')) ? await readFile(join(dir, 'bench.env'), 'utf8') : '';
    out.push({ name, dir, dockerfile: await readFile(join(dir, 'Dockerfile'), 'utf8'), env: parseEnv(envText), stresses: stresses[name] ?? '' });
  }
  return out;
}

function rank(n) {
  const i = ORDER.indexOf(n);
  return i < 0 ? ORDER.length : i;
}

/**
 * Copy the whole shared bench dir to `workDir` (gen.sh scripts may refer to their
 * siblings, as cache-hit's does), make it writable, and run GEN for the selected benches.
 */
export async function prepareContexts(sharedDir, workDir, benches, { log, logFile } = {}) {
  await cp(sharedDir, workDir, { recursive: true, verbatimSymlinks: true });
  await must('chmod', ['-R', 'u+w', workDir]);
  for (const b of benches) {
    const ctx = join(workDir, b.name);
    b.ctx = ctx;
    if (b.env.GEN) {
      const t = Date.now();
      await must('sh', ['-c', b.env.GEN], { cwd: ctx, log: logFile, timeoutMs: 10 * 60e3 });
      log?.(`generated context for ${b.name} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    }
    if (b.env.CHANGE_FILE && !existsSync(join(ctx, b.env.CHANGE_FILE))) {
      throw new Error(`${b.name}: CHANGE_FILE ${b.env.CHANGE_FILE} does not exist after generation`);
    }
  }
}

/** Modify CHANGE_FILE with content unique to this builder and run. */
export async function changeOneFile(bench, tag) {
  const f = join(bench.ctx, bench.env.CHANGE_FILE);
  await appendFile(f, `bench change ${tag} ${process.hrtime.bigint()}\n`);
}
