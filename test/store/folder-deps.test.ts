import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * The store's folders form no import cycle: layer/ writes through the
 * BlobStore port in image/, the sandbox reaches the store's layout and
 * flock, fsck is handed the sandbox's leftover probe. The whole-tree check is
 * `node scripts/folder-deps.mjs`; this test pins the part the store owns.
 */
describe('folder-level imports', () => {
  it('no cycle goes through store/, layer/, image/ or sandbox/', () => {
    const r = spawnSync(process.execPath, ['scripts/folder-deps.mjs', '--edges'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const edges = r.stdout.split('\n').filter((l) => l.includes(' -> ') && !l.startsWith(' '));
    // the edges the store had in both directions are one-way now
    expect(edges.some((e) => e.startsWith('store -> layer '))).toBe(true);
    expect(edges.some((e) => e.startsWith('layer -> store '))).toBe(false);
    expect(edges.some((e) => e.startsWith('sandbox -> store '))).toBe(true);
    expect(edges.some((e) => e.startsWith('store -> sandbox '))).toBe(false);
    const cycles = r.stdout.split('\n').filter((l) => l.startsWith('cycle: '));
    for (const c of cycles) expect(c).not.toMatch(/\b(store|layer|image|sandbox)\b/);
  });
});
