import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCacheDirs } from '../../src/sandbox/cache-mounts.js';
import { bench, BASE, type Bench } from './helpers.js';

let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

describe('RUN --mount=type=cache,from=<stage>', () => {
  it('is one cache across builds: seeded once from the stage, then kept (a multi-layer stage included)', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE} AS seed\nRUN mkdir /seed && echo seeded > /seed/count\nRUN echo second-layer > /other\nFROM ${BASE}\nRUN --mount=type=cache,from=seed,source=/seed,target=/c,id=counted sh -c 'echo run >> /c/count; cat /c/count > /n'\n`,
    });
    await b.build(ctx, { tags: ['localhost/t/seeded:1'] });
    expect(await b.read('localhost/t/seeded:1', '/n')).toBe('seeded\nrun\n');
    await b.build(ctx, { tags: ['localhost/t/seeded:1'], noCache: true });
    expect(await b.read('localhost/t/seeded:1', '/n')).toBe('seeded\nrun\nrun\n');
    expect((await listCacheDirs(b.root)).filter((n) => n.startsWith('counted'))).toHaveLength(1);
  });
});
