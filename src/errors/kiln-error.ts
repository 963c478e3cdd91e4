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

export interface KilnErrorOptions {
  location?: SourceLocation;
  hint?: string;
  cause?: unknown;
}

export class KilnError extends Error {
  readonly code: ErrorCode;
  // not readonly: `at()` attaches it once, when the error passes the instruction that raised it
  location?: SourceLocation;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, opts: KilnErrorOptions = {}) {
    // messages quote Dockerfiles, image configs, registry replies and RUN output: keep them one safe, bounded line
    super(printable(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KilnError';
    this.code = code;
    if (opts.location) this.location = opts.location;
    if (opts.hint) this.hint = printable(opts.hint);
  }

  /**
   * Gives the error a Dockerfile location unless it has one, and returns it:
   * the same object, so its class, typed fields and stack survive (as
   * BuildKit's `parser.WithLocation`, which wraps without losing the cause).
   */
  at(location: SourceLocation): this {
    this.location ??= location;
    return this;
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

/** A RUN whose process failed: what it exited with and what it printed last. */
export class RunFailedError extends KilnError {
  readonly exitCode: number;
  /** The last lines of output (stdout and stderr interleaved); the message quotes only a few. */
  readonly outputTail: readonly string[];
  /** The kernel's OOM killer ended it (exit 137 with the memory limit reached). */
  readonly oomKilled: boolean;
  /** The instruction as written, e.g. `RUN make`, when the step is known where the error is raised. */
  readonly step?: string;
  /** The file holding the whole output, when the build kept one. */
  readonly logFile?: string;

  constructor(message: string, details: { exitCode: number; outputTail: readonly string[]; oomKilled?: boolean; step?: string; logFile?: string }, opts: KilnErrorOptions = {}) {
    super('RUN_FAILED', message, opts);
    this.name = 'RunFailedError';
    this.exitCode = details.exitCode;
    this.outputTail = [...details.outputTail];
    this.oomKilled = details.oomKilled ?? false;
    if (details.step !== undefined) this.step = details.step;
    if (details.logFile !== undefined) this.logFile = details.logFile;
  }
}

/** A registry answered with an error status; `ociCode` is the first code of its OCI error body (e.g. `MANIFEST_UNKNOWN`). */
export class RegistryError extends KilnError {
  readonly status: number;
  readonly ociCode?: string;

  constructor(code: Extract<ErrorCode, 'REGISTRY' | 'REGISTRY_AUTH' | 'NOT_FOUND'>, message: string, details: { status: number; ociCode?: string }, opts: KilnErrorOptions = {}) {
    super(code, message, opts);
    this.name = 'RegistryError';
    this.status = details.status;
    if (details.ociCode !== undefined) this.ociCode = details.ociCode;
  }
}
