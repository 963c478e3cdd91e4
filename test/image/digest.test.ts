import { describe, expect, it } from 'vitest';
import { isDigest, parseDigest, sha256 } from '../../src/image/digest.js';

describe('digest', () => {
  it('hashes bytes to sha256:<hex>', () => {
    expect(sha256('')).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
  it('rejects malformed digests', () => {
    expect(isDigest('sha256:abc')).toBe(false);
    expect(() => parseDigest('sha256:ABC')).toThrow(/invalid digest/);
  });
});
