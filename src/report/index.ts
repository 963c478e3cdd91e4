/**
 * report/ — the build report: a timeline model built from a build's events
 * (steps with their time split, phases, pulls and pushes, the critical path)
 * drawn as self-contained HTML or SVG, and the byte/duration formatting those
 * drawings share. It consumes events only and never depends on the solver.
 * May import: errors/, events/, fs/ (files written without following a symlink), spec/ (the one size formatter), version.ts.
 */
import path from 'node:path';
import { KilnError } from '../errors/index.js';
import { replaceFile } from '../fs/replace-file.js';
import type { BuildEvent } from '../events/index.js';
import { renderReportHtml } from './html.js';
import { renderReportSvg } from './svg.js';

export { renderReportHtml } from './html.js';
export { renderReportSvg } from './svg.js';
export { buildTimeline, CATEGORIES } from './timeline.js';
export type { Category, CategoryTotal, CriticalLink, Lane, PhaseBar, StepBar, StepStatus, TimelineModel } from './timeline.js';

export type ReportFormat = 'html' | 'svg';

/**
 * The format `file` asks for. The CLI calls it before building, so a typo in
 * the extension fails in a second rather than after the whole build.
 */
export function reportFormat(file: string): ReportFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.html' || ext === '.htm') return 'html';
  if (ext === '.svg') return 'svg';
  throw new KilnError('USAGE', `--report ${file}: the file name must end in .html or .svg`);
}

/** Writes the build report for `events` to `file`, as HTML or SVG by its extension. */
export async function writeReport(events: readonly BuildEvent[], file: string): Promise<void> {
  const doc = reportFormat(file) === 'svg' ? renderReportSvg(events) : renderReportHtml(events);
  try {
    await replaceFile(file, doc);
  } catch (e) {
    throw new KilnError('USAGE', `cannot write the build report ${file}: ${(e as Error).message}`, { cause: e });
  }
}
