import type { Instruction } from '../frontend/instructions.js';
import type { ContainerConfig, HealthConfig } from '../image/types.js';
import { commandLine, expandPorts } from '../steps/meta.js';

/**
 * `created_by` as BuildKit's Dockerfile frontend writes it (dockerfile2llb's commitToHistory), so
 * `docker history` reads the same for an image either tool built: RUN lists the stage's ARGs
 * (`RUN |2 A=1 B=2 /bin/sh -c make # buildkit`), COPY and ADD name `--parents`, `--chown` and
 * `--chmod` but never `--from` or `--link`, file-system steps end in `# buildkit`, WORKDIR shows the
 * resolved directory, and the metadata instructions print their values the way Go's fmt does
 * (`EXPOSE [80/tcp]`, `SHELL [/bin/sh -c]`, `CMD ["sh" "-c" "x"]`, `HEALTHCHECK {Test:[…] Interval:1s …}`).
 * `config` is the image's config with the instruction applied. ONBUILD has no entry (undefined),
 * as in BuildKit; ARG's entry comes from the variable scope, which knows each declaration's value.
 */
export function createdBy(instr: Instruction, historyArgs: ReadonlyArray<{ name: string; value: string }>, config: ContainerConfig): string | undefined {
  switch (instr.kind) {
    case 'RUN': {
      const prefix = historyArgs.length ? `|${historyArgs.length} ${historyArgs.map((a) => `${a.name}=${a.value}`).join(' ')} ` : '';
      return `RUN ${prefix}${commandLine(instr.cmd, config.Shell).join(' ')} # buildkit`;
    }
    case 'COPY':
    case 'ADD': {
      const flags = [instr.parents ? '--parents' : '', instr.chown ? `--chown=${instr.chown}` : '', instr.chmod ? `--chmod=${instr.chmod}` : ''].filter(Boolean);
      // file sources first, then the heredocs, as BuildKit writes them
      const sources = [...instr.sources.filter((s) => !s.startsWith('<<')), ...instr.sources.filter((s) => s.startsWith('<<'))];
      return [instr.kind, ...flags, ...sources, instr.dest].join(' ') + ' # buildkit';
    }
    case 'WORKDIR':
      return `WORKDIR ${config.WorkingDir ?? instr.path}`;
    case 'CMD':
    case 'ENTRYPOINT':
      return `${instr.kind} ${goQuoteList(commandLine(instr.cmd, config.Shell))}`;
    case 'ENV':
    case 'LABEL':
      return `${instr.kind} ${instr.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
    case 'EXPOSE':
      return `EXPOSE [${instr.ports.flatMap((p) => expandPorts(p, '', 0)).join(' ')}]`;
    case 'VOLUME':
      return `VOLUME [${instr.paths.join(' ')}]`;
    case 'SHELL':
      return `SHELL [${instr.shell.join(' ')}]`;
    case 'HEALTHCHECK':
      return `HEALTHCHECK ${goHealthcheck(config.Healthcheck ?? {})}`;
    case 'USER':
      return `USER ${instr.user}`;
    case 'STOPSIGNAL':
      return `STOPSIGNAL ${instr.signal}`;
    case 'ONBUILD':
      return undefined;
    default:
      return instr.original.replace(/^\s*\S+/, instr.kind);
  }
}

/** Go's `%q` of a []string: `["a" "b"]`, each element as strconv.Quote writes it. */
function goQuoteList(items: readonly string[]): string {
  return `[${items.map(goQuote).join(' ')}]`;
}

const GO_ESCAPES: Record<string, string> = { '\u0007': '\\a', '\u000b': '\\v' };

/** strconv.Quote for the text kiln writes: JSON's escapes, with Go's spelling of the control characters JSON writes as \u00XX. */
export function goQuote(s: string): string {
  return JSON.stringify(s)
    .replace(/\\u00([0-1][0-9a-f])/g, (_m, hex: string) => GO_ESCAPES[String.fromCharCode(parseInt(hex, 16))] ?? `\\x${hex}`)
    .replace(/\u007f/g, '\\x7f');
}

/** Go's `%+v` of BuildKit's HealthcheckConfig. */
function goHealthcheck(h: HealthConfig): string {
  const d = (ns: number | undefined): string => goDuration(ns ?? 0);
  return `{Test:[${(h.Test ?? []).join(' ')}] Interval:${d(h.Interval)} Timeout:${d(h.Timeout)} StartPeriod:${d(h.StartPeriod)} StartInterval:${d(h.StartInterval)} Retries:${h.Retries ?? 0}}`;
}

/** Go's time.Duration String(): `0s`, `500ms`, `1.5s`, `1m30s`, `1h0m0s`. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  let u = Math.abs(ns);
  const frac = (v: number, unit: number, digits: number): string => {
    const whole = Math.floor(v / unit);
    const rest = v - whole * unit;
    return rest === 0 ? `${whole}` : `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
  };
  if (u < 1e3) return `${sign}${u}ns`;
  if (u < 1e6) return `${sign}${frac(u, 1e3, 3)}\u00b5s`;
  if (u < 1e9) return `${sign}${frac(u, 1e6, 6)}ms`;
  const h = Math.floor(u / 3.6e12);
  u -= h * 3.6e12;
  const m = Math.floor(u / 6e10);
  u -= m * 6e10;
  const sec = `${frac(u, 1e9, 9)}s`;
  return sign + (h > 0 ? `${h}h${m}m${sec}` : m > 0 ? `${m}m${sec}` : sec);
}
