import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KilnError } from '../../src/errors/index.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * A base image's ONBUILD trigger may name a stage of the child Dockerfile (as BuildKit allows). A
 * hostile base that names the very stage built on it would have that stage wait on itself for ever;
 * kiln refuses it, as it refuses a stage named before it is defined.
 */
let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

describe('an ONBUILD trigger naming the stage it runs in', () => {
  it('is refused with an error, not a build that waits on itself', async () => {
    const parent = await b.context({ Dockerfile: `FROM ${BASE}\nONBUILD COPY --from=app /etc/passwd /copied\n` });
    await b.build(parent, { tags: ['localhost/t/onbuild-cycle-parent:1'] });
    const child = await b.context({ Dockerfile: 'FROM localhost/t/onbuild-cycle-parent:1 AS app\nRUN true\n' });
    const err = (await Promise.race([
      b.build(child).then(() => new Error('the build succeeded'), (e: unknown) => e),
      new Promise((resolve) => setTimeout(() => resolve(new Error('the build still waits after 60 s')), 60_000).unref()),
    ])) as Error;
    expect(err).toBeInstanceOf(KilnError);
    expect(err.message).toMatch(/stage "app" is defined at or after the stage that names it/);
  });
});
