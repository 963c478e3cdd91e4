import { describe, expect, it } from 'vitest';
import { parseGoDuration } from '../../src/frontend/duration.js';

describe('parseGoDuration (HEALTHCHECK durations, Go syntax)', () => {
  it('reads every Go unit, both micro signs among them, in nanoseconds', () => {
    expect(parseGoDuration('30s')).toBe(30e9);
    expect(parseGoDuration('1m30s')).toBe(90e9);
    expect(parseGoDuration('1.5h')).toBe(5400e9);
    expect(parseGoDuration('250ms')).toBe(250e6);
    expect(parseGoDuration('7us')).toBe(7e3);
    expect(parseGoDuration('7\u00b5s')).toBe(7e3); // MICRO SIGN
    expect(parseGoDuration('7\u03bcs')).toBe(7e3); // GREEK SMALL LETTER MU
    expect(parseGoDuration('12ns')).toBe(12);
    expect(parseGoDuration('-2s')).toBe(-2e9);
    expect(parseGoDuration('0')).toBe(0);
  });

  it('refuses what Go refuses', () => {
    for (const bad of ['', '5', 's', '1d', '1 s', '1.5']) expect(parseGoDuration(bad)).toBeUndefined();
  });
});
