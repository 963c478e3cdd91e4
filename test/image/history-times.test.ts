import { describe, expect, it } from 'vitest';
import { fillHistoryTimes } from '../../src/image/config.js';
import type { HistoryEntry } from '../../src/image/types.js';

const T = (n: number): string => `2026-01-0${n}T00:00:00Z`;
const timed = (n: number, by: string): HistoryEntry => ({ created: T(n), created_by: by });
const meta = (by: string): HistoryEntry => ({ created_by: by, empty_layer: true });

describe('fillHistoryTimes (BuildKit exporter rules)', () => {
  it('times metadata before the first new layer by that layer, and later metadata by the layer before it', () => {
    const h = [timed(1, 'base'), meta('ENV A'), timed(3, 'RUN one'), meta('LABEL'), timed(4, 'COPY'), meta('ENV B')];
    expect(fillHistoryTimes(h)).toBe(T(4));
    expect(h.map((e) => e.created)).toEqual([T(1), T(3), T(3), T(3), T(4), T(4)]);
  });

  it('gives metadata on a base without new layers the base’s last time', () => {
    const h = [timed(1, 'base a'), timed(2, 'base b'), meta('ENV A'), meta('CMD')];
    expect(fillHistoryTimes(h)).toBe(T(2));
    expect(h.map((e) => e.created)).toEqual([T(1), T(2), T(2), T(2)]);
  });

  it('leaves a metadata-only image on scratch untimed', () => {
    const h = [meta('LABEL a'), meta('CMD')];
    expect(fillHistoryTimes(h)).toBeUndefined();
    expect(h.every((e) => e.created === undefined)).toBe(true);
    expect(fillHistoryTimes([])).toBeUndefined();
  });

  it('keeps every time already given (SOURCE_DATE_EPOCH times each entry)', () => {
    const h = [timed(1, 'a'), timed(1, 'b'), timed(1, 'c')];
    expect(fillHistoryTimes(h)).toBe(T(1));
    expect(h.map((e) => e.created)).toEqual([T(1), T(1), T(1)]);
  });
});
