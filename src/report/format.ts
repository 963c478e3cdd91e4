import type { Category } from './timeline.js';

/** One palette for the HTML and the SVG, so a colour means the same in both. */
export const COLORS: Record<Category, string> = {
  setup: '#94a3b8',
  resolve: '#a78bfa',
  context: '#fbbf24',
  run: '#60a5fa',
  layer: '#34d399',
  copy: '#2dd4bf',
  cache: '#c7d2fe',
  meta: '#cbd5e1',
  commit: '#64748b',
  export: '#f472b6',
  push: '#fb7185',
  wait: '#e2e8f0',
};

export const CRITICAL = '#ea580c';
export const ERROR = '#dc2626';
export const CACHED_FILL = '#e0f2fe';
export const CACHED_INK = '#0369a1';
export const CACHED_HATCH = '#7dd3fc';

/** Escapes for both HTML text and attribute values (double or single quoted) and XML. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Characters XML 1.0 forbids (step logs may hold any byte), dropped so the SVG still parses. */
export function xmlSafe(s: string): string {
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '');
}

export function text(s: string): string {
  return esc(xmlSafe(s));
}

export function formatMs(ms: number): string {
  if (ms < 1) return ms <= 0 ? '0 ms' : '<1 ms';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s === 60 ? `${m + 1} min` : `${m} min ${s} s`;
}

/** Sizes in the report: binary units, labelled as such (the program's one rule, in spec/size.ts). */
export { formatBinarySize as formatBytes } from '../spec/size.js';

export function percent(part: number, whole: number): string {
  if (whole <= 0) return '0%';
  const p = (part / whole) * 100;
  return p > 0 && p < 1 ? '<1%' : `${Math.round(p)}%`;
}

/** Tick spacing of 1, 2 or 5 × 10^k ms giving about `target` ticks. */
export function tickStep(totalMs: number, target = 8): number {
  const raw = Math.max(totalMs, 1) / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

/** Axis labels in one style per axis: ms, seconds, or m:ss once the build passes a minute. */
export function formatTick(ms: number, step: number, total: number): string {
  if (ms === 0) return '0';
  if (step < 1000) return `${ms} ms`;
  if (total < 60_000) return `${ms / 1000} s`;
  if (step >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.floor(ms / 60_000)}:${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}`;
}

export function formatCpu(seconds: number): string {
  return seconds < 10 ? `${seconds.toFixed(2)} s` : formatMs(seconds * 1000);
}

/** Cuts `s` to fit `px` at an average glyph width, with an ellipsis. */
export function fit(s: string, px: number, glyph = 6.4): string | undefined {
  const max = Math.floor(px / glyph);
  if (max < 3) return undefined;
  if (s.length <= max) return s;
  return `${s.slice(0, max - 1)}…`;
}
