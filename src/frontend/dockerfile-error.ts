import { KilnError, type KilnErrorOptions } from '../errors/index.js';

/** The token of an instruction a warning or an error is about. */
export type TokenRef =
  | { kind: 'keyword' }
  /** Everything after the keyword and the flags. */
  | { kind: 'arguments' }
  /** One argument word as written (quotes kept), or a JSON-form string as decoded. */
  | { kind: 'argument'; text: string }
  /** The whole `--name=value`; `last` picks the last of repeated flags. */
  | { kind: 'flag'; name: string; last?: boolean }
  /** The value of `--name`; `value` (quotes ignored) picks one of repeated flags. */
  | { kind: 'flag-value'; name: string; value?: string }
  /** The first `$name` / `${name…}` of the instruction. */
  | { kind: 'variable'; name: string }
  | { kind: 'stage-name' }
  | { kind: 'as-keyword' }
  | { kind: 'image' }
  /** An ARG name, an ENV or LABEL key as written. */
  | { kind: 'key'; name: string }
  /** The value assigned to `key`; `text` (the value as written) bounds it when dockerfile-ast cannot. */
  | { kind: 'value'; key: string; text?: string }
  /** ONBUILD's trigger keyword. */
  | { kind: 'trigger' }
  /** The `<<NAME` marker of a heredoc. */
  | { kind: 'heredoc'; name: string }
  /** A parser directive's name (`# name=value`); without a token a directive error points at its value. */
  | { kind: 'directive-name' };

/**
 * A Dockerfile parse, plan or expansion error that names, where it is raised,
 * the token it is about: `kiln check` (through the locator, which the build
 * path never loads) turns the token into a column. Without a token the error
 * points at the instruction's keyword.
 */
export class DockerfileError extends KilnError {
  readonly token?: TokenRef;

  constructor(code: 'DOCKERFILE_PARSE' | 'DOCKERFILE_PLAN' | 'EXPANSION', message: string, opts: KilnErrorOptions & { token?: TokenRef } = {}) {
    const { token, ...rest } = opts;
    super(code, message, rest);
    this.name = 'DockerfileError';
    if (token) this.token = token;
  }
}
