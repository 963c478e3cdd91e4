import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bench, BASE, type Bench } from './helpers.js';
import { pull } from '../../src/registry/pull.js';
import type { RegistryEvent } from '../../src/registry/events.js';
import type { BuildEvent } from '../../src/events/index.js';

/**
 * A pull or push watched through `build` has the registry client's own
 * phase names and media types: one naming for transfers, whichever API a
 * program uses.
 */
let src: Bench;
let fresh: Bench;
let viaPull: Bench;
const reg = inject('registry').anon;

beforeAll(async () => {
  src = await bench();
  fresh = await bench();
  viaPull = await bench();
}, 180_000);
afterAll(async () => {
  await src?.cleanup();
  await fresh?.cleanup();
  await viaPull?.cleanup();
});

describe('transfer events of a build', () => {
  it('pull-progress and push-progress carry the phases and media types of the registry client', async () => {
    const repo = `${reg}/transfer-events/${randomBytes(4).toString('hex')}`;
    const base = `${repo}/base:1`;
    // a base whose top layer no other store has: its busybox layer is already everywhere ('exists'), the new one is not ('downloading')
    const baseCtx = await src.context({ Dockerfile: `FROM ${BASE}\nCOPY b.txt /b.txt\n`, 'b.txt': `${randomBytes(8).toString('hex')}\n` });
    await src.build(baseCtx, { tags: [base], push: true, insecureRegistries: [reg] });
    await src.release();

    // the same image pulled directly, into a store that has the same busybox
    const direct: RegistryEvent[] = [];
    const other = await viaPull.store();
    await pull(other, base, { insecureRegistries: [reg], onEvent: (e) => direct.push(e) });
    await viaPull.release();

    // and through a build FROM it, which also pushes its result
    const ctx = await fresh.context({ Dockerfile: `FROM ${base}\nCOPY a.txt /a.txt\n`, 'a.txt': `${randomBytes(8).toString('hex')}\n` });
    const { events } = await fresh.build(ctx, { tags: [`${repo}/app:1`], push: true, insecureRegistries: [reg] });

    const pulls = events.filter((e): e is Extract<BuildEvent, { type: 'pull-progress' }> => e.type === 'pull-progress');
    const directPulls = direct.filter((e): e is Extract<RegistryEvent, { type: 'pull-progress' }> => e.type === 'pull-progress');
    expect(pulls.length).toBeGreaterThan(0);
    // the build reports what the registry client reports, blob for blob, in the same words
    const seen = (list: Array<{ digest: string; phase: string; mediaType?: string }>) => new Set(list.map((e) => `${e.digest} ${e.phase} ${e.mediaType ?? ''}`));
    expect(seen(pulls)).toEqual(seen(directPulls));
    expect(new Set(pulls.map((e) => e.phase))).toContain('downloading');
    expect(new Set(pulls.map((e) => e.phase))).toContain('done');
    expect(new Set(pulls.map((e) => e.phase))).toContain('exists');
    expect(pulls.every((e) => typeof e.mediaType === 'string' && e.mediaType.startsWith('application/vnd.'))).toBe(true);

    const pushes = events.filter((e): e is Extract<BuildEvent, { type: 'push-progress' }> => e.type === 'push-progress');
    expect(pushes.length).toBeGreaterThan(0);
    const pushPhases = new Set(pushes.map((e) => e.phase));
    // the new layer and config are uploaded; the base's layers are already in the repository's registry
    expect(pushPhases).toContain('uploading');
    expect(pushPhases).toContain('done');
    for (const p of pushPhases) expect(['waiting', 'exists', 'mounted', 'uploading', 'retrying', 'resumed', 'done']).toContain(p);
    expect(pushes.every((e) => typeof e.mediaType === 'string')).toBe(true);
  }, 180_000);
});
