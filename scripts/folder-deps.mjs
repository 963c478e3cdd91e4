#!/usr/bin/env node
// Folder-level import graph of src/: each top-level folder is a node, an
// import (static, type-only, re-export or dynamic) from one folder into
// another an edge. Prints the cycles (strongly connected components of more
// than one folder) and exits 1 when there is any, so layering stays a DAG.
// Usage: node scripts/folder-deps.mjs [--edges] [srcDir]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const showEdges = args.includes('--edges');
const src = resolve(args.find((a) => !a.startsWith('--')) ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src'));

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function files(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** `image` for src/image/x.ts; a file directly in src/ (the package entry, version.ts) is its own node. */
function folderOf(file) {
  const rel = relative(src, file);
  return rel.includes(sep) ? rel.split(sep)[0] : rel.replace(/\.(ts|mts|js|mjs)$/, '.ts');
}

/** folder → folder → the files that make the edge */
export function folderGraph() {
  const edges = new Map();
  for (const f of files(src)) {
    const from = folderOf(f);
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const target = resolve(dirname(f), m[1]);
      if (!target.startsWith(src + sep)) continue;
      const to = folderOf(target);
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      const by = edges.get(from);
      if (!by.has(to)) by.set(to, []);
      by.get(to).push(relative(src, f));
    }
  }
  return edges;
}

/** Tarjan's strongly connected components; only those with a cycle. */
export function cycles(edges) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const nodes = new Set([...edges.keys(), ...[...edges.values()].flatMap((m) => [...m.keys()])]);
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of [...nodes].sort()) if (!idx.has(v)) visit(v);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const edges = folderGraph();
  if (showEdges) {
    for (const [from, by] of [...edges].sort()) for (const [to, fs] of [...by].sort()) console.log(`${from} -> ${to} (${fs.length})`);
  }
  const found = cycles(edges);
  for (const comp of found) {
    console.log(`cycle: ${comp.join(' <-> ')}`);
    for (const a of comp) for (const [b, fs] of edges.get(a) ?? []) if (comp.includes(b)) console.log(`  ${a} -> ${b}: ${[...new Set(fs)].join(', ')}`);
  }
  if (found.length) process.exit(1);
  console.log('no folder-level import cycle');
}
