import { describe, expect, it } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { canonicalJSON } from '../../src/image/canonical-json.js';
import { appendLayer, emptyConfig, getEnv, patchContainerConfig, withEnv, withHistory, withLabels } from '../../src/image/config.js';
import { indexToDocker, indexToOci, manifestToDocker, manifestToOci } from '../../src/image/convert.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { formatPlatform, hostPlatform, parsePlatform, parsePlatformList, platformDirName, platformMatches, selectManifest } from '../../src/image/platform.js';
import { predefinedArgs } from '../../src/plan/predefined.js';
import type { Manifest } from '../../src/image/types.js';
import { validateOci } from '../helpers/oci-schema.js';
import { expectValidOci } from '../helpers/oci-validate.js';

describe('platform', () => {
  it('parses and normalises os/arch[/variant]', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('linux/aarch64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v6' })).toBe('linux/arm/v6');
    for (const bad of ['', 'linux/', 'a/b/c/d', 'linux/amd 64']) {
      let err: unknown;
      try {
        parsePlatform(bad);
      } catch (e) {
        err = e;
      }
      expect(isKilnError(err) && err.code).toBe('USAGE');
    }
  });

  it('normalises as containerd does', () => {
    const f = (s: string) => formatPlatform(parsePlatform(s));
    expect(f('arm64')).toBe('linux/arm64');
    expect(f('aarch64')).toBe('linux/arm64');
    expect(f('arm64/v8')).toBe('linux/arm64');
    expect(f('linux/arm64/v8')).toBe('linux/arm64');
    expect(f('linux/arm64/v9')).toBe('linux/arm64/v9');
    expect(f('arm')).toBe('linux/arm/v7');
    expect(f('linux/arm/7')).toBe('linux/arm/v7');
    expect(f('arm/v6')).toBe('linux/arm/v6');
    expect(f('linux/armhf')).toBe('linux/arm/v7');
    expect(f('linux/armel')).toBe('linux/arm/v6');
    expect(f('x86_64')).toBe('linux/amd64');
    expect(f('linux/amd64/v1')).toBe('linux/amd64');
    expect(f('linux/amd64/v3')).toBe('linux/amd64/v3');
    expect(f('i686')).toBe('linux/386');
    expect(f('linux')).toBe(formatPlatform(hostPlatform()));
    expect(f('LINUX/S390X')).toBe('linux/s390x');
    expect(formatPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe('linux/arm64');
    expect(parsePlatformList('linux/amd64, arm64,linux/arm64/v8').map(formatPlatform)).toEqual(['linux/amd64', 'linux/arm64']);
    expect(platformDirName(parsePlatform('linux/arm/v7'))).toBe('linux_arm_v7');
  });

  it('sets the predefined platform args from the normalised platform', () => {
    const args = (t: string) => Object.fromEntries(predefinedArgs(parsePlatform(t), parsePlatform('linux/amd64'), {}).map((a) => [a.name, a.value]));
    expect(args('linux/arm64/v8')).toMatchObject({ TARGETPLATFORM: 'linux/arm64', TARGETOS: 'linux', TARGETARCH: 'arm64', TARGETVARIANT: '', BUILDPLATFORM: 'linux/amd64', BUILDARCH: 'amd64', BUILDVARIANT: '' });
    expect(args('arm')).toMatchObject({ TARGETPLATFORM: 'linux/arm/v7', TARGETARCH: 'arm', TARGETVARIANT: 'v7' });
    // an unnormalised platform given directly is normalised too: one spelling everywhere
    const raw = Object.fromEntries(predefinedArgs({ os: 'linux', architecture: 'aarch64', variant: 'v8' }, { os: 'linux', architecture: 'x86_64' }, {}).map((a) => [a.name, a.value]));
    expect(raw).toMatchObject({ TARGETPLATFORM: 'linux/arm64', TARGETARCH: 'arm64', TARGETVARIANT: '', BUILDPLATFORM: 'linux/amd64', BUILDARCH: 'amd64' });
  });

  it('detects the host platform', () => {
    const h = hostPlatform();
    expect(h.os).toBe('linux');
    expect(h.architecture).toBe(process.arch === 'x64' ? 'amd64' : process.arch);
  });

  it('matches and selects manifests like containerd', () => {
    expect(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(false);
    const d = (p: string, extra = {}) => ({ mediaType: MediaType.OCI_MANIFEST, digest: sha256(p), size: 1, platform: { ...parsePlatform(p), ...extra } });
    const ms = [{ ...d('linux/amd64'), platform: { os: 'unknown', architecture: 'unknown' } }, d('linux/arm/v6'), d('linux/arm/v7'), d('linux/amd64'), d('linux/arm64')];
    expect(selectManifest(ms, parsePlatform('linux/amd64'))?.digest).toBe(sha256('linux/amd64'));
    expect(selectManifest(ms, parsePlatform('linux/arm/v7'))?.digest).toBe(sha256('linux/arm/v7'));
    expect(selectManifest(ms, parsePlatform('linux/arm64/v8'))?.digest).toBe(sha256('linux/arm64'));
    expect(selectManifest(ms, parsePlatform('linux/s390x'))).toBeUndefined();
  });
});

describe('canonical JSON', () => {
  it('sorts keys, drops undefined, no whitespace', () => {
    expect(canonicalJSON({ b: 1, a: [true, null, 'x'], c: undefined, d: { z: 0, y: 'é' } })).toBe('{"a":[true,null,"x"],"b":1,"d":{"y":"é","z":0}}');
    expect(canonicalJSON({ b: 1, a: 2 })).toBe(canonicalJSON({ a: 2, b: 1 }));
    expect(() => canonicalJSON({ x: Number.NaN })).toThrow();
  });
});

describe('config helpers', () => {
  it('return new objects and leave the input alone', () => {
    const base = emptyConfig({ os: 'linux', architecture: 'amd64' });
    const frozen = JSON.stringify(base);
    const a = withEnv(base, { PATH: '/bin', A: '1' });
    const b = withEnv(a, { A: '2' });
    expect(b.config?.Env).toEqual(['PATH=/bin', 'A=2']);
    expect(getEnv(b, 'A')).toBe('2');
    expect(getEnv(b, 'NOPE')).toBeUndefined();
    const c = patchContainerConfig(withLabels(b, { x: 'y' }), { Cmd: ['sh'], WorkingDir: '/app' });
    expect(c.config).toMatchObject({ Cmd: ['sh'], WorkingDir: '/app', Labels: { x: 'y' } });
    expect(patchContainerConfig(c, { WorkingDir: null }).config?.WorkingDir).toBeUndefined();
    expect(patchContainerConfig(c, { Cmd: null }).config?.Cmd).toBeNull();
    const h = withHistory(c, { created_by: 'ENV A=2', empty_layer: true });
    expect(h.history).toEqual([{ created_by: 'ENV A=2', empty_layer: true }]);
    const layer = { descriptor: { mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256('l'), size: 1 }, diffID: sha256('d') };
    const draft = appendLayer({ config: h, layers: [] }, layer, { created_by: 'RUN x' });
    expect(draft.config.rootfs.diff_ids).toEqual([sha256('d')]);
    expect(draft.layers).toEqual([layer]);
    expect(h.rootfs.diff_ids).toEqual([]);
    expect(JSON.stringify(base)).toBe(frozen);
    expectValidOci(draft.config, 'config');
  });
});

describe('OCI ↔ Docker conversion', () => {
  const oci: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: sha256('c'), size: 10 },
    layers: [
      { mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256('l1'), size: 100 },
      { mediaType: MediaType.OCI_LAYER, digest: sha256('l2'), size: 200 },
    ],
  };
  it('round-trips losslessly', () => {
    const docker = manifestToDocker(oci);
    expect(docker.mediaType).toBe(MediaType.DOCKER_MANIFEST);
    expect(docker.config.mediaType).toBe(MediaType.DOCKER_CONFIG);
    expect(docker.layers.map((l) => l.mediaType)).toEqual([MediaType.DOCKER_LAYER_GZIP, 'application/vnd.docker.image.rootfs.diff.tar']);
    expect(manifestToOci(docker)).toEqual(oci);
    expectValidOci(manifestToOci(docker), 'manifest');
    const ix = { schemaVersion: 2 as const, mediaType: MediaType.OCI_INDEX, manifests: [{ mediaType: MediaType.OCI_MANIFEST, digest: sha256('m'), size: 5, platform: { os: 'linux', architecture: 'amd64' } }] };
    expect(indexToOci(indexToDocker(ix))).toEqual(ix);
  });
  it('refuses what Docker cannot express', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isKilnError(e) ? e.code : 'other';
      }
      return 'none';
    };
    expect(code(() => manifestToDocker({ ...oci, annotations: { a: 'b' } }))).toBe('UNSUPPORTED');
    expect(code(() => manifestToDocker({ ...oci, layers: [{ mediaType: MediaType.OCI_LAYER_ZSTD, digest: sha256('z'), size: 1 }] }))).toBe('UNSUPPORTED');
  });
});

describe('OCI schema validation', () => {
  it('rejects broken documents', () => {
    const good = { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: sha256('c'), size: 1 }, layers: [{ mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256('l'), size: 1 }] };
    expect(validateOci(good, 'manifest')).toEqual([]);
    expect(validateOci({ ...good, schemaVersion: 3 }, 'manifest')).not.toEqual([]);
    expect(validateOci({ ...good, config: { ...good.config, digest: 'sha256:ZZ!' } }, 'manifest')).not.toEqual([]);
    expect(validateOci({ ...good, config: { ...good.config, mediaType: 'not a media type' } }, 'manifest')).not.toEqual([]);
    expect(validateOci({ mediaType: MediaType.OCI_LAYER, size: 1 }, 'descriptor')).not.toEqual([]);
    expect(validateOci({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Env: ['NOEQUALS'] } }, 'config')).toEqual(['/config/Env/0: not NAME=value']);
    expect(validateOci({ imageLayoutVersion: 1 }, 'layout')).not.toEqual([]);
    expect(validateOci({ ...good, config: { ...good.config, size: -1 } }, 'manifest')).toContain('/config/size: negative');
  });
});
