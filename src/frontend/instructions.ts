/**
 * The typed Dockerfile instruction union the rest of kiln consumes.
 *
 * Values are as written (after logical-line joining, quote handling where the
 * instruction's own syntax requires it) but *before* variable expansion:
 * `expandInstruction()` (expand.ts) applies Docker's expansion at build time,
 * when base-image ENV and ARG values are known.
 */

import type { NetworkMode } from '../sandbox/network-mode.js';

/** 1-based line and column. */
export interface Position {
  line: number;
  column: number;
}

/** Source range of an instruction: from its keyword to the end of its last physical line (heredoc bodies included). */
export interface Range {
  start: Position;
  end: Position;
}

/** `["a","b"]` (exec form, JSON-decoded) or the raw shell text (never expanded by kiln). */
export type CommandArgs = { form: 'exec'; args: string[] } | { form: 'shell'; text: string };

export interface Heredoc {
  /** Delimiter word without quotes, e.g. `EOF`. */
  name: string;
  /** Body lines, each ending in `\n`; leading tabs already removed when `chomp`. */
  body: string;
  /** False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): no variable expansion of the body. */
  expand: boolean;
  /** `<<-EOF`: leading tabs were stripped from body lines and from the terminator. */
  chomp: boolean;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface ArgDecl {
  name: string;
  /** Default as written (quotes removed only at expansion time); undefined for `ARG NAME`. */
  default?: string;
}

interface InstructionBase {
  range: Range;
  /** The keyword as written (`from`, `Run`, …) — the casing check needs it. */
  keyword: string;
  /** The logical line as written after continuation joining (heredoc bodies excluded), e.g. `RUN apt-get update`. */
  original: string;
  /** Flags as written, quotes removed (`--from=build`), in order. */
  flags: string[];
  /** Text of the `#` comment lines directly above the instruction (no blank line between), `#` and one space removed. */
  comment?: string;
}

export interface FromInstruction extends InstructionBase {
  kind: 'FROM';
  image: string;
  /** `AS name` as written (case kept; stage names compare case-insensitively). */
  stageName?: string;
  /** The `AS` keyword as written, for the FromAsCasing check. */
  asKeyword?: string;
  platform?: string;
}

// ---- RUN --mount ----

interface MountBase {
  /** The flag value as written (CSV); `expandInstruction` re-parses it after expansion. */
  raw: string;
}

export interface BindMount extends MountBase {
  type: 'bind';
  target: string;
  source?: string;
  from?: string;
  /** Bind mounts are read-only unless `rw`/`readwrite`. */
  readonly: boolean;
}

export interface CacheMount extends MountBase {
  type: 'cache';
  target: string;
  id?: string;
  source?: string;
  from?: string;
  readonly: boolean;
  sharing: 'shared' | 'private' | 'locked';
  /** File mode bits (octal in the Dockerfile); default 0o755. */
  mode: number;
  uid: number;
  gid: number;
}

export interface TmpfsMount extends MountBase {
  type: 'tmpfs';
  target: string;
  /** Bytes; undefined = runtime default. */
  size?: number;
}

export interface SecretMount extends MountBase {
  type: 'secret';
  /** Defaults to the basename of target when omitted. */
  id: string;
  /** Defaults to `/run/secrets/<id>` unless `env` is given. */
  target?: string;
  /** Expose the secret as this environment variable. */
  env?: string;
  required: boolean;
  mode: number;
  uid: number;
  gid: number;
}

export interface SshMount extends MountBase {
  type: 'ssh';
  /** Defaults to `default`. */
  id: string;
  /** Socket path; default `/run/buildkit/ssh_agent.<n>`. */
  target?: string;
  required: boolean;
  mode: number;
  uid: number;
  gid: number;
}

export type RunMount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount;

export interface RunInstruction extends InstructionBase {
  kind: 'RUN';
  cmd: CommandArgs;
  heredocs: Heredoc[];
  mounts: RunMount[];
  network?: NetworkMode;
  security?: 'sandbox' | 'insecure';
}

export interface CmdInstruction extends InstructionBase {
  kind: 'CMD';
  cmd: CommandArgs;
}

export interface EntrypointInstruction extends InstructionBase {
  kind: 'ENTRYPOINT';
  cmd: CommandArgs;
}

export interface ShellInstruction extends InstructionBase {
  kind: 'SHELL';
  /** SHELL accepts only the JSON form. */
  shell: string[];
}

export interface LabelInstruction extends InstructionBase {
  kind: 'LABEL';
  pairs: KeyValue[];
  /** `LABEL key value` (no `=`): the LegacyKeyValueFormat check. */
  legacy: boolean;
}

export interface EnvInstruction extends InstructionBase {
  kind: 'ENV';
  pairs: KeyValue[];
  legacy: boolean;
}

export interface MaintainerInstruction extends InstructionBase {
  kind: 'MAINTAINER';
  maintainer: string;
}

export interface ExposeInstruction extends InstructionBase {
  kind: 'EXPOSE';
  /** As written: `80`, `80/tcp`, `8000-8010/udp`, `$PORT`. */
  ports: string[];
}

interface CopyBase extends InstructionBase {
  /** Sources as written (JSON form decoded); heredoc sources appear as `<<NAME` and in `heredocs`. */
  sources: string[];
  dest: string;
  heredocs: Heredoc[];
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  /** `--parents` (also accepted as `--parents=true|false`). */
  parents: boolean;
  exclude: string[];
}

export interface CopyInstruction extends CopyBase {
  kind: 'COPY';
}

/**
 * Whether a COPY or ADD makes an independent `--link` layer. BuildKit takes that path only without
 * `--chmod`; `--link --chmod=…` is an ordinary copy onto the stage (so an existing directory at the
 * destination is copied into, and keeps its mode), and its cache key depends on the layers below.
 */
export function isLinkedCopy(instr: Pick<CopyBase, 'link' | 'chmod'>): boolean {
  return instr.link && instr.chmod === undefined;
}

export interface AddInstruction extends CopyBase {
  kind: 'ADD';
  checksum?: string;
  keepGitDir?: boolean;
  unpack?: boolean;
}

export interface VolumeInstruction extends InstructionBase {
  kind: 'VOLUME';
  paths: string[];
}

export interface UserInstruction extends InstructionBase {
  kind: 'USER';
  user: string;
}

export interface WorkdirInstruction extends InstructionBase {
  kind: 'WORKDIR';
  path: string;
}

export interface ArgInstruction extends InstructionBase {
  kind: 'ARG';
  args: ArgDecl[];
}

export interface OnbuildInstruction extends InstructionBase {
  kind: 'ONBUILD';
  trigger: Instruction;
  /** The trigger text as Docker stores it in the image config's `OnBuild` list, e.g. `RUN echo hi`. */
  triggerText: string;
}

export interface StopsignalInstruction extends InstructionBase {
  kind: 'STOPSIGNAL';
  signal: string;
}

export interface HealthcheckOptions {
  /** Nanoseconds, like the image config. */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export interface HealthcheckInstruction extends InstructionBase {
  kind: 'HEALTHCHECK';
  /** `NONE` disables the base image's check; `CMD` defines one (shell form runs as `CMD-SHELL`). */
  test: { type: 'NONE' } | { type: 'CMD'; cmd: CommandArgs };
  options: HealthcheckOptions;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | LabelInstruction
  | MaintainerInstruction
  | ExposeInstruction
  | EnvInstruction
  | AddInstruction
  | CopyInstruction
  | EntrypointInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | ArgInstruction
  | OnbuildInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | ShellInstruction;

export type InstructionKind = Instruction['kind'];

export const INSTRUCTION_KINDS: readonly InstructionKind[] = [
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT',
  'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
];

/** A build-check or parser warning; `rule` is BuildKit's rule name (or kiln's own), `url` its documentation when one exists. */
export interface BuildWarning {
  rule: string;
  message: string;
  file: string;
  /** First line of the instruction the warning is about (what BuildKit reports and `kiln build` prints). */
  line: number;
  /**
   * The offending token (keyword, stage name, flag, variable, argument, key or
   * value), when a locator placed it (`kiln check` does). `range.start.line`
   * is the token's own line: later than `line` when the token sits on a
   * continuation line. Ends are exclusive.
   */
  range?: Range;
  /** `range.start.column`, for readers that only want `LINE:COL`. */
  column?: number;
  /** Set by `runChecks` when `# check=error=true` (or `--check error=true`) turns warnings into errors. */
  error?: boolean;
  url?: string;
}

export interface CheckDirective {
  skip: string[] | 'all';
  error: boolean;
}

export interface Directives {
  syntax?: string;
  escape: '\\' | '`';
  check?: CheckDirective | undefined;
}

export interface ParsedDockerfile {
  /** File name as the user gave it; used in every error and warning. */
  file: string;
  directives: Directives;
  instructions: Instruction[];
  warnings: BuildWarning[];
}
