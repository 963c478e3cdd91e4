// Figures to compare against: the reference table of ../shared/bench/README.md (BuildKit
// and Buildah measured on a machine of this kind) and the goals of issue 7.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const PHASES = ['cold', 'warm', 'onefile'];
export const PHASE_LABEL = { cold: 'cold', warm: 'warm', onefile: '1-file', buildPush: 'build+push' };

/** Issue 7 "Performance" goals, seconds (and the memory cap). */
export const GOALS = {
  'copy-many': { cold: 3, warm: 0.3, onefile: 3 },
  'big-layer': { cold: 5.5, warm: 0.2, onefile: 0.3, buildPush: 15 },
  multistage: { cold: 6.5, warm: 0.2, onefile: 4 },
  'many-steps': { cold: 1.5, warm: 0.15, onefile: 0.6 },
};
export const RSS_GOAL_MB = 200;

/** Used when the README cannot be read or parsed (copied from it, Nov 2026). */
const FALLBACK = {
  buildkit: {
    'copy-many': { cold: 38.3, warm: 1.33, onefile: 10.7 },
    'big-layer': { cold: 7.3, warm: 0.31, onefile: 0.38 },
    multistage: { cold: 7.2, warm: 0.30, onefile: 4.5 },
    'many-steps': { cold: 1.71, warm: 0.27, onefile: 0.91 },
    'debian-app': { cold: 2.8, warm: 0.45, onefile: 1.10 },
  },
  buildah: {
    'copy-many': { cold: 21.9, warm: 12.4, onefile: 18.1 },
    'big-layer': { cold: 21.8, warm: 0.31, onefile: 0.35 },
    multistage: { cold: 11.2, warm: 1.24, onefile: 4.7 },
    'many-steps': { cold: 15.6, warm: 4.8, onefile: 8.5 },
    'debian-app': { cold: 5.5, warm: 0.94, onefile: 1.51 },
  },
};

/** Build + push of big-layer, from issue 7 (BuildKit 35 s; Buildah 21.8 + 9.3 s). */
const PUSH_REF = { buildkit: 35, buildah: 31.1 };

function triple(cell) {
  const n = cell.split('/').map((s) => Number(s.trim().replace(/[^\d.]/g, '')));
  return n.length === 3 && n.every((x) => Number.isFinite(x) && x > 0) ? { cold: n[0], warm: n[1], onefile: n[2] } : null;
}

/** {buildkit: {bench: {cold,warm,onefile}}, buildah: {...}, source} */
export async function loadReference(sharedDir) {
  let text = '';
  try { text = await readFile(join(sharedDir, 'README.md'), 'utf8'); } catch { /* fallback */ }
  const ref = { buildkit: {}, buildah: {}, source: `${join(sharedDir, 'README.md')}` };
  let cols = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) { cols = cols && line.trim() === '' ? null : cols; continue; }
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (/^bench$/i.test(cells[0]) && cells.some((c) => /buildkit/i.test(c))) {
      cols = cells.map((c) => (/buildkit/i.test(c) ? 'buildkit' : /buildah/i.test(c) ? 'buildah' : null));
      continue;
    }
    if (!cols || /^-+$/.test(cells[0].replace(/:/g, ''))) continue;
    cells.forEach((c, i) => {
      const t = cols[i] && triple(c);
      if (t) ref[cols[i]][cells[0]] = t;
    });
  }
  if (!Object.keys(ref.buildkit).length) return { ...FALLBACK, source: 'built-in copy of ../shared/bench/README.md' };
  return ref;
}

export function pushReference() {
  return PUSH_REF;
}
