import { describe, expect, it } from 'vitest';
import { canonicalJson, explainMiss, stepCacheKey, type StepKeyInput } from '../../src/cache/keys.js';

const base: StepKeyInput = {
  parent: 'sha256:' + 'a'.repeat(64),
  op: { kind: 'COPY', sources: ['.'], dest: '/app', chown: undefined },
  env: { A: '1', B: '2' },
  inputs: ['sha256:' + 'b'.repeat(64)],
};

describe('canonicalJson', () => {
  it('sorts keys at every level and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[3,{"y":2,"z":1}]},"b":1}');
  });
});

describe('stepCacheKey', () => {
  it('is a digest independent of key order', () => {
    const k = stepCacheKey(base);
    expect(k).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(stepCacheKey({ inputs: base.inputs, env: { B: '2', A: '1' }, op: { dest: '/app', sources: ['.'], kind: 'COPY' }, parent: base.parent })).toBe(k);
  });

  it('changes with each part', () => {
    const k = stepCacheKey(base);
    expect(stepCacheKey({ ...base, parent: 'sha256:' + 'c'.repeat(64) })).not.toBe(k);
    expect(stepCacheKey({ ...base, op: { ...(base.op as object), dest: '/srv' } })).not.toBe(k);
    expect(stepCacheKey({ ...base, env: { ...base.env, C: '3' } })).not.toBe(k);
    expect(stepCacheKey({ ...base, inputs: [] })).not.toBe(k);
    // "", absent and [] must not collide through string concatenation
    expect(stepCacheKey({ ...base, env: { AB: '' } })).not.toBe(stepCacheKey({ ...base, env: { A: 'B' } }));
  });
});

describe('explainMiss', () => {
  it('is empty for equal inputs', () => {
    expect(explainMiss(base, { ...base })).toEqual([]);
  });

  it('names the env var, op field, parent and input that differ', () => {
    const other: StepKeyInput = {
      parent: 'sha256:' + 'c'.repeat(64),
      op: { kind: 'COPY', sources: ['.'], dest: '/srv' },
      env: { A: '9', C: '3' },
      inputs: ['sha256:' + 'd'.repeat(64), 'sha256:' + 'e'.repeat(64)],
    };
    const lines = explainMiss(base, other);
    expect(lines).toContain('op.dest changed: "/app" → "/srv"');
    expect(lines).toContain('env A changed: "1" → "9"');
    expect(lines).toContain('env B removed (was "2")');
    expect(lines).toContain('env C added ("3")');
    expect(lines.some((l) => l.startsWith('parent changed'))).toBe(true);
    expect(lines.some((l) => l.startsWith('input #1 content changed'))).toBe(true);
    expect(lines.some((l) => l.startsWith('input #2 added'))).toBe(true);
  });
});
