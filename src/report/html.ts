import type { BuildEvent } from '../events/index.js';
import { VERSION } from '../version.js';
import { buildTimeline, CATEGORIES, type CategoryTotal, type Lane, type StepBar, type TimelineModel } from './timeline.js';
import { CACHED_FILL, CACHED_INK, COLORS, CRITICAL, ERROR, esc, formatBytes, formatCpu, formatMs, percent, text } from './format.js';
import { FONT, label, legendSvg, outcomeLine, svgDefs, timelineSvg, verdict } from './svg.js';

const WIDTH = 1120;

const CSS = `
*{box-sizing:border-box}
body{margin:0;background:#f1f5f9;color:#0f172a;font:14px/1.45 ${FONT}}
main{max-width:${WIDTH + 48}px;margin:0 auto;padding:28px 24px 40px}
h1{font-size:22px;margin:0 0 4px}
h1 .file{color:#64748b;font-weight:500}
h2{font-size:16px;margin:0 0 2px}
.sub{color:#64748b;font-size:12.5px;margin:0 0 12px}
.verdict{margin:0 0 12px;font-size:14px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:18px 20px;margin:16px 0;box-shadow:0 1px 2px rgba(15,23,42,.04)}
.outcome{font-weight:600;margin:2px 0 0}
.outcome.ok{color:#15803d}.outcome.failed{color:${ERROR}}.outcome.unfinished{color:#b45309}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:10px;margin-top:16px}
.stat{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:10px 14px}
.stat b{display:block;font-size:19px;font-weight:700;white-space:nowrap}
.stat span{color:#64748b;font-size:12px}
.stat.cached b{color:${CACHED_INK}}
.bar{display:flex;height:30px;border-radius:6px;overflow:hidden;border:1px solid #cbd5e1}
.bar div{height:100%;font-size:11.5px;line-height:30px;padding-left:6px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;color:#0f172a}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:24px;margin-top:14px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;color:#64748b;font-weight:600;font-size:12px;border-bottom:1px solid #e2e8f0;padding:6px 8px}
td{border-bottom:1px solid #f1f5f9;padding:5px 8px;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
code,.instr{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,'DejaVu Sans Mono',monospace;font-size:12.5px}
.instr{word-break:break-all}
.badge{display:inline-block;font-size:10.5px;font-weight:700;letter-spacing:.03em;border-radius:4px;padding:1px 6px;margin-right:4px;white-space:nowrap}
.badge.cached{background:${CACHED_FILL};color:${CACHED_INK}}
.badge.ran{background:#dcfce7;color:#166534}
.badge.meta{background:#f1f5f9;color:#475569}
.badge.error{background:#fee2e2;color:#991b1b}
.badge.unfinished{background:#fef3c7;color:#92400e}
.badge.critical{background:#ffedd5;color:#9a3412}
tr.critical td:first-child{box-shadow:inset 3px 0 0 ${CRITICAL}}
tr.hl td{background:#fff7ed}
.mini{display:flex;width:120px;height:10px;border-radius:2px;overflow:hidden;background:#f1f5f9;margin-top:4px}
.timeline svg{width:100%;height:auto;display:block}
.step,.phase,.share{cursor:default}
.step:hover>rect:last-of-type{stroke:#0f172a;stroke-width:2}
.path{list-style:none;margin:8px 0 0;padding:0}
.path li{display:flex;gap:10px;align-items:baseline;padding:3px 0;border-bottom:1px dashed #f1f5f9}
.path li .t{width:80px;text-align:right;color:#475569;font-variant-numeric:tabular-nums;flex:none}
.path li.link{color:${CRITICAL};font-size:12.5px;border:0}
.err{background:#fef2f2;border:1px solid #fecaca;border-radius:8px;padding:12px 14px}
.err pre{margin:8px 0 0;white-space:pre-wrap;font-size:12px;color:#7f1d1d}
.warn li{margin:2px 0}
footer{color:#94a3b8;font-size:12px;text-align:right}
#tip{position:fixed;display:none;pointer-events:none;background:#0f172a;color:#f8fafc;font-size:12px;line-height:1.5;padding:8px 10px;border-radius:6px;white-space:pre-line;max-width:460px;z-index:9;box-shadow:0 4px 14px rgba(0,0,0,.25)}
@media (max-width:800px){.cols{grid-template-columns:1fr}}
`;

// Native <title> tooltips show only after a delay and without styling; this swaps them for an immediate one and links bars to table rows.
const JS = `
(function(){
  var tip=document.getElementById('tip');
  document.querySelectorAll('[data-tip]>title').forEach(function(t){t.remove();});
  document.addEventListener('mousemove',function(ev){
    var el=ev.target&&ev.target.closest?ev.target.closest('[data-tip]'):null;
    if(!el){tip.style.display='none';return;}
    tip.textContent=el.getAttribute('data-tip');
    tip.style.display='block';
    var x=ev.clientX+14,y=ev.clientY+14,r=tip.getBoundingClientRect();
    if(x+r.width>window.innerWidth-8)x=ev.clientX-r.width-14;
    if(y+r.height>window.innerHeight-8)y=ev.clientY-r.height-14;
    tip.style.left=x+'px';tip.style.top=y+'px';
  });
  document.addEventListener('click',function(ev){
    var el=ev.target&&ev.target.closest?ev.target.closest('[data-step]'):null;
    if(!el)return;
    var row=document.getElementById('step-'+el.getAttribute('data-step'));
    if(!row)return;
    document.querySelectorAll('tr.hl').forEach(function(r){r.classList.remove('hl');});
    row.classList.add('hl');
    row.scrollIntoView({block:'center',behavior:'smooth'});
  });
})();
`;

/** The report as one HTML page: no external stylesheet, font, image or script. */
export function renderModelHtml(m: TimelineModel): string {
  const outcome = outcomeLine(m);
  const laneOf = new Map<number, Lane>(m.lanes.map((l) => [l.stage, l]));
  const steps = m.lanes.flatMap((l) => l.steps).sort((a, b) => a.index - b.index);
  const tl = timelineSvg(m, WIDTH, 'kt');
  const lg = legendSvg(WIDTH, 12, 'kt');
  const workSum = m.totals.reduce((s, t) => s + t.ms, 0);
  const parallel = m.totalMs > 0 ? workSum / m.totalMs : 1;

  const body: string[] = [];
  body.push(`<header><h1>kiln build report${m.file ? ` <span class="file">— ${text(m.file)}</span>` : ''}</h1>`);
  body.push(`<p class="outcome ${m.outcome.state}">${m.outcome.state === 'ok' ? '✓' : m.outcome.state === 'failed' ? '✗' : '…'} ${text(outcome.text)}</p>`);
  body.push(`<div class="stats">${statCards(m)}</div></header>`);

  if (m.outcome.state === 'failed') body.push(failureCard(m, steps));

  body.push(`<section class="card" id="time"><h2>Where the time went</h2>`);
  body.push(`<p class="sub">Wall-clock time (${text(formatMs(m.totalMs))}) along the critical path: what you would have to shorten to make this build faster.</p>`);
  const v = verdict(m);
  if (v.category || v.step) {
    const parts: string[] = [];
    if (v.category) parts.push(`Mostly <b>${text(v.category.label)}</b>: ${text(v.category.share)} of ${text(formatMs(m.totalMs))}.`);
    if (v.step) parts.push(`Slowest step on the critical path: <span class="instr">${text(v.step.text)}</span> — <b>${text(v.step.time)}</b> (${text(v.step.share)}).`);
    body.push(`<p class="verdict">${parts.join(' ')}</p>`);
  }
  body.push(stackedBar(m.critical.breakdown, m.totalMs));
  body.push(`<div class="cols"><div><h2 style="font-size:14px">Along the critical path</h2>${categoryTable(m.critical.breakdown, m.totalMs, 'of wall time')}</div>`);
  body.push(
    `<div><h2 style="font-size:14px">Work in all stages</h2>${categoryTable(m.totals, workSum, 'of work')}<p class="sub" style="margin-top:8px">${text(formatMs(workSum))} of work in ${text(formatMs(m.totalMs))}${parallel >= 1.05 ? ` — stages overlapped ${parallel.toFixed(1)}×` : ''}.</p></div></div>`,
  );
  body.push(`</section>`);

  body.push(`<section class="card timeline" id="timeline"><h2>Timeline</h2><p class="sub">One lane per stage, a bar per step, split by where its time went. Hover a bar for details; click it to find its row below.</p>`);
  body.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${tl.height}" role="img" aria-label="build timeline" font-family="${esc(FONT)}">${svgDefs('kt')}${tl.body}</svg>`,
  );
  body.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${lg.height + 4}" role="img" aria-label="legend" font-family="${esc(FONT)}" style="margin-top:8px">${lg.body}</svg>`);
  body.push(`</section>`);

  body.push(`<section class="card" id="critical-path"><h2>Critical path</h2><p class="sub">The chain of steps that decided the total time (${text(formatMs(m.totalMs))}); a step not on it could take longer without delaying the build.</p>`);
  body.push(criticalList(m, laneOf));
  body.push(`</section>`);

  const slow = steps.filter((s) => s.end > s.start).sort((a, b) => b.end - b.start - (a.end - a.start)).slice(0, 5);
  if (slow.length) {
    body.push(`<section class="card" id="slowest"><h2>Slowest steps</h2><table><thead><tr><th>step</th><th>stage</th><th class="num">time</th><th class="num">share of build</th></tr></thead><tbody>`);
    for (const s of slow) {
      body.push(
        `<tr${s.critical ? ' class="critical"' : ''}><td><span class="instr">${text(s.text)}</span> ${statusBadge(s)}${s.critical ? '<span class="badge critical">CRITICAL PATH</span>' : ''}</td><td>${text(laneOf.get(s.stage)?.label ?? String(s.stage))}</td><td class="num">${text(formatMs(s.end - s.start))}</td><td class="num">${text(percent(s.end - s.start, m.totalMs))}</td></tr>`,
      );
    }
    body.push(`</tbody></table></section>`);
  }

  body.push(`<section class="card" id="steps"><h2>Steps</h2><p class="sub">Every step in the order it started.</p><table><thead><tr>`);
  body.push(`<th class="num">#</th><th>stage</th><th>instruction</th><th>status</th><th class="num">start</th><th class="num">time</th><th class="num">layer</th><th class="num">cpu</th></tr></thead><tbody>`);
  for (const s of steps) body.push(stepRow(s, laneOf.get(s.stage)));
  body.push(`</tbody></table></section>`);

  if (m.stats.warnings.length) {
    body.push(`<section class="card" id="warnings"><h2>Warnings</h2><ul class="warn">`);
    for (const w of m.stats.warnings) body.push(`<li>${w.where ? `<code>${text(w.where)}</code> ` : ''}${text(w.message)}</li>`);
    body.push(`</ul></section>`);
  }
  body.push(`<footer>kiln ${text(VERSION)} · build started ${text(new Date(m.origin).toISOString())}</footer>`);

  return (
    `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"/>` +
    `<title>${text(`kiln build report${m.file ? ` — ${m.file}` : ''}`)}</title>` +
    `<style>${CSS}</style></head><body><main>${body.join('\n')}</main><div id="tip"></div><script>${JS}</script></body></html>\n`
  );
}

/** The report as a self-contained HTML page. */
export function renderReportHtml(events: readonly BuildEvent[]): string {
  return renderModelHtml(buildTimeline(events));
}

function statCards(m: TimelineModel): string {
  const s = m.stats;
  const fsSteps = s.executed + s.cached;
  const cards: Array<[string, string, string?]> = [
    [formatMs(m.totalMs), 'total time'],
    [String(s.steps), 'steps'],
    [String(s.executed), 'ran'],
    [String(s.cached), 'CACHED', 'cached'],
    [fsSteps ? percent(s.cached, fsSteps) : '—', 'cache hits'],
    [formatBytes(s.layerBytes), 'layers written'],
  ];
  if (s.pulledBytes) cards.push([formatBytes(s.pulledBytes), 'pulled']);
  if (s.pushedBytes) cards.push([formatBytes(s.pushedBytes), 'pushed']);
  if (s.cpuSeconds) cards.push([formatCpu(s.cpuSeconds), 'RUN cpu']);
  if (s.peakMemoryBytes) cards.push([formatBytes(s.peakMemoryBytes), 'peak RUN memory']);
  if (s.failed) cards.push([String(s.failed), 'failed']);
  return cards.map(([v, l, c]) => `<div class="stat${c ? ` ${c}` : ''}"><b>${text(v)}</b><span>${text(l)}</span></div>`).join('');
}

function stackedBar(totals: CategoryTotal[], whole: number): string {
  const parts = totals
    .filter((t) => t.ms > 0)
    .map((t) => {
      const tip = `${label(t.category)}: ${formatMs(t.ms)} (${percent(t.ms, whole)})`;
      const share = whole > 0 ? t.ms / whole : 0;
      return `<div class="share" data-category="${t.category}" data-tip="${text(tip)}" style="width:${whole > 0 ? ((t.ms / whole) * 100).toFixed(3) : 0}%;background:${COLORS[t.category]}">${share >= 0.07 ? `${text(`${label(t.category)} ${percent(t.ms, whole)}`)}` : ''}</div>`;
    });
  return `<div class="bar">${parts.join('')}</div>`;
}

function categoryTable(totals: CategoryTotal[], whole: number, what: string): string {
  if (!totals.length) return `<p class="sub">nothing recorded</p>`;
  const rows = totals.map((t) => {
    const info = CATEGORIES.find((c) => c.id === t.category)!;
    return `<tr title="${text(info.description)}"><td><span class="sw" style="background:${COLORS[t.category]}"></span>${text(info.label)}</td><td class="num">${text(formatMs(t.ms))}</td><td class="num">${text(percent(t.ms, whole))}</td></tr>`;
  });
  return `<table><thead><tr><th>category</th><th class="num">time</th><th class="num">${text(what)}</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function criticalList(m: TimelineModel, laneOf: Map<number, Lane>): string {
  if (!m.critical.steps.length) return `<p class="sub">No step ran.</p>`;
  const byIndex = new Map(m.lanes.flatMap((l) => l.steps).map((s) => [s.index, s]));
  const items: string[] = [];
  let stage: number | undefined;
  for (const i of m.critical.steps) {
    const s = byIndex.get(i)!;
    if (stage !== undefined && s.stage !== stage) {
      const link = m.critical.links.find((k) => k.to === s.stage);
      const from = laneOf.get(link?.from ?? stage)?.label ?? String(stage);
      const to = laneOf.get(s.stage)?.label ?? String(s.stage);
      const why = link?.kind === 'slot' ? `${to} started when ${from} ended (waiting for a job slot)` : `${to} waits for ${from}`;
      items.push(`<li class="link">↳ ${text(why)}${link && link.gapMs >= 1 ? `, after a gap of ${text(formatMs(link.gapMs))}` : ''}</li>`);
    }
    stage = s.stage;
    items.push(
      `<li data-critical-step="${s.index}"><span class="t">${text(formatMs(s.end - s.start))}</span><span><span class="badge meta">${text(laneOf.get(s.stage)?.label ?? String(s.stage))}</span> <span class="instr">${text(s.text)}</span> ${statusBadge(s)}</span></li>`,
    );
  }
  return `<ol class="path">${items.join('')}</ol>`;
}

function statusBadge(s: StepBar): string {
  switch (s.status) {
    case 'cached':
      return '<span class="badge cached">CACHED</span>';
    case 'error':
      return '<span class="badge error">FAILED</span>';
    case 'unfinished':
      return '<span class="badge unfinished">UNFINISHED</span>';
    default:
      if (s.kind === 'FROM') return '<span class="badge meta">BASE</span>';
      return s.layerSize !== undefined || s.cpuSeconds !== undefined ? '<span class="badge ran">RAN</span>' : '<span class="badge meta">CONFIG</span>';
  }
}

function stepRow(s: StepBar, lane: Lane | undefined): string {
  const dur = s.end - s.start;
  const mini = dur > 0 ? s.segments.filter((g) => g.ms > 0).map((g) => `<span style="display:block;height:100%;width:${((g.ms / dur) * 100).toFixed(2)}%;background:${COLORS[g.category]}"></span>`) : [];
  const notes: string[] = [];
  if (s.missReason) notes.push(`<div class="sub" style="margin:2px 0 0">cache miss: ${text(s.missReason)}</div>`);
  if (s.error) notes.push(`<div class="sub" style="margin:2px 0 0;color:${ERROR}">${text(s.error)}</div>`);
  return (
    `<tr id="step-${s.index}" class="${s.critical ? 'critical' : ''}" data-step="${s.index}">` +
    `<td class="num">${s.index}</td><td>${text(lane?.label ?? String(s.stage))}</td>` +
    `<td><span class="instr">${text(s.text)}</span>${notes.join('')}</td>` +
    `<td>${statusBadge(s)}${s.critical ? '<span class="badge critical">CRITICAL PATH</span>' : ''}</td>` +
    `<td class="num">+${text(formatMs(s.start))}</td>` +
    `<td class="num">${text(formatMs(dur))}${mini.length > 1 ? `<div class="mini" style="margin-left:auto">${mini.join('')}</div>` : ''}</td>` +
    `<td class="num">${s.layerSize !== undefined ? text(formatBytes(s.layerSize)) : ''}</td>` +
    `<td class="num">${s.cpuSeconds !== undefined ? text(formatCpu(s.cpuSeconds)) : ''}</td></tr>`
  );
}

function failureCard(m: TimelineModel, steps: StepBar[]): string {
  const o = m.outcome;
  if (o.state !== 'failed') return '';
  const failed = steps.find((s) => s.index === o.stepIndex) ?? steps.find((s) => s.status === 'error');
  const tail = failed?.logTail.length ? `<pre>${text(failed.logTail.join('\n'))}</pre>` : '';
  return (
    `<section class="card" id="failure"><div class="err"><b>Build failed</b>${failed ? ` at <span class="instr">${text(failed.text)}</span> (line ${failed.line})` : ''}: ${text(o.error)}${tail}</div></section>`
  );
}
