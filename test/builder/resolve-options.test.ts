import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { dockerfileSource, layerWriteOptions, resolveBuildOptions } from '../../src/builder/resolve-options.js';
import type { BuildOptions } from '../../src/builder/options.js';
import { KilnError } from '../../src/errors/index.js';
import { formatPlatform, hostPlatform } from '../../src/image/platform.js';
import type { NetworkMode } from '../../src/sandbox/network-mode.js';

/** resolveBuildOptions is pure: these run without a store, a registry or runc. */
const resolve = (o: Partial<BuildOptions>, env: NodeJS.ProcessEnv = {}) => resolveBuildOptions({ context: '/ctx', ...o }, env);

function usage(f: () => unknown): KilnError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(KilnError);
    return e as KilnError;
  }
  throw new Error('expected a KilnError');
}

describe('resolveBuildOptions', () => {
  test('defaults: the host platform, the default network, no entitlements, gzip layers', () => {
    const r = resolve({});
    expect(r.platforms.map(formatPlatform)).toEqual([formatPlatform(hostPlatform())]);
    expect(r.policy.network).toBe('default');
    expect([...r.policy.entitlements]).toEqual([]);
    expect(r.policy.secrets).toEqual([]);
    expect(r.policy.ssh).toEqual([]);
    expect(r.layers).toEqual({ compression: { compression: 'gzip', force: false } });
    expect(r.registry).toEqual({ insecureRegistries: [], mirrors: [], pull: false });
    expect(r.outputs).toMatchObject({ tags: [], specs: [], push: false, pushing: false, labels: {}, annotations: [] });
    expect(r.cache).toEqual({ disabled: false, filter: new Set(), explain: false, from: [], to: [] });
    expect(r.source).toEqual({ contextDir: '/ctx', file: '/ctx/Dockerfile', fileName: 'Dockerfile' });
  });

  test('--allow names become a set of entitlements', () => {
    const r = resolve({ allow: ['security.insecure', 'network.host', 'security.insecure'] });
    expect([...r.policy.entitlements].sort()).toEqual(['network.host', 'security.insecure']);
  });

  test('--network host is the RUN default and grants network.host, as buildx does; none grants nothing', () => {
    const host = resolve({ network: 'host' });
    expect(host.policy.network).toBe('host');
    expect([...host.policy.entitlements]).toEqual(['network.host']);
    const none = resolve({ network: 'none' });
    expect(none.policy.network).toBe('none');
    expect([...none.policy.entitlements]).toEqual([]);
  });

  test('an unknown entitlement is a usage error naming it', () => {
    const e = usage(() => resolve({ allow: ['network.host', 'device'] }));
    expect(e.code).toBe('USAGE');
    expect(e.message).toBe('unknown entitlement "device" in --allow (known: network.host, security.insecure)');
  });

  test('a network mode outside the one NetworkMode type is refused (library callers are not type-checked)', () => {
    const e = usage(() => resolve({ network: 'bridge' as NetworkMode }));
    expect(e.code).toBe('USAGE');
    expect(e.message).toBe('network must be default, none or host, not "bridge"');
  });

  test('secrets, SSH agents, limits and the runtime reach the RUN policy and nothing else', () => {
    const r = resolve({ secrets: [{ id: 'tok', env: 'TOK' }], ssh: [{ id: 'default', paths: [] }], limits: { memory: 1 << 20 }, runtime: 'crun' });
    expect(r.policy).toEqual({ network: 'default', entitlements: new Set(), secrets: [{ id: 'tok', env: 'TOK' }], ssh: [{ id: 'default', paths: [] }], limits: { memory: 1 << 20 }, runtime: 'crun' });
  });

  test('tags are normalised once; pushing covers --push, type=registry and type=image,push=true', () => {
    expect(resolve({ tags: ['alpine'] }).outputs.tags).toEqual(['docker.io/library/alpine:latest']);
    expect(resolve({ push: true }).outputs.pushing).toBe(true);
    expect(resolve({ outputs: [{ type: 'registry', name: ['r/x'] }] }).outputs.pushing).toBe(true);
    expect(resolve({ outputs: [{ type: 'image', push: true }] }).outputs.pushing).toBe(true);
    expect(resolve({ outputs: [{ type: 'image', push: false }, { type: 'local', dest: '/o' }] }).outputs.pushing).toBe(false);
    expect(usage(() => resolve({ tags: ['not a tag'] })).code).toBe('INVALID_REFERENCE');
  });

  test('layer settings: the image compression (an unnamed image output wins) and SOURCE_DATE_EPOCH', () => {
    const r = resolve({ compression: 'zstd', compressionLevel: 19, outputs: [{ type: 'image', compression: 'gzip' }] }, { SOURCE_DATE_EPOCH: '1700000000' });
    expect(r.layers).toEqual({ compression: { compression: 'gzip', force: false }, sourceDateEpoch: 1700000000 });
    expect(layerWriteOptions(r.layers)).toEqual({ compression: 'gzip', sourceDateEpoch: 1700000000 });
    const z = resolve({ compression: 'zstd', compressionLevel: 19, sourceDateEpoch: 5 }, { SOURCE_DATE_EPOCH: '1700000000' });
    expect(layerWriteOptions(z.layers)).toEqual({ compression: 'zstd', compressionLevel: 19, sourceDateEpoch: 5 });
  });

  test('invalid values are one-line usage errors before anything runs', () => {
    expect(usage(() => resolve({}, { SOURCE_DATE_EPOCH: 'yesterday' })).message).toBe('SOURCE_DATE_EPOCH must be a non-negative integer, not "yesterday"');
    expect(usage(() => resolve({ compression: 'gzip', compressionLevel: 12 })).message).toMatch(/gzip compression level must be 0-9, got 12/);
    expect(usage(() => resolve({ platforms: ['linux/amd64', 'linux/arm64'], outputs: [{ type: 'docker', dest: '/x.tar' }] })).message).toMatch(/^--output type=docker holds one platform, and this build makes 2/);
    expect(usage(() => resolve({ platform: ',' })).code).toBe('USAGE');
    expect(usage(() => resolve({ jobs: Number.NaN })).code).toBe('USAGE');
  });

  test('platforms are normalised and de-duplicated; the list wins over the comma-separated string', () => {
    expect(resolve({ platform: 'linux/arm64,linux/arm64/v8,linux/amd64' }).platforms.map(formatPlatform)).toEqual(['linux/arm64', 'linux/amd64']);
    expect(resolve({ platform: 'linux/s390x', platforms: ['linux/riscv64'] }).platforms.map(formatPlatform)).toEqual(['linux/riscv64']);
  });

  test('cache settings: --no-cache, lower-cased --no-cache-filter, explain, imports and exports', () => {
    const r = resolve({ noCache: true, noCacheFilter: ['Build', '2'], explainCache: true, cacheTo: [{ type: 'inline', mode: 'min' }] });
    expect(r.cache.disabled).toBe(true);
    expect([...r.cache.filter]).toEqual(['build', '2']);
    expect(r.cache.explain).toBe(true);
    expect(r.cache.to).toEqual([{ type: 'inline', mode: 'min' }]);
  });

  test('registry access carries the insecure registries, mirrors, --pull and the signal', () => {
    const signal = new AbortController().signal;
    const r = resolve({ insecureRegistries: ['reg:5000'], registryMirrors: ['https://m'], pull: true, signal });
    expect(r.registry).toEqual({ insecureRegistries: ['reg:5000'], mirrors: ['https://m'], pull: true, signal });
  });
});

describe('dockerfileSource', () => {
  test('the file is resolved against the working directory; text wins and is named Dockerfile unless told', () => {
    expect(dockerfileSource({ context: 'ctx', file: 'df/App.Dockerfile' })).toEqual({ contextDir: path.resolve('ctx'), file: path.resolve('df/App.Dockerfile'), fileName: 'df/App.Dockerfile' });
    expect(dockerfileSource({ context: '/c', dockerfileText: 'FROM scratch\n' })).toEqual({ contextDir: '/c', text: 'FROM scratch\n', fileName: 'Dockerfile' });
    expect(dockerfileSource({ context: '/c', dockerfileText: 'FROM scratch\n', fileName: 'stdin' }).fileName).toBe('stdin');
  });
});
