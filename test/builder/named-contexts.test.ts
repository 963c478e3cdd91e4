import { describe, expect, it } from 'vitest';
import { namedContextKey, parseNamedContext } from '../../src/builder/named-contexts.js';
import { parseOciLayoutRef } from '../../src/export/oci-layout.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('--build-context values, sorted as buildx sorts them', () => {
  it('tells images, layouts, git and http URLs and directories apart', () => {
    expect(parseNamedContext('docker-image://alpine:3.20')).toEqual({ kind: 'image', ref: 'alpine:3.20' });
    expect(parseNamedContext('oci-layout:///l:v1')).toEqual({ kind: 'oci-layout', value: 'oci-layout:///l:v1' });
    expect(parseNamedContext('https://h/r.git#v1:sub')).toEqual({ kind: 'git', url: 'https://h/r.git#v1:sub' });
    expect(parseNamedContext('git@h:o/r.git')).toEqual({ kind: 'git', url: 'git@h:o/r.git' });
    expect(parseNamedContext('git://h/r')).toEqual({ kind: 'git', url: 'git://h/r' });
    expect(parseNamedContext('https://h/src.tar.gz')).toEqual({ kind: 'http', url: 'https://h/src.tar.gz' });
    expect(parseNamedContext('./dir')).toEqual({ kind: 'local', path: './dir' });
    expect(() => parseNamedContext('s3://b/k')).toThrow(/unsupported source s3:\/\//);
    expect(() => parseNamedContext('docker-image://')).toThrow(/names no image/);
  });

  it('looks names up as BuildKit does: the familiar reference without :latest', () => {
    expect(namedContextKey('docker.io/library/alpine:latest')).toBe('alpine');
    expect(namedContextKey('Alpine')).toBe('alpine');
    expect(namedContextKey('alpine:3.20')).toBe('alpine:3.20');
    expect(namedContextKey('ghcr.io/o/r:latest')).toBe('ghcr.io/o/r');
    expect(namedContextKey('base')).toBe('base');
  });

  it('reads oci-layout://PATH[:TAG][@DIGEST] as buildx\'s ocilayout.Parse', () => {
    expect(parseOciLayoutRef('oci-layout:///path/to/layout')).toEqual({ path: '/path/to/layout', tag: 'latest' });
    expect(parseOciLayoutRef('oci-layout:///path/to/layout:1.3')).toEqual({ path: '/path/to/layout', tag: '1.3' });
    expect(parseOciLayoutRef(`oci-layout:///path/to/layout@${D}`)).toEqual({ path: '/path/to/layout', digest: D });
    expect(parseOciLayoutRef(`oci-layout:///path/to/@/layout:v1@${D}`)).toEqual({ path: '/path/to/@/layout', tag: 'v1', digest: D });
    expect(parseOciLayoutRef('oci-layout://rel/dir')).toEqual({ path: 'rel/dir', tag: 'latest' });
  });
});
