import type { DeclaredArg } from '../frontend/var-scope.js';

/** Build args that ask for SBOMs of build stages and of the context besides the image's (BuildKit's names). */
export const SBOM_SCAN_STAGE = 'BUILDKIT_SBOM_SCAN_STAGE';
export const SBOM_SCAN_CONTEXT = 'BUILDKIT_SBOM_SCAN_CONTEXT';

/** They only steer the scanner: BuildKit keeps them out of RUN's environment. */
export function isSbomScanArg(name: string): boolean {
  return name === SBOM_SCAN_STAGE || name === SBOM_SCAN_CONTEXT;
}

/** A stage as the scan args see it: its name (`stage-N` when unnamed), the global ARGs its FROM saw and the ARGs in scope at its end. */
export interface ScannedStage {
  name: string;
  globalArgs: Readonly<Record<string, string>>;
  args: readonly DeclaredArg[];
}

/**
 * Whether `arg` is on for `stage`, read as BuildKit reads it: the global ARG's
 * value first, then the stage's own `ARG` (both after `--build-arg`, and only
 * when the Dockerfile declares them); a value is a boolean (Go's ParseBool
 * spellings) or a comma-separated list of stage names.
 */
export function scanArgOn(arg: string, stage: ScannedStage): boolean {
  let on = false;
  const global = stage.globalArgs[arg];
  if (global !== undefined) on = enabledForStage(stage.name, global);
  for (const a of stage.args) if (a.name === arg && a.value !== undefined) on = enabledForStage(stage.name, a.value);
  return on;
}

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

function enabledForStage(stage: string, value: string): boolean {
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  return value.split(',').some((s) => s.trim().toLowerCase() === stage);
}

/**
 * Which stages and whether the context get an SBOM besides the image, as
 * BuildKit decides: every built stage other than the target whose
 * `BUILDKIT_SBOM_SCAN_STAGE` is on, and the context when the target's
 * `BUILDKIT_SBOM_SCAN_CONTEXT` is on. `--attest type=sbom,scan-stage=true` /
 * `scan-context=true` turn them on for every built stage / the context.
 */
export function sbomScanTargets(built: readonly ScannedStage[], target: ScannedStage, forced: { scanStage?: boolean; scanContext?: boolean }): { stages: string[]; context: boolean } {
  const stages = built.filter((s) => s !== target && (forced.scanStage === true || scanArgOn(SBOM_SCAN_STAGE, s))).map((s) => s.name);
  return { stages, context: forced.scanContext === true || scanArgOn(SBOM_SCAN_CONTEXT, target) };
}
