import { printable } from './printable.js';

/**
 * Every failure kiln reports is a KilnError with a stable code. The CLI maps
 * codes to exit status (usage errors → 2, everything else → 1) and prints the
 * message as one line; the library lets callers switch on `code`.
 */
export type ErrorCode =
  | 'USAGE'
  | 'DOCKERFILE_PARSE'
  | 'DOCKERFILE_PLAN'
  | 'EXPANSION'
  | 'INVALID_REFERENCE'
  | 'NOT_FOUND'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'STORE'
  | 'STORE_LOCKED'
  | 'UNSAFE_PATH'
  | 'REGISTRY'
  | 'REGISTRY_AUTH'
  | 'UNSUPPORTED'
  | 'CONTEXT'
  | 'RUN_FAILED'
  | 'SANDBOX'
  | 'ARCHIVE'
  | 'CANCELLED'
  /** An operation only root may do (chown, mount), attempted without root. */
  | 'NEEDS_ROOT'
  /** Rootless mode cannot do what was asked: a missing prerequisite, or an id outside the mapped range. */
  | 'ROOTLESS'
  /** `--load`: no Docker daemon answered, or it refused the image. */
  | 'DOCKER_DAEMON'
  | 'INTERNAL';

export interface SourceLocation {
  /** File name as the user gave it (e.g. "Dockerfile" or "docker/app.Dockerfile"). */
  file: string;
  /** 1-based line. */
  line: number;
  /** 1-based column, when known. */
  column?: number;
}

export class KilnError extends Error {
  readonly code: ErrorCode;
  readonly location?: SourceLocation;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, opts: { location?: SourceLocation; hint?: string; cause?: unknown } = {}) {
    // messages quote Dockerfiles, image configs, registry replies and RUN output: keep them one safe, bounded line
    super(printable(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KilnError';
    this.code = code;
    if (opts.location) this.location = opts.location;
    if (opts.hint) this.hint = printable(opts.hint);
  }

  /** One line, as the CLI prints it: `Dockerfile:7: unknown instruction "RUNN" (did you mean RUN?)`. */
  format(): string {
    const where = this.location ? `${this.location.file}:${this.location.line}: ` : '';
    const hint = this.hint ? ` (${this.hint})` : '';
    return `${where}${this.message}${hint}`;
  }
}

export function isKilnError(e: unknown): e is KilnError {
  return e instanceof KilnError;
}
