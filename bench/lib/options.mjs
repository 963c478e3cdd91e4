// Command-line options of `npm run bench -- [options]`.
import { parseArgs } from 'node:util';

export const HELP = `Usage: npm run bench -- [options]      (or: node bench/run.mjs [options])

Builds the Dockerfiles of ../shared/bench with kiln, BuildKit (Debian's dockerd, started by
../shared/bench/peers/buildkit-up.sh) and Buildah side by side in one run, alternating the
tools run by run (A B C, then C B A, …), cold / warm / one-file-changed; prints medians,
min–max and ratios (kiln ÷ BuildKit, kiln ÷ Buildah), flags wide spreads, runs the
micro-benchmarks in bench/*.mjs, and writes bench/work/results.json and results.md.

Options:
  --runs N             repetitions of every measurement (default 3); medians are reported
  --only a,b           only these benches and/or micro-benchmarks
                       (copy-many, many-steps, multistage, cache-hit, debian-app, big-layer;
                        frontend, layer, registry, sandbox, context)
  --skip a,b           everything but these
  --builders a,b       kiln,buildkit,buildah (default: all three; Buildah only when installed)
  --contended          keep one core busy with a spinning process for the whole run
  --no-push            skip the big-layer build + push measurement
  --no-micro           skip the micro-benchmarks (bench/*.mjs)
  --buildah-driver D   overlay | vfs (default: the first of overlay, vfs that works here)
  --kiln-arg ARG       extra argument for every \`kiln build\` (repeatable), e.g. --kiln-arg=--compression=zstd
  --tar-bases         make the base images with GNU tar instead of kiln's library
  --tmp DIR            where temporary roots and contexts go (default: $TMPDIR or /tmp)
  --keep               keep the temporary directory (logs are always kept in bench/work/logs)
  -h, --help           this text
`;

export function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '3' },
      only: { type: 'string' },
      skip: { type: 'string' },
      builders: { type: 'string', default: 'kiln,buildkit,buildah' },
      contended: { type: 'boolean', default: false },
      'no-push': { type: 'boolean', default: false },
      'no-micro': { type: 'boolean', default: false },
      'buildah-driver': { type: 'string' },
      'kiln-arg': { type: 'string', multiple: true, default: [] },
      tmp: { type: 'string' },
      'tar-bases': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const list = (s) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : null);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, not ${values.runs}`);
  const builders = list(values.builders);
  for (const b of builders) if (!['kiln', 'buildkit', 'buildah'].includes(b)) throw new Error(`unknown builder ${b} (kiln, buildkit, buildah)`);
  return {
    runs,
    only: list(values.only),
    skip: list(values.skip) ?? [],
    builders,
    contended: values.contended,
    push: !values['no-push'],
    micro: !values['no-micro'],
    buildahDriver: values['buildah-driver'] ?? null,
    kilnArgs: values['kiln-arg'],
    tmp: values.tmp ?? null,
    tarBases: values['tar-bases'],
    keep: values.keep,
    help: values.help,
  };
}
