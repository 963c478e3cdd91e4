import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bench, type Bench } from './helpers.js';
import { makeBusyboxIndex } from '../helpers/busybox.js';
import type { Index } from '../../src/image/types.js';
import type { BuildEvent } from '../../src/events/index.js';
import { isKilnError } from '../../src/errors/index.js';

const MULTI = 'localhost/busybox-multi:latest';

// cross-compilation pattern: the tools stage runs on the build platform, the last stage for each target
const CROSS = `FROM --platform=$BUILDPLATFORM ${MULTI} AS tools
ARG BUILDPLATFORM
RUN uname -m > /host-arch && echo "$BUILDPLATFORM" > /build-platform
# an image named by COPY --from is taken for the platform of the stage using it
COPY --from=${MULTI} /bin/busybox /tools/busybox
RUN /tools/busybox uname -m > /tools-busybox-arch
FROM ${MULTI}
ARG TARGETPLATFORM TARGETARCH TARGETVARIANT
RUN uname -m > /arch && echo "$TARGETPLATFORM $TARGETARCH [$TARGETVARIANT]" > /target
COPY --from=tools /host-arch /build-platform /tools-busybox-arch /
`;

let b: Bench;
beforeAll(async () => {
  b = await bench();
  await makeBusyboxIndex(await b.store(), MULTI);
});
afterAll(async () => {
  await b?.cleanup();
});

const ran = (events: BuildEvent[], text: string) =>
  events.flatMap((e) => (e.type === 'step-done' && e.usage !== undefined && e.step.text.startsWith(text) ? [`${e.step.target} ${e.step.platform}`] : []));

describe('multi-platform builds', () => {
  it('builds once per platform into one OCI index; the $BUILDPLATFORM stage runs natively, once', async () => {
    const ctx = await b.context({ Dockerfile: CROSS });
    const { result, events } = await b.build(ctx, { tags: ['localhost/cross:1'], platform: 'linux/amd64,linux/arm64', sourceDateEpoch: 0 });

    expect(result.indexDigest).toBe(result.manifestDigest);
    expect(result.platforms?.map((p) => p.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    const store = await b.store();
    const tagged = await store.resolve('localhost/cross:1');
    expect(tagged?.digest).toBe(result.indexDigest);
    expect(tagged?.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const index = JSON.parse((await store.readBlob(result.indexDigest!)).toString()) as Index;
    expect(index.manifests.map((m) => [m.digest, m.platform])).toEqual([
      [result.platforms![0]!.manifestDigest, { os: 'linux', architecture: 'amd64' }],
      [result.platforms![1]!.manifestDigest, { os: 'linux', architecture: 'arm64' }],
    ]);

    const [amd64, arm64] = result.platforms!;
    expect(arm64!.config.architecture).toBe('arm64');
    expect(await b.read(arm64!.manifestDigest, 'arch')).toBe('aarch64\n');
    expect(await b.read(arm64!.manifestDigest, 'target')).toBe('linux/arm64 arm64 []\n');
    expect(await b.read(amd64!.manifestDigest, 'arch')).toBe('x86_64\n');
    expect(await b.read(amd64!.manifestDigest, 'target')).toBe('linux/amd64 amd64 []\n');
    for (const p of [amd64!, arm64!]) {
      expect(await b.read(p.manifestDigest, 'host-arch')).toBe('x86_64\n');
      expect(await b.read(p.manifestDigest, 'build-platform')).toBe('linux/amd64\n');
      expect(await b.read(p.manifestDigest, 'tools-busybox-arch')).toBe('x86_64\n');
    }
    // the tools stage ran once, on the host, for whichever target reached it first
    expect(ran(events, 'RUN uname -m > /host-arch')).toHaveLength(1);
    expect(ran(events, 'RUN uname -m > /host-arch')[0]).toMatch(/ linux\/amd64$/);
    expect(ran(events, 'RUN uname -m > /arch').sort()).toEqual(['linux/amd64 linux/amd64', 'linux/arm64 linux/arm64']);

    // a rebuild is all cache hits, per platform
    const again = await b.build(ctx, { tags: ['localhost/cross:1'], platforms: ['linux/amd64', 'arm64/v8'], sourceDateEpoch: 0 });
    expect(again.result.indexDigest).toBe(result.indexDigest);
    expect(again.result.executedSteps).toBe(0);
  });

  it('builds a single foreign platform as one manifest', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${MULTI}\nARG TARGETPLATFORM\nRUN uname -m > /arch && echo $TARGETPLATFORM > /target\n` });
    const { result } = await b.build(ctx, { tags: ['localhost/arm-only:1'], platform: 'arm64' });
    expect(result.indexDigest).toBeUndefined();
    expect(result.descriptor.platform).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(result.config.architecture).toBe('arm64');
    expect(await b.read(result.manifestDigest, 'arch')).toBe('aarch64\n');
    expect(await b.read(result.manifestDigest, 'target')).toBe('linux/arm64\n');
  });

  it('FROM --platform=<fixed> and a single-platform base that does not match', async () => {
    const fixed = await b.context({ Dockerfile: `FROM --platform=linux/arm64 ${MULTI}\nRUN uname -m > /arch\n` });
    const { result } = await b.build(fixed);
    expect(result.config.architecture).toBe('arm64');
    expect(await b.read(result.manifestDigest, 'arch')).toBe('aarch64\n');

    const mismatch = await b.context({ Dockerfile: 'FROM localhost/busybox:latest\nRUN true\n' });
    let err: unknown;
    try {
      await b.build(mismatch, { platform: 'linux/arm64' });
    } catch (e) {
      err = e;
    }
    expect(isKilnError(err) && err.format(), String(err)).toBe('base image localhost/busybox:latest is linux/amd64 only and has no image for linux/arm64');
  });
});
