import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../src/builder/build.js';
import { isImageId } from '../../src/builder/image-source.js';
import { isKilnError } from '../../src/errors/index.js';
import type { BuildEvent } from '../../src/events/index.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * FROM (and COPY --from) with an image ID or digest resolves in the store and
 * never becomes a registry lookup of docker.io/library/sha256.
 */

let b: Bench;
let digest: string;
beforeAll(async () => {
  b = await bench();
  const s = await b.store();
  digest = (await s.resolveImage(BASE))!.digest;
});
afterAll(async () => {
  await b.cleanup();
});

async function buildWithEvents(dockerfile: string, tag: string): Promise<{ events: BuildEvent[]; error?: unknown }> {
  const ctx = await b.context({ Dockerfile: dockerfile });
  const events: BuildEvent[] = [];
  try {
    await build({ context: ctx, root: b.root, tags: [tag], onEvent: (e) => events.push(e) });
    return { events };
  } catch (error) {
    return { events, error };
  }
}

const registryLookups = (events: BuildEvent[]): BuildEvent[] => events.filter((e) => e.type === 'phase' && e.name === 'resolve');

describe('FROM an image ID or digest', () => {
  it('tells IDs from names', () => {
    expect(isImageId(`sha256:${'a'.repeat(64)}`)).toBe(true);
    expect(isImageId('sha256:abcd1234')).toBe(true);
    expect(isImageId('a'.repeat(64))).toBe(true);
    expect(isImageId('abcd1234')).toBe(false); // a valid repository name
    expect(isImageId('busybox')).toBe(false);
    expect(isImageId(`busybox@sha256:${'a'.repeat(64)}`)).toBe(false);
  });

  it.each([
    ['the full digest', (d: string) => d],
    ['the bare 64 hex digits', (d: string) => d.slice('sha256:'.length)],
    ['a unique prefix', (d: string) => d.slice(0, 'sha256:'.length + 12)],
  ])('%s names the stored image, for FROM and COPY --from', async (_name, form) => {
    const id = form(digest);
    const { events, error } = await buildWithEvents(`FROM ${id}\nCOPY --from=${id} /etc/passwd /copied\nRUN test -x /bin/sh\n`, 'localhost/sec/byid:1');
    expect(error).toBeUndefined();
    expect(registryLookups(events)).toEqual([]);
    expect(await b.read('localhost/sec/byid:1', '/copied')).toContain('root:x:0:0');
  });

  it('an ID that is not stored fails at once, without a registry lookup, even with --pull', async () => {
    const unknown = `sha256:${'0'.repeat(64)}`;
    for (const pull of [false, true]) {
      const ctx = await b.context({ Dockerfile: `FROM ${unknown}\n` });
      const events: BuildEvent[] = [];
      const err = await build({ context: ctx, root: b.root, pull, onEvent: (e) => events.push(e) }).catch((e: unknown) => e);
      expect(isKilnError(err) && err.code).toBe('NOT_FOUND');
      expect(isKilnError(err) && err.message).toMatch(/is not in the store; an image ID or digest alone cannot be pulled/);
      expect(registryLookups(events)).toEqual([]);
    }
  });
});
