import type { StepRef } from '../../events/index.js';

/**
 * A step's prefix as buildx writes it: `[linux/arm64 stage-1 2/5]`. The
 * number counts within the stage (only the steps BuildKit shows as vertices),
 * padded to the width of the total as buildx pads it; a Dockerfile of one
 * stage has no stage name (`[2/5]`). Steps buildx does not show (ENV, LABEL,
 * FROM another stage, …) carry no number: `[stage-1]`.
 */
export function stepLabel(s: StepRef): string {
  const parts: string[] = [];
  if (s.platform !== undefined) parts.push(s.platform);
  if (!s.onlyStage) parts.push(s.stageName ?? `stage-${s.stage}`);
  if (s.inStage) {
    const width = String(s.inStage.total).length;
    parts.push(`${String(s.inStage.index).padStart(width)}/${s.inStage.total}`);
  }
  return parts.length ? `[${parts.join(' ')}]` : '';
}

/** A transfer phase that is still moving bytes (or about to); the others end the blob's transfer. */
export function transferRunning(phase: string): boolean {
  return phase === 'waiting' || phase === 'downloading' || phase === 'uploading' || phase === 'retrying' || phase === 'resumed';
}

/** `text` after the step's label (no label, no leading space). */
export function labelled(s: StepRef, text: string): string {
  const l = stepLabel(s);
  return l ? `${l} ${text}` : text;
}
