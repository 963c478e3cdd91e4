import { describe, expect, it } from 'vitest';
import { parseChallenges, parseReference } from '../../src/registry/index.js';
import { isRetryableStatus, parseRetryAfter, retryDelay, DEFAULT_RETRY } from '../../src/registry/retry.js';
import { configKeysFor, registryOfConfigKey } from '../../src/registry/docker-config.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference (Docker normalisation)', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['library/busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['user/app', 'docker.io/user/app:latest', 'user/app:latest'],
    ['index.docker.io/library/alpine:3', 'docker.io/library/alpine:3', 'alpine:3'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest', 'alpine:latest'],
    ['ghcr.io/o/r:tag', 'ghcr.io/o/r:tag', 'ghcr.io/o/r:tag'],
    [`ghcr.io/o/r@${D}`, `ghcr.io/o/r@${D}`, `ghcr.io/o/r@${D}`],
    [`host:5000/x:t@${D}`, `host:5000/x:t@${D}`, `host:5000/x:t@${D}`],
    ['host:5000/x', 'host:5000/x:latest', 'host:5000/x:latest'],
    ['localhost/x', 'localhost/x:latest', 'localhost/x:latest'],
    ['localhost:5000/a/b/c:v1.2_3-x', 'localhost:5000/a/b/c:v1.2_3-x', 'localhost:5000/a/b/c:v1.2_3-x'],
    ['127.0.0.1:5000/a__b/c-d.e', '127.0.0.1:5000/a__b/c-d.e:latest', '127.0.0.1:5000/a__b/c-d.e:latest'],
    ['[::1]:5000/x', '[::1]:5000/x:latest', '[::1]:5000/x:latest'],
  ])('%s → %s', (input, full, familiar) => {
    const r = parseReference(input);
    expect(r.toString()).toBe(full);
    expect(r.familiar()).toBe(familiar);
  });

  it('splits registry, repository, tag and digest', () => {
    const r = parseReference(`host:5000/ns/app:v1@${D}`);
    expect([r.registry, r.repository, r.tag, r.digest, r.identifier]).toEqual(['host:5000', 'ns/app', 'v1', D, D]);
    expect(parseReference('busybox').identifier).toBe('latest');
  });

  it.each([
    ['', /empty/],
    ['Busybox', /must be lowercase/],
    ['docker.io/Library/busybox', /must be lowercase/],
    ['busybox:', /empty tag/],
    ['busybox@sha256:123', /bad digest/],
    ['busybox@sha256:zz', /bad digest/],
    [`busybox@sha512:${'a'.repeat(128)}`, /unsupported digest/],
    ['a//b', /empty path component/],
    ['-a/b', /bad repository component/],
    ['host:5000/x:-bad', /bad tag/],
    [`x/${'a'.repeat(300)}`, /longer than 255/],
  ])('refuses %j', (input, why) => {
    expect(() => parseReference(input)).toThrow(why);
    try {
      parseReference(input);
    } catch (e) {
      expect((e as { code: string }).code).toBe('INVALID_REFERENCE');
    }
  });
});

describe('WWW-Authenticate challenges', () => {
  it('parses bearer with quoted commas and several challenges', () => {
    const c = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push",error="insufficient_scope", Basic realm="x"');
    expect(c).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' } },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
    expect(parseChallenges(['Basic realm="Registry Realm"'])).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    expect(parseChallenges(undefined)).toEqual([]);
  });
});

describe('retry policy', () => {
  it('retries 408/429/5xx only, honours Retry-After within the ceiling', () => {
    expect([401, 403, 404, 400, 405].map(isRetryableStatus)).toEqual([false, false, false, false, false]);
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect(parseRetryAfter('3')).toBe(3000);
    expect(retryDelay(DEFAULT_RETRY, 1, '2')).toBe(2000);
    expect(retryDelay(DEFAULT_RETRY, 1, '3600')).toBe(DEFAULT_RETRY.maxDelayMs);
    expect(retryDelay(DEFAULT_RETRY, 10)).toBeLessThanOrEqual(DEFAULT_RETRY.maxDelayMs);
  });
});

describe('config.json keys', () => {
  it('maps Docker Hub aliases and URL-shaped keys', () => {
    expect(configKeysFor('docker.io')[0]).toBe('https://index.docker.io/v1/');
    expect(registryOfConfigKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(registryOfConfigKey('https://ghcr.io')).toBe('ghcr.io');
    expect(registryOfConfigKey('localhost:5000')).toBe('localhost:5000');
  });
});
