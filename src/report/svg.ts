import type { BuildEvent } from '../events/index.js';
import { VERSION } from '../version.js';
import { buildTimeline, CATEGORIES, type Category, type CategoryTotal, type Lane, type PhaseBar, type StepBar, type TimelineModel } from './timeline.js';
import { CACHED_FILL, CACHED_HATCH, CACHED_INK, COLORS, CRITICAL, ERROR, fit, formatBytes, formatCpu, formatMs, formatTick, percent, text, tickStep } from './format.js';

export const FONT = `system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif`;
const MONO = `ui-monospace, 'SFMono-Regular', Menlo, Consolas, 'DejaVu Sans Mono', monospace`;

const GUTTER = 200;
const RIGHT = 28;
const AXIS = 30;
const PHASE_LANE = 34;
const LANE = 46;
const BAR = 28;

const n = (x: number): string => String(Math.round(x * 10) / 10);

/** Patterns and markers the timeline refers to; ids are prefixed so two reports can share one page. */
export function svgDefs(id: string): string {
  return (
    `<defs>` +
    `<pattern id="${id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
    `<rect width="6" height="6" fill="${CACHED_FILL}"/><line x1="0" y1="0" x2="0" y2="6" stroke="${CACHED_HATCH}" stroke-width="2"/></pattern>` +
    `<pattern id="${id}-open" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">` +
    `<rect width="8" height="8" fill="#f1f5f9"/><line x1="0" y1="0" x2="0" y2="8" stroke="#cbd5e1" stroke-width="3"/></pattern>` +
    `<marker id="${id}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">` +
    `<path d="M0,0 L10,5 L0,10 z" fill="${CRITICAL}"/></marker>` +
    `</defs>`
  );
}

export function stepTip(s: StepBar, lane: Lane | undefined): string {
  const status =
    s.status === 'cached'
      ? `CACHED (lookup ${formatMs(s.end - s.start)})`
      : s.status === 'error'
        ? `FAILED after ${formatMs(s.end - s.start)}`
        : s.status === 'unfinished'
          ? `did not finish (${formatMs(s.end - s.start)} so far)`
          : `ran in ${formatMs(s.end - s.start)}`;
  const lines = [`#${s.index}  ${s.text}`, `${lane ? lane.label : `stage ${s.stage}`} · line ${s.line}`, `${status}, from +${formatMs(s.start)}`];
  const parts = s.segments.filter((g) => g.ms >= 0.5).map((g) => `${label(g.category)} ${formatMs(g.ms)}`);
  if (parts.length > 1) lines.push(parts.join(' · '));
  const res: string[] = [];
  if (s.layerSize !== undefined) res.push(`layer ${formatBytes(s.layerSize)}`);
  if (s.cpuSeconds !== undefined) res.push(`cpu ${formatCpu(s.cpuSeconds)}`);
  if (s.peakMemoryBytes !== undefined) res.push(`peak mem ${formatBytes(s.peakMemoryBytes)}`);
  if (s.logLines) res.push(`${s.logLines} log line${s.logLines === 1 ? '' : 's'}`);
  if (res.length) lines.push(res.join(' · '));
  if (s.missReason) lines.push(`cache miss: ${s.missReason}`);
  if (s.error) lines.push(`error: ${s.error}`);
  if (s.critical) lines.push('on the critical path');
  return lines.join('\n');
}

export function label(c: Category): string {
  return CATEGORIES.find((x) => x.id === c)?.label ?? c;
}

/**
 * The timeline: an axis, a lane for build-wide phases, one lane per stage with
 * a bar per step (split by category, hatched when CACHED, outlined when on the
 * critical path) and arrows where the critical path crosses stages.
 */
export function timelineSvg(m: TimelineModel, width: number, id: string): { body: string; height: number } {
  const plotW = width - GUTTER - RIGHT;
  const total = Math.max(m.totalMs, 1);
  const x = (t: number) => GUTTER + (Math.max(0, Math.min(t, total)) / total) * plotW;
  const lanesTop = AXIS + PHASE_LANE;
  const height = lanesTop + Math.max(1, m.lanes.length) * LANE + 8;
  const laneY = new Map<number, number>(m.lanes.map((l, i) => [l.stage, lanesTop + i * LANE]));
  const criticalStages = new Set(m.lanes.filter((l) => l.steps.some((s) => s.critical)).map((l) => l.stage));
  const out: string[] = [];

  // lane backgrounds first, so grid lines and bars draw over them
  out.push(`<rect x="0" y="${AXIS}" width="${width}" height="${PHASE_LANE}" fill="#f8fafc"/>`);
  m.lanes.forEach((l, i) => {
    out.push(`<rect x="0" y="${n(lanesTop + i * LANE)}" width="${width}" height="${LANE}" fill="${i % 2 ? '#f8fafc' : '#ffffff'}"/>`);
  });

  const step = tickStep(total);
  out.push(`<g class="axis" font-size="11" fill="#64748b">`);
  for (let t = 0; t <= total + 1e-9; t += step) {
    const tx = x(t);
    out.push(`<line x1="${n(tx)}" y1="${AXIS - 4}" x2="${n(tx)}" y2="${height - 8}" stroke="#e2e8f0" stroke-width="1"/>`);
    // the last tick's label would collide with the total's
    if (total - t > step * 0.35 || t === 0) out.push(`<text x="${n(tx)}" y="${AXIS - 10}" text-anchor="middle">${text(formatTick(t, step, total))}</text>`);
  }
  out.push(`<line x1="${n(x(total))}" y1="${AXIS - 4}" x2="${n(x(total))}" y2="${height - 8}" stroke="#334155" stroke-width="1" stroke-dasharray="3 3"/>`);
  out.push(`<text x="${n(x(total))}" y="${AXIS - 10}" text-anchor="end" font-weight="600" fill="#0f172a">${text(formatMs(m.totalMs))}</text>`);
  out.push(`</g>`);

  out.push(laneLabel('build', 'setup · pull · commit · export · push', AXIS, PHASE_LANE, false));
  for (const p of m.phases) out.push(phaseBar(p, x, AXIS + (PHASE_LANE - 16) / 2));

  for (const l of m.lanes) {
    const y = laneY.get(l.stage)!;
    const head = l.name !== undefined ? `stage ${l.stage} · ` : '';
    const sub = l.steps.length ? `${head}${l.steps.length} step${l.steps.length === 1 ? '' : 's'} · ${formatMs(l.end - l.start)}` : `${head}not started`;
    out.push(laneLabel(l.label, sub, y, LANE, criticalStages.has(l.stage)));
    for (const s of l.steps) out.push(stepBar(s, l, x, y + (LANE - BAR) / 2, id));
  }

  // critical-path arrows over the bars, so they stay visible
  for (const k of m.critical.links) {
    const from = m.lanes.find((l) => l.stage === k.from);
    const to = m.lanes.find((l) => l.stage === k.to);
    if (!from || !to) continue;
    const x1 = x(from.end);
    const y1 = laneY.get(from.stage)! + LANE / 2 + (to.stage > from.stage ? BAR / 2 : -BAR / 2);
    const x2 = Math.max(x(to.start), x1 + 2);
    const y2 = laneY.get(to.stage)! + LANE / 2 + (to.stage > from.stage ? -BAR / 2 : BAR / 2);
    const why = k.kind === 'dep' ? `${to.label} waits for ${from.label}` : `${to.label} started when ${from.label} ended (job slot)`;
    out.push(
      `<path class="critical-link" d="M${n(x1)},${n(y1)} C${n(x1)},${n((y1 + y2) / 2)} ${n(x2)},${n((y1 + y2) / 2)} ${n(x2)},${n(y2)}" fill="none" stroke="${CRITICAL}" stroke-width="2" stroke-dasharray="${k.kind === 'dep' ? 'none' : '4 3'}" marker-end="url(#${id}-arrow)"><title>${text(`${why}${k.gapMs >= 1 ? `; gap ${formatMs(k.gapMs)}` : ''}`)}</title></path>`,
    );
  }
  return { body: out.join(''), height };
}

function laneLabel(title: string, sub: string, y: number, h: number, critical: boolean): string {
  const mid = y + h / 2;
  const mark = critical ? `<rect x="0" y="${n(y + 4)}" width="4" height="${n(h - 8)}" rx="2" fill="${CRITICAL}"><title>on the critical path</title></rect>` : '';
  const single = h < LANE;
  return (
    `<g class="lane-label">${mark}` +
    `<text x="14" y="${n(single ? mid + 4 : mid - 3)}" font-size="13" font-weight="600" fill="#0f172a">${text(fit(title, GUTTER - 24, 7.6) ?? title.slice(0, 3))}</text>` +
    (single ? '' : `<text x="14" y="${n(mid + 12)}" font-size="10.5" fill="#64748b">${text(fit(sub, GUTTER - 24, 5.6) ?? '')}</text>`) +
    `</g>`
  );
}

function phaseBar(p: PhaseBar, x: (t: number) => number, y: number): string {
  const x1 = x(p.start);
  const w = Math.max(2, x(p.end) - x1);
  const cat: Category = p.name;
  const name = p.name === 'resolve' ? 'pull' : p.name;
  const tip = `${name}${p.detail ? ` ${p.detail}` : ''}: ${formatMs(p.end - p.start)} (+${formatMs(p.start)} → +${formatMs(p.end)})`;
  const t = fit(p.detail && w > 140 ? `${name} ${p.detail}` : name, w - 6, 6);
  return (
    `<g class="phase" data-phase="${text(p.name)}" data-tip="${text(tip)}"><title>${text(tip)}</title>` +
    `<rect x="${n(x1)}" y="${n(y)}" width="${n(w)}" height="16" rx="3" fill="${COLORS[cat]}"/>` +
    (t ? `<text x="${n(x1 + 4)}" y="${n(y + 12)}" font-size="10.5" fill="#0f172a">${text(t)}</text>` : '') +
    `</g>`
  );
}

function stepBar(s: StepBar, lane: Lane, x: (t: number) => number, y: number, id: string): string {
  const x1 = x(s.start);
  const w = Math.max(3, x(s.end) - x1);
  const tip = stepTip(s, lane);
  const parts: string[] = [];
  parts.push(
    `<g class="step${s.critical ? ' critical' : ''}" data-step="${s.index}" data-stage="${s.stage}" data-status="${s.status}" data-critical="${s.critical}" data-tip="${text(tip)}"><title>${text(tip)}</title>`,
  );
  if (s.status === 'cached') {
    parts.push(`<rect x="${n(x1)}" y="${n(y)}" width="${n(w)}" height="${BAR}" rx="3" fill="url(#${id}-hatch)" stroke="${CACHED_HATCH}" stroke-width="1"/>`);
  } else if (s.status === 'unfinished') {
    parts.push(`<rect x="${n(x1)}" y="${n(y)}" width="${n(w)}" height="${BAR}" rx="3" fill="url(#${id}-open)" stroke="#94a3b8" stroke-width="1"/>`);
  } else {
    const dur = s.end - s.start;
    let cx = x1;
    const segs = dur > 0 ? s.segments.filter((g) => g.ms > 0) : s.segments.slice(0, 1);
    segs.forEach((g, i) => {
      const gw = i === segs.length - 1 ? x1 + w - cx : (g.ms / dur) * w;
      if (gw <= 0) return;
      parts.push(`<rect x="${n(cx)}" y="${n(y)}" width="${n(gw)}" height="${BAR}" fill="${COLORS[g.category]}"/>`);
      cx += gw;
    });
    if (s.status === 'error') parts.push(`<rect x="${n(x1)}" y="${n(y)}" width="${n(w)}" height="${BAR}" fill="${ERROR}" fill-opacity="0.85"/>`);
  }
  const stroke = s.critical ? CRITICAL : s.status === 'error' ? '#7f1d1d' : '#ffffff';
  parts.push(`<rect x="${n(x1)}" y="${n(y)}" width="${n(w)}" height="${BAR}" rx="3" fill="none" stroke="${stroke}" stroke-width="${s.critical ? 2.5 : 1}"/>`);

  const ink = s.status === 'error' ? '#ffffff' : s.status === 'cached' ? CACHED_INK : '#0f172a';
  const room = w - 8;
  let t: string | undefined;
  if (s.status === 'cached') t = fit(`CACHED ${s.text}`, room) ?? fit('CACHED', room, 6.2);
  else if (s.status === 'error') t = fit(`FAILED ${s.text}`, room) ?? fit('FAILED', room, 6.2);
  else t = fit(`${s.text}`, room);
  if (t) {
    parts.push(`<text x="${n(x1 + 5)}" y="${n(y + BAR / 2 + 4)}" font-size="11" font-family="${MONO}" fill="${ink}"${s.status === 'cached' ? ' font-weight="600"' : ''}>${text(t)}</text>`);
  }
  parts.push('</g>');
  return parts.join('');
}

/** A horizontal bar of `totals`, `width` wide, with a legend under it. */
export function breakdownSvg(totals: CategoryTotal[], whole: number, width: number, y: number): { body: string; height: number } {
  const out: string[] = [];
  const h = 26;
  let cx = 0;
  for (const t of totals) {
    const w = whole > 0 ? (t.ms / whole) * width : 0;
    if (w <= 0) continue;
    const tip = `${label(t.category)}: ${formatMs(t.ms)} (${percent(t.ms, whole)})`;
    out.push(`<g class="share" data-category="${t.category}" data-tip="${text(tip)}"><title>${text(tip)}</title><rect x="${n(cx)}" y="${n(y)}" width="${n(w)}" height="${h}" fill="${COLORS[t.category]}"/>`);
    const tt = w >= 40 ? fit(`${label(t.category)} ${percent(t.ms, whole)}`, w - 8, 6.2) : undefined;
    if (tt) out.push(`<text x="${n(cx + 5)}" y="${n(y + 17)}" font-size="11" fill="#0f172a">${text(tt)}</text>`);
    out.push('</g>');
    cx += w;
  }
  out.push(`<rect x="0" y="${n(y)}" width="${n(width)}" height="${h}" rx="3" fill="none" stroke="#cbd5e1"/>`);
  // legend entries flow left to right and wrap
  let lx = 0;
  let ly = y + h + 20;
  for (const t of totals) {
    const s = `${label(t.category)} ${formatMs(t.ms)} · ${percent(t.ms, whole)}`;
    const w = 18 + s.length * 6.3 + 18;
    if (lx + w > width) {
      lx = 0;
      ly += 18;
    }
    out.push(`<rect x="${n(lx)}" y="${n(ly - 10)}" width="12" height="12" rx="2" fill="${COLORS[t.category]}"/><text x="${n(lx + 17)}" y="${n(ly)}" font-size="11.5" fill="#334155">${text(s)}</text>`);
    lx += w;
  }
  return { body: out.join(''), height: ly - y + 8 };
}

/** The marks the timeline uses, for a legend. */
export function legendSvg(width: number, y: number, id: string): { body: string; height: number } {
  const items: Array<{ swatch: string; label: string }> = [
    ...CATEGORIES.filter((c) => c.id !== 'wait' && c.id !== 'cache').map((c) => ({ swatch: `<rect width="14" height="12" rx="2" fill="${COLORS[c.id]}"/>`, label: c.label })),
    { swatch: `<rect width="14" height="12" rx="2" fill="url(#${id}-hatch)" stroke="${CACHED_HATCH}"/>`, label: 'CACHED' },
    { swatch: `<rect width="14" height="12" rx="2" fill="${ERROR}"/>`, label: 'failed' },
    { swatch: `<rect x="1" y="1" width="12" height="10" rx="2" fill="#ffffff" stroke="${CRITICAL}" stroke-width="2.5"/>`, label: 'critical path' },
  ];
  const out: string[] = [];
  let lx = 0;
  let ly = y;
  for (const it of items) {
    const w = 20 + it.label.length * 6.5 + 16;
    if (lx + w > width) {
      lx = 0;
      ly += 18;
    }
    out.push(`<g transform="translate(${n(lx)},${n(ly - 10)})">${it.swatch}</g><text x="${n(lx + 20)}" y="${n(ly)}" font-size="11.5" fill="#334155">${text(it.label)}</text>`);
    lx += w;
  }
  return { body: out.join(''), height: ly - y + 10 };
}

export function outcomeLine(m: TimelineModel): { text: string; color: string } {
  switch (m.outcome.state) {
    case 'ok':
      return { text: `built ${m.outcome.tags.length ? m.outcome.tags.join(', ') : m.outcome.imageId.slice(0, 19)} in ${formatMs(m.totalMs)}`, color: '#15803d' };
    case 'failed':
      return { text: `FAILED after ${formatMs(m.totalMs)}: ${m.outcome.error}`, color: ERROR };
    default:
      return { text: `did not finish (${formatMs(m.totalMs)} recorded)`, color: '#b45309' };
  }
}

/** The one-sentence answer to "why is this build slow?": the largest share of wall time and the slowest step that mattered. */
export function verdict(m: TimelineModel): { category?: { label: string; share: string }; step?: { text: string; time: string; share: string } } {
  const top = [...m.critical.breakdown].sort((a, b) => b.ms - a.ms)[0];
  const onPath = new Set(m.critical.steps);
  const slow = m.lanes
    .flatMap((l) => l.steps)
    .filter((s) => onPath.has(s.index))
    .sort((a, b) => b.end - b.start - (a.end - a.start))[0];
  return {
    ...(top && m.totalMs > 0 ? { category: { label: label(top.category), share: percent(top.ms, m.totalMs) } } : {}),
    ...(slow && slow.end > slow.start ? { step: { text: slow.text, time: formatMs(slow.end - slow.start), share: percent(slow.end - slow.start, m.totalMs) } } : {}),
  };
}

export function verdictText(m: TimelineModel): string {
  const v = verdict(m);
  const parts: string[] = [];
  if (v.category) parts.push(`Mostly ${v.category.label}: ${v.category.share} of ${formatMs(m.totalMs)}.`);
  if (v.step) parts.push(`Slowest step on the critical path: ${v.step.text} — ${v.step.time} (${v.step.share}).`);
  return parts.join(' ');
}

export function statsLine(m: TimelineModel): string {
  const s = m.stats;
  const parts = [`${s.steps} steps`, `${s.executed} ran`, `${s.cached} CACHED`];
  if (s.failed) parts.push(`${s.failed} failed`);
  parts.push(`layers ${formatBytes(s.layerBytes)}`);
  if (s.pulledBytes) parts.push(`pulled ${formatBytes(s.pulledBytes)}`);
  if (s.pushedBytes) parts.push(`pushed ${formatBytes(s.pushedBytes)}`);
  if (s.cpuSeconds) parts.push(`RUN cpu ${formatCpu(s.cpuSeconds)}`);
  return parts.join(' · ');
}

/** The whole report as one standalone SVG: header, where time went, timeline, legend. */
export function renderModelSvg(m: TimelineModel): string {
  const W = 1120;
  const pad = 24;
  const id = 'kiln';
  const out: string[] = [];
  let y = pad;
  const outcome = outcomeLine(m);
  out.push(`<text x="${pad}" y="${y + 18}" font-size="20" font-weight="700" fill="#0f172a">kiln build report${m.file ? ` — ${text(m.file)}` : ''}</text>`);
  y += 30;
  out.push(`<text x="${pad}" y="${y + 16}" font-size="13.5" font-weight="600" fill="${outcome.color}">${text(fit(outcome.text, W - 2 * pad, 7.2) ?? '')}</text>`);
  y += 22;
  out.push(`<text x="${pad}" y="${y + 15}" font-size="12.5" fill="#475569">${text(statsLine(m))}</text>`);
  y += 22;
  const why = verdictText(m);
  if (why) {
    out.push(`<text class="verdict" x="${pad}" y="${y + 15}" font-size="12.5" font-weight="600" fill="#0f172a">${text(fit(why, W - 2 * pad, 6.6) ?? '')}</text>`);
    y += 22;
  }
  y += 12;

  out.push(`<text x="${pad}" y="${y + 14}" font-size="14" font-weight="700" fill="#0f172a">Where the time went</text>`);
  out.push(`<text x="${pad + 184}" y="${y + 14}" font-size="11.5" fill="#64748b">wall-clock along the critical path (${text(formatMs(m.totalMs))})</text>`);
  y += 24;
  const bd = breakdownSvg(m.critical.breakdown, m.totalMs, W - 2 * pad, 0);
  out.push(`<g transform="translate(${pad},${y})">${bd.body}</g>`);
  y += bd.height + 16;

  out.push(`<text x="${pad}" y="${y + 14}" font-size="14" font-weight="700" fill="#0f172a">Timeline</text>`);
  out.push(`<text x="${pad + 80}" y="${y + 14}" font-size="11.5" fill="#64748b">one lane per stage; hover a bar for details</text>`);
  y += 24;
  const tl = timelineSvg(m, W - 2 * pad, id);
  out.push(`<g transform="translate(${pad},${y})">${tl.body}</g>`);
  y += tl.height + 10;
  const lg = legendSvg(W - 2 * pad, 10, id);
  out.push(`<g transform="translate(${pad},${y})">${lg.body}</g>`);
  y += lg.height + 10;
  out.push(`<text x="${W - pad}" y="${y + 8}" font-size="10.5" text-anchor="end" fill="#94a3b8">kiln ${text(VERSION)}</text>`);
  y += pad;

  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${n(y)}" viewBox="0 0 ${W} ${n(y)}" font-family="${text(FONT)}" role="img">` +
    `<title>${text(`kiln build report: ${outcome.text}`)}</title>` +
    svgDefs(id) +
    `<rect width="${W}" height="${n(y)}" fill="#ffffff"/>` +
    out.join('') +
    `</svg>\n`
  );
}

/** The report as a self-contained SVG image. */
export function renderReportSvg(events: readonly BuildEvent[]): string {
  return renderModelSvg(buildTimeline(events));
}
