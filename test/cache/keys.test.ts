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

  it('names the build arg, the instruction and the input that differ', () => {
    const other: StepKeyInput = {
      parent: 'sha256:' + 'c'.repeat(64),
      op: { kind: 'COPY', sources: ['.'], dest: '/srv' },
      env: { A: '9', C: '3' },
      inputs: ['sha256:' + 'd'.repeat(64), 'from:sha256:' + 'e'.repeat(64)],
    };
    const lines = explainMiss(base, other);
    expect(lines).toContain('expanded instruction changed: dest: "/app" → "/srv"');
    expect(lines).toContain('build arg A changed: "1" → "9"');
    expect(lines).toContain('build arg B removed (was "2")');
    expect(lines).toContain('build arg C added ("3")');
    expect(lines).toContain('the files it copies changed');
    expect(lines).toContain('the --from stage or image changed');
    // the parent is named only when nothing in the step itself explains the miss
    expect(explainMiss(base, { ...base, parent: other.parent })).toEqual(['an earlier step or the base image changed']);
  });

  it('quotes the instruction as written, and names files when both builds listed them', () => {
    const a: StepKeyInput = { ...base, text: 'COPY . /app', files: { 'a.txt': '1', 'b.txt': '2', 'c.txt': '3' } };
    expect(explainMiss(a, { ...a, op: { x: 1 }, text: 'COPY . /srv' })).toEqual(['instruction changed: "COPY . /app" → "COPY . /srv"']);
    // spacing alone never explains anything: the op is the same
    expect(explainMiss(a, { ...a, text: 'COPY  .  /app' })).toEqual([]);
    const b: StepKeyInput = { ...a, inputs: ['sha256:' + 'f'.repeat(64)], files: { 'a.txt': '1', 'b.txt': '9', 'd.txt': '4' } };
    expect(explainMiss(a, b)).toEqual(['file b.txt changed', 'file c.txt removed', 'file d.txt added']);
  });
});
