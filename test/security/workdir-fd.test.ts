import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * CVE-2024-21626 ("Leaky Vessels"): a working directory of /proc/self/fd/N
 * starts the RUN inside a directory the runtime left open on the host, from
 * which `..` climbs to the host's root. Whatever the installed runc, a RUN
 * must never see the build machine's file system that way.
 */

let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => b.cleanup());

describe('a RUN whose working directory is an inherited descriptor', () => {
  for (const fd of [3, 4, 5, 6, 7, 8, 9]) {
    it(`WORKDIR /proc/self/fd/${fd} does not reach the host`, async () => {
      const ctx = await b.context({
        Dockerfile: `FROM ${BASE}
WORKDIR /proc/self/fd/${fd}
RUN (ls -a ../../../../../../.. ; cat ../../../../../../../proc/1/cmdline; ls ../../../../../../../tmp) > /out.txt 2>&1 || true
`,
      });
      const r = await b.build(ctx, { tags: [`localhost/sec/leaky:${fd}`] }).catch((e: unknown) => e);
      if (r instanceof Error) {
        // what runc (with the CVE fixed) does: it refuses to start in a directory outside the container
        expect((r as { code?: string }).code).toBe('RUN_FAILED');
        expect(r.message).not.toContain('kiln-build-');
        return;
      }
      const out = await b.read(`localhost/sec/leaky:${fd}`, '/out.txt');
      // the test's temp dir lives on the host's /tmp, not inside the image
      expect(out).not.toContain('kiln-build-');
    });
  }
});
