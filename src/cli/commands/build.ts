import type { Command } from 'commander';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { collect } from '../collect.js';
import { globalOptions, type GlobalOptions } from '../global-options.js';
import { KilnError } from '../../errors/index.js';
import { parseNetworkMode } from '../../sandbox/network-mode.js';
import type { ProgressMode } from '../progress/render.js';
import type { BuildEvent } from '../../events/index.js';
import type { BuildOptions } from '../../builder/options.js';
import type { AttestationOptions } from '../../builder/attestations.js';
import type { Compression } from '../../layer/types.js';
import type { DockerEndpoint } from '../../export/docker-daemon.js';

interface BuildFlags {
  file?: string;
  tag: string[];
  buildArg: string[];
  target?: string;
  cache: boolean;
  /** --no-cache-filter: commander names a `--no-…` option after what follows `no-`. */
  cacheFilter: string[];
  pull?: boolean;
  label: string[];
  platform?: string;
  secret: string[];
  ssh: string[];
  network: string;
  output: string[];
  push?: boolean;
  iidfile?: string;
  metadataFile?: string;
  progress: string;
  quiet?: boolean;
  jobs?: string;
  compression?: string;
  compressionLevel?: string;
  explainCache?: boolean;
  allow: string[];
  memory?: string;
  cpuQuota?: string;
  cpuPeriod?: string;
  cpus?: string;
  pidsLimit?: string;
  ulimit: string[];
  runtime?: string;
  report?: string;
  cacheFrom: string[];
  cacheTo: string[];
  check?: boolean;
  gcKeepStorage?: string;
  sbom?: string | boolean;
  provenance?: string | boolean;
  attest: string[];
  annotation: string[];
  defaultAnnotations?: boolean;
  signKey?: string;
  addHost: string[];
  buildContext: string[];
  shmSize?: string;
  cgroupParent?: string;
  call?: string;
  load?: boolean;
  builder?: string;
}

export function register(program: Command): void {
  program
    .command('build')
    .description('build an image from a Dockerfile and a context directory')
    .argument('<context>', 'build context: a directory, - (tar or Dockerfile on stdin), a git URL (URL.git#ref:subdir) or a tarball URL')
    .option('-f, --file <path>', 'Dockerfile (default CONTEXT/Dockerfile; "-" reads stdin)')
    .option('-t, --tag <name>', 'name the image (repeatable)', collect, [])
    .option('--build-arg <k[=v]>', 'set a build arg; a bare K takes its value from the environment (repeatable)', collect, [])
    .option('--target <stage>', 'build only up to this stage')
    .option('--no-cache', 'do not use the build cache')
    .option('--no-cache-filter <stage>', 'do not use the cache for this stage (repeatable)', collect, [])
    .option('--pull', 'always resolve base images from the registry')
    .option('--label <k=v>', 'set an image label (repeatable)', collect, [])
    .option('--platform <list>', 'target platform(s), comma-separated (e.g. linux/amd64,linux/arm64): several make one OCI index; foreign ones RUN under QEMU emulation')
    .option('--secret <id=ID,src=PATH|env=VAR>', 'expose a secret to RUN --mount=type=secret (repeatable)', collect, [])
    .option('--ssh <default|ID=PATH>', 'forward an SSH agent socket to RUN --mount=type=ssh (repeatable)', collect, [])
    .option('--network <mode>', 'network for RUN steps: default (own namespace, user-mode networking), none or host', 'default')
    .option('-o, --output <spec>', 'type=image|oci|docker|local|tar|registry,dest=… (repeatable)', collect, [])
    .option('--push', 'push the tagged image after the build')
    .option('--iidfile <file>', 'write the image ID to this file')
    .option('--metadata-file <file>', 'write build metadata (digest, descriptor, tags) as JSON')
    .option('--progress <mode>', 'auto, tty, plain, json, rawjson or quiet', 'auto')
    .option('-q, --quiet', 'print only the image ID')
    .option('--jobs <n>', 'stages built at once (default: number of CPUs)')
    .option('--compression <alg>', 'layer compression: gzip, zstd or uncompressed')
    .option('--compression-level <n>', 'compression level')
    .option('--explain-cache', 'tell, for each cache miss, which input changed')
    .option('--allow <entitlement>', 'allow an entitlement: security.insecure, network.host (repeatable)', collect, [])
    .option('--memory <size>', 'memory limit for each RUN (e.g. 2g)')
    .option('--cpu-quota <us>', 'CPU CFS quota for each RUN')
    .option('--cpu-period <us>', 'CPU CFS period for each RUN')
    .option('--cpus <n>', 'number of CPUs for each RUN')
    .option('--pids-limit <n>', 'maximum processes in each RUN')
    .option('--ulimit <name=soft[:hard]>', 'rlimit for RUN steps (repeatable)', collect, [])
    .option('--runtime <name>', 'OCI runtime: runc (default) or crun')
    .option('--report <file>', 'write an HTML or SVG picture of the build (timeline, cache hits, critical path)')
    .option('--gc-keep-storage <size>', 'cap the store at SIZE after the build, evicting least recently used cache (0 disables; default $KILN_GC_KEEP_STORAGE or a tenth of the disk)')
    .option('--check', 'run the build checks only (like `kiln check`); nothing is built')
    .option('--cache-from <spec>', 'import build cache: type=registry,ref=R | type=local,src=DIR (repeatable)', collect, [])
    .option('--cache-to <spec>', 'export build cache: type=registry,ref=R | type=local,dest=DIR | type=inline [,mode=min|max][,cache-mounts=true] (repeatable)', collect, [])
    .option('--sbom [value]', 'attach an SPDX SBOM attestation (true, false)')
    .option('--provenance [value]', 'attach SLSA provenance: true, false, mode=min|max[,version=v0.2|v1] (default: mode=min when pushing)')
    .option('--attest <spec>', 'attestation: type=sbom | type=provenance[,mode=min|max] | type=…,disabled=true (repeatable)', collect, [])
    .option('--annotation <[type:]k=v>', 'OCI annotation; type is manifest (default), index, manifest-descriptor or index-descriptor, optionally [os/arch] (repeatable)', collect, [])
    .option('--default-annotations', 'add org.opencontainers.image.created (SOURCE_DATE_EPOCH when set) to the manifests, the index and an OCI layout; source and revision for a git context')
    .option('--build-context <name=value>', 'FROM NAME and COPY --from=NAME use VALUE: a directory, docker-image://REF, oci-layout://PATH[:TAG][@DIGEST], a git URL or an http(s) URL (repeatable)', collect, [])
    .option('--add-host <name:ip>', 'add a line to the /etc/hosts of every RUN (repeatable)', collect, [])
    .option('--shm-size <size>', 'size of /dev/shm in RUN steps (default 64m)')
    .option('--cgroup-parent <path>', 'cgroup (from the root of each hierarchy) that every RUN\'s cgroup nests under, instead of kiln\'s own (root only)')
    .option('--call <check|outline|targets>', 'run a build method instead of building (as the check, outline and targets commands)')
    .option('--load', 'load the image into a Docker daemon (DOCKER_HOST or /var/run/docker.sock) through its /images/load API')
    .option('--builder <name>', 'refused: kiln is daemonless and has no builder instances')
    .option('--sign-key <file>', 'sign what --push pushes with this cosign-format key (password from COSIGN_PASSWORD)')
    .action(async (contextDir: string, flags: BuildFlags, cmd: Command) => {
      if (flags.builder !== undefined) throw new KilnError('UNSUPPORTED', `--builder ${flags.builder}: kiln is daemonless and builds in this process; there is no builder instance to select (drop --builder)`);
      const call = flags.call ?? (flags.check ? 'check' : 'build');
      if (call !== 'build') {
        await runCall(call, contextDir, flags);
        return;
      }
      const mode: ProgressMode = flags.quiet ? 'quiet' : (flags.progress as ProgressMode);
      if (!['auto', 'tty', 'plain', 'json', 'rawjson', 'quiet'].includes(mode)) throw new KilnError('USAGE', `--progress must be auto, tty, plain, json, rawjson or quiet`);
      const options = await optionsFromFlags(contextDir, flags, globalOptions(cmd));
      // a cgroup kiln cannot nest under fails now, not at the first RUN
      if (flags.cgroupParent !== undefined) (await import('../../sandbox/cgroups.js')).assertCgroupParentUsable(flags.cgroupParent);
      // --load: the daemon must answer before the build starts, and gets a docker archive afterwards
      const load = flags.load ? await prepareLoad() : undefined;
      try {
        await buildFromCli(contextDir, flags, mode, { ...options, outputs: [...(options.outputs ?? []), ...(load ? [{ type: 'docker' as const, dest: load.archive }] : [])] }, load);
      } finally {
        if (load) await rm(dirname(load.archive), { recursive: true, force: true });
      }
    });
}

/** `--call check|outline|targets` (and `--check`): a build method instead of a build. */
async function runCall(call: string, contextDir: string, flags: BuildFlags): Promise<void> {
  if (call === 'outline' || call === 'targets') {
    const common = { ...(flags.file ? { file: flags.file } : {}) };
    const out =
      call === 'outline'
        ? await (await import('./outline.js')).outlineCommand(contextDir, { ...common, ...(flags.target ? { target: flags.target } : {}), buildArg: flags.buildArg })
        : await (await import('./targets.js')).targetsCommand(contextDir, common);
    process.stdout.write(out);
    return;
  }
  if (call !== 'check') throw new KilnError('USAGE', `--call must be build, check, outline or targets, not "${call}"`);
  const { checkCommand } = await import('./check.js');
  const r = await checkCommand(contextDir, { ...(flags.file ? { file: flags.file } : {}), buildArg: flags.buildArg });
  process.stdout.write(r.output);
  if (r.exitCode !== 0) process.exitCode = r.exitCode;
}

/**
 * The flags as the library's `BuildOptions`: every flag value is parsed here
 * (a bad one is a usage error naming it); what the values mean together is
 * checked by `resolveBuildOptions`. The context is the argument as given; a
 * remote one is unpacked later.
 */
async function optionsFromFlags(contextDir: string, flags: BuildFlags, g: GlobalOptions): Promise<BuildOptions> {
  const { parseAddHost, parseBuildContext, parseBuildArgs, parseByteSize, parseOutputSpec, parseSecretSpec, parseSshSpec } = await import('../../builder/options.js');
  const { parseCacheFrom, parseCacheTo } = await import('../../cache/spec.js');
  const { keepStorageSetting } = await import('../../store/size.js');
  const { parseAnnotation, parseAttestShorthand, parseAttestSpec } = await import('../../builder/attestations.js');
  let attestations: AttestationOptions | undefined;
  for (const a of flags.attest) attestations = parseAttestSpec(a, attestations ?? {});
  if (flags.sbom !== undefined) attestations = parseAttestShorthand('sbom', flags.sbom, attestations ?? {});
  if (flags.provenance !== undefined) attestations = parseAttestShorthand('provenance', flags.provenance, attestations ?? {});
  const annotations = flags.annotation.map(parseAnnotation);
  const extraHosts = flags.addHost.map(parseAddHost);
  const labels: Record<string, string> = {};
  for (const l of flags.label) {
    const eq = l.indexOf('=');
    labels[eq === -1 ? l : l.slice(0, eq)] = eq === -1 ? '' : l.slice(eq + 1);
  }
  // only called for a flag that was given
  const int = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new KilnError('USAGE', `${name} must be a non-negative number, not "${v}"`);
    return n;
  };
  const compression = flags.compression as Compression | undefined;
  if (compression && !['gzip', 'zstd', 'uncompressed'].includes(compression)) throw new KilnError('USAGE', `--compression must be gzip, zstd or uncompressed`);
  const gcKeepStorage = keepStorageSetting(flags.gcKeepStorage);
  return {
    context: contextDir,
    tags: flags.tag,
    buildArgs: parseBuildArgs(flags.buildArg),
    ...(flags.target ? { target: flags.target } : {}),
    noCache: !flags.cache,
    noCacheFilter: flags.cacheFilter,
    pull: Boolean(flags.pull),
    labels,
    ...(flags.platform ? { platform: flags.platform } : {}),
    secrets: flags.secret.map(parseSecretSpec),
    ssh: flags.ssh.map(parseSshSpec),
    network: parseNetworkMode(flags.network),
    ...(flags.buildContext.length ? { buildContexts: Object.fromEntries(flags.buildContext.map(parseBuildContext)) } : {}),
    outputs: flags.output.map(parseOutputSpec),
    push: Boolean(flags.push),
    ...(flags.iidfile ? { iidfile: flags.iidfile } : {}),
    ...(flags.jobs ? { jobs: int('--jobs', flags.jobs) } : {}),
    ...(g.root ? { root: g.root } : {}),
    ...(compression ? { compression } : {}),
    ...(flags.compressionLevel ? { compressionLevel: int('--compression-level', flags.compressionLevel) } : {}),
    explainCache: Boolean(flags.explainCache),
    insecureRegistries: g.insecureRegistry,
    registryMirrors: g.registryMirror,
    allow: flags.allow,
    limits: {
      ...(flags.memory ? { memory: parseByteSize(flags.memory, '--memory') } : {}),
      ...(flags.shmSize ? { shmSize: parseByteSize(flags.shmSize, '--shm-size') } : {}),
      ...(extraHosts.length ? { extraHosts } : {}),
      ...(flags.cgroupParent !== undefined ? { cgroupParent: flags.cgroupParent } : {}),
      ...(flags.cpuQuota ? { cpuQuota: int('--cpu-quota', flags.cpuQuota) } : {}),
      ...(flags.cpuPeriod ? { cpuPeriod: int('--cpu-period', flags.cpuPeriod) } : {}),
      ...(flags.cpus ? { cpus: int('--cpus', flags.cpus) } : {}),
      ...(flags.pidsLimit ? { pidsLimit: int('--pids-limit', flags.pidsLimit) } : {}),
      ulimits: flags.ulimit.map(parseUlimit),
    },
    ...(flags.runtime ? { runtime: flags.runtime } : {}),
    ...(gcKeepStorage !== undefined ? { gcKeepStorage } : {}),
    cacheFrom: flags.cacheFrom.map(parseCacheFrom),
    cacheTo: flags.cacheTo.map(parseCacheTo),
    ...(attestations ? { attestations } : {}),
    ...(annotations.length ? { annotations } : {}),
    ...(flags.defaultAnnotations ? { defaultAnnotations: true } : {}),
    ...(flags.signKey ? { signKey: flags.signKey } : {}),
  };
}

/** Pings the Docker daemon `--load` will load into, and names the archive written for it. */
async function prepareLoad(): Promise<{ endpoint: DockerEndpoint; archive: string }> {
  const { dockerEndpoint, pingDocker } = await import('../../export/docker-daemon.js');
  const endpoint = dockerEndpoint();
  await pingDocker(endpoint);
  return { endpoint, archive: join(await mkdtemp(join(tmpdir(), 'kiln-load-')), 'image.tar') };
}

/** Resolves the options, unpacks the context, runs the build with progress, report and signals, then loads and writes metadata. */
async function buildFromCli(contextDir: string, flags: BuildFlags, mode: ProgressMode, options: BuildOptions, load: { endpoint: DockerEndpoint; archive: string } | undefined): Promise<void> {
  const { dockerfileSource, resolveBuildOptions } = await import('../../builder/resolve-options.js');
  // every value is checked before a remote context is fetched or the build starts
  const resolved = resolveBuildOptions(options);
  if (resolved.outputs.signKey && !resolved.outputs.pushing) throw new KilnError('USAGE', '--sign-key signs what is pushed: add --push');
  // a bad --report name should fail now, not after the build
  if (flags.report) (await import('../../report/index.js')).reportFormat(flags.report);
  const events: BuildEvent[] = [];
  let reported = false;
  const writeReport = async () => {
    if (!flags.report || reported) return;
    reported = true;
    await (await import('../../report/index.js')).writeReport(events, flags.report);
  };
  let dockerfileText: string | undefined;
  if (flags.file === '-') {
    if (contextDir === '-') throw new KilnError('USAGE', 'the context and the Dockerfile cannot both come from stdin (-f - with context -)');
    dockerfileText = await readStdin();
  }
  // `-`, git and tarball URLs are unpacked into a temporary directory, removed after the build
  const { isRemoteContext, openContextSource } = await import('../../builder/context-source.js');
  const source = await openContextSource(contextDir);
  const remote = isRemoteContext(contextDir);
  if (source.dockerfileText !== undefined && dockerfileText === undefined && !flags.file) dockerfileText = source.dockerfileText;
  const dockerfile = flags.file && flags.file !== '-' ? (remote && !isAbsolute(flags.file) ? join(source.dir, flags.file) : flags.file) : undefined;

  const { createRenderer } = await import('../progress/render.js');
  const { discardPendingFiles, replaceFile } = await import('../../fs/replace-file.js');
  const renderer = createRenderer(mode);
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) {
      // no unwinding after a second interrupt: the temp files of outputs being written go now or never
      discardPendingFiles();
      process.exit(130);
    }
    controller.abort(new KilnError('CANCELLED', `build interrupted (${sig})`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // a closed terminal (SIGHUP) is an interrupt too: stop RUNs, unmount and leave the store clean
  process.on('SIGHUP', onSignal);
  try {
    const { runBuild } = await import('../../builder/build.js');
    const result = await runBuild({
      ...resolved,
      source: dockerfileSource({
        context: source.dir,
        ...(source.origin ? { contextSource: source.origin } : {}),
        ...(source.untrusted ? { untrustedContext: true } : {}),
        ...(dockerfile ? { file: dockerfile } : {}),
        ...(dockerfileText !== undefined ? { dockerfileText, fileName: 'Dockerfile' } : {}),
      }),
      registry: { ...resolved.registry, signal: controller.signal },
      onEvent: (e) => {
        if (flags.report) events.push(e);
        renderer.onEvent(e);
      },
      signal: controller.signal,
    });
    renderer.close();
    await writeReport();
    if (load) {
      const { loadIntoDocker } = await import('../../export/docker-daemon.js');
      await loadIntoDocker(load.endpoint, load.archive);
    }
    if (flags.metadataFile) {
      await replaceFile(
        flags.metadataFile,
        `${JSON.stringify(
          {
            'containerimage.digest': result.indexDigest ?? result.manifestDigest,
            'containerimage.config.digest': result.imageId,
            'containerimage.descriptor': result.descriptor,
            'image.name': result.tags.join(','),
          },
          null,
          2,
        )}\n`,
      );
    }
    if (flags.quiet) process.stdout.write(`${result.imageId}\n`);
  } catch (e) {
    renderer.close();
    // the report of a failed build shows where it failed; its own failure must not hide the build's error
    await writeReport().catch((re: unknown) => process.stderr.write(`kiln: ${re instanceof Error ? re.message : String(re)}\n`));
    throw e;
  } finally {
    await source.cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

function parseUlimit(s: string): { name: string; soft: number; hard: number } {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(s);
  if (!m) throw new KilnError('USAGE', `invalid --ulimit "${s}" (want name=soft[:hard], e.g. nofile=1024:2048)`);
  const soft = Number(m[2]);
  return { name: m[1]!, soft, hard: m[3] === undefined ? soft : Number(m[3]) };
}

async function readStdin(): Promise<string> {
  const { MAX_DOCKERFILE_BYTES } = await import('../../frontend/syntax-tree.js');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    size += (c as Buffer).length;
    // the parser names the line; reading stops one chunk past the limit
    if (size > MAX_DOCKERFILE_BYTES) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}
