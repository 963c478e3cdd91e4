#!/usr/bin/env node
// Fails when the folders under src/ import each other in a cycle, or when a folder imports one
// its index.ts does not allow. Each folder is one concept: its index.ts opens with a paragraph
// saying what it owns, ending with a `May import: a/, b/.` line (or `May import: nothing under
// src/.`), which this script holds true. A cycle between two folders means neither can be
// understood, tested or replaced without the other. Every import counts: static, `export ... from`,
// dynamic `import()` and `import type` (a type-only cycle is still a design cycle).
//
//   node scripts/folder-deps.mjs [SRC_DIR]        exit 1 and one line per problem or cycle when there is one
//   node scripts/folder-deps.mjs --edges [SRC]    print the edges first, `folder -> folder (files)`, one a line
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const showEdges = args.includes('--edges');
const src = resolve(args.find((a) => !a.startsWith('--')) ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src'));

/**
 * src/a/b/c.ts -> 'a'. A file directly in src/ is its own node (index.ts, the public API, imports
 * most folders; version.ts is imported by many and imports nothing).
 */
function folderOf(file) {
  const rel = relative(src, file).split(sep);
  return rel.length > 1 ? rel[0] : rel[0].replace(/\.js$/, '.ts');
}

function* sourceFiles(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sourceFiles(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

// import x from '...', import type { } from '...', export { } from '...', export * from '...', import '...', import('...')
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm;
// comments may quote imports (examples in doc comments); strings never hold `from '../'` here
const COMMENT = /\/\*[\s\S]*?\*\/|(^|[^:'"`])\/\/.*$/gm;

/** folder -> Map(imported folder -> the files that make the edge) */
const edges = new Map();
for (const file of sourceFiles(src)) {
  const from = folderOf(file);
  const text = readFileSync(file, 'utf8').replace(COMMENT, '$1');
  for (const m of text.matchAll(SPECIFIER)) {
    const target = resolve(dirname(file), m[2]);
    if (!target.startsWith(src + sep)) continue;
    const to = folderOf(target);
    if (to === from) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    const out = edges.get(from);
    if (!out.has(to)) out.set(to, []);
    out.get(to).push(relative(src, file));
  }
}

/** Each folder's `May import:` line, or a problem when its index.ts lacks the opening paragraph. */
const problems = [];
for (const e of readdirSync(src, { withFileTypes: true })) {
  if (!e.isDirectory()) continue;
  const folder = e.name;
  let text;
  try {
    text = readFileSync(join(src, folder, 'index.ts'), 'utf8');
  } catch {
    problems.push(`${folder}/ has no index.ts saying what it owns and what it may import`);
    continue;
  }
  const opening = /^\/\*\*[\s\S]*?\*\//.exec(text)?.[0];
  const line = opening?.split('\n').find((l) => /^\s*\*\s*May import:/.test(l));
  if (!line) {
    problems.push(`${folder}/index.ts does not open with a comment ending in a "May import:" line`);
    continue;
  }
  const allowed = new Set([...line.replace(/.*May import:/, '').replace(/\([^)]*\)/g, '').matchAll(/([a-z][a-z-]*)\/|([a-z-]+\.ts)\b/g)].map((m) => m[1] ?? m[2]).filter((f) => f !== 'src'));
  for (const [to, file] of edges.get(folder) ?? []) {
    if (!allowed.has(to)) problems.push(`${folder}/ imports ${to}${to.endsWith('.ts') ? '' : '/'} (${file[0]}) but ${folder}/index.ts does not say it may`);
  }
}

if (showEdges) {
  for (const f of [...edges.keys()].sort()) for (const [to, files] of [...edges.get(f)].sort()) console.log(`${f} -> ${to} (${files.length})`);
}

// Tarjan's strongly connected components: every component with more than one folder holds a cycle.
let index = 0;
const stack = [];
const info = new Map();
const components = [];
function visit(v) {
  info.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of edges.get(v)?.keys() ?? []) {
    if (!info.has(w)) {
      visit(w);
      info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
    } else if (info.get(w).onStack) {
      info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
    }
  }
  if (info.get(v).low === info.get(v).index) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      info.get(w).onStack = false;
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1) components.push(comp);
  }
}
for (const v of edges.keys()) if (!info.has(v)) visit(v);

/** One concrete cycle inside a component, as folder -> folder (file) steps, found by a breadth-first walk back to its start. */
function cycleIn(comp) {
  const inComp = new Set(comp);
  const start = [...comp].sort()[0];
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!inComp.has(w)) continue;
      if (w === start) {
        const path = [v];
        for (let p = prev.get(v); p !== null; p = prev.get(p)) path.unshift(p);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return comp;
}

for (const p of problems) console.log(`folder-deps: ${p}`);
if (components.length === 0 && problems.length === 0) {
  console.log(`folder-deps: no import cycle, and every import allowed, between the ${new Set([...edges.keys(), ...[...edges.values()].flatMap((m) => [...m.keys()])]).size} folders of ${relative(process.cwd(), src) || '.'}`);
  process.exit(0);
}
for (const comp of components) {
  // `cycle: a <-> b`, then one concrete loop through it, an edge a line with the first file that makes it
  const cycle = cycleIn(comp);
  console.log(`cycle: ${[...comp].sort().join(' <-> ')}`);
  for (const [i, to] of cycle.slice(1).entries()) console.log(`  ${cycle[i]} -> ${to}: ${edges.get(cycle[i]).get(to)[0]}`);
}
process.exit(1);
