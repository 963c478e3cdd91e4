import type { LayerRef } from '../image/image.js';
import { KilnError, RunFailedError, printable } from '../errors/index.js';
import { formatBinarySize } from '../spec/size.js';
import type { LayerEntry, LayerWriteOptions, WrittenLayer } from '../layer/types.js';
import type { SandboxRequest } from '../sandbox/sandbox.js';
import type { CgroupUsage } from '../sandbox/cgroups.js';
import type { RunMountSpec } from '../sandbox/run-mounts.js';
import type { BlobStore } from '../image/blob-store.js';
import type { RunInstruction } from '../frontend/instructions.js';
import { DEFAULT_SHELL, commandLine } from './meta.js';
import { heredocRunCommand } from './heredoc.js';
import { runMount } from './run-mount.js';
import { runNetwork } from './run-network.js';
import { runInsecure } from './run-security.js';
import { workdirOf } from './workdir.js';
import type { PreparedStep, StepContext, StepInput } from './step-context.js';
import { monotonicMs } from '../events/index.js';

export type { RunMountSpec, BindMountSpec, CacheMountSpec, TmpfsMountSpec, SecretMountSpec, SshMountSpec, FileMountSpec } from '../sandbox/run-mounts.js';
export type { ResourceLimits, NetworkMode } from '../sandbox/bundle.js';
export type { Ulimit } from '../sandbox/rlimits.js';

/**
 * The RUN step as plain data: `prepareRun` resolves the Dockerfile's side
 * (shell form, heredocs, --mount sources, secrets, network, security) and
 * hands over this; `executeRun` knows nothing of Dockerfiles.
 */
export interface RunStepInput extends Omit<SandboxRequest, 'storeRoot' | 'mounts'> {
  /** The store: its root holds scratch dirs (`tmp/`) and cache mounts (`cache-mounts/`); the layer blob is written to it. */
  store: BlobStore & { readonly root: string; adoptSnapshot?(layer: LayerRef, dir: string): Promise<boolean> };
  mounts: RunMountSpec[];
  layer: LayerWriteOptions;
}

export interface RunStepResult {
  exitCode: number;
  /** Undefined when the RUN changed nothing (history `empty_layer`). */
  layer?: WrittenLayer;
  usage: CgroupUsage;
  durationMs: number;
  /** The process alone (runtime start to exit), and turning its changes into a layer (diff, tar, compress, store). */
  timings: { runMs: number; layerMs?: number };
}

/** Lines of output kept on a RUN_FAILED error, and quoted in its message. */
const TAIL_LINES = 20;
const INLINE_LINES = 3;

/**
 * The parts of every RUN's sandbox that change what it can produce, for its
 * cache key (BuildKit keys its ExecOp by them too): a rebuild with another
 * --add-host or --shm-size runs the RUN again. Nothing is added when they are
 * unset, so keys of builds without them stay as they were.
 */
export function runSandboxInputs(limits: SandboxRequest['limits']): string[] {
  const out: string[] = [];
  if (limits?.extraHosts?.length) out.push(`hosts:${limits.extraHosts.map((h) => `${h.name}=${h.ip}`).join(',')}`);
  if (limits?.shmSize !== undefined) out.push(`shm:${limits.shmSize}`);
  return out;
}

/**
 * RUN: its argv (exec form, shell form or heredoc script), its mounts, its
 * network and security mode, checked against the build's policy before
 * anything runs. The key's inputs are the mounts' sources; the command, env
 * and parent are keyed by the solver.
 */
export async function prepareRun(step: StepInput & { instruction: RunInstruction }, ctx: StepContext): Promise<PreparedStep> {
  const instr = step.instruction;
  const config = step.config;
  // the entitlements first: a denied RUN resolves no --mount source
  const network = runNetwork(instr, ctx.policy);
  const insecure = runInsecure(instr, ctx.policy);
  const inputs: string[] = [];
  const mounts: Array<() => Promise<RunMountSpec>> = [];
  const heredoc = heredocRunCommand(instr, config.Shell ?? DEFAULT_SHELL);
  const args = heredoc ? heredoc.args : commandLine(instr.cmd, config.Shell);
  if (heredoc?.mount) {
    const script = heredoc.mount;
    mounts.push(async () => script);
  }
  const hashed = { ms: 0, any: false };
  for (const m of instr.mounts) mounts.push(await runMount(m, ctx, inputs, hashed, workdirOf(step)));
  const { policy } = ctx;
  inputs.push(...runSandboxInputs(policy.limits));
  return {
    inputs,
    ...(hashed.any ? { hashMs: hashed.ms } : {}),
    execute: async () => {
      // a foreign platform runs only through a usable binfmt_misc handler; without one the error says what to install
      await ctx.canExecute(step.platform);
      const logFile = await ctx.logFile();
      const r = await executeRun({
        store: ctx.store,
        lowerdirs: await ctx.lowerdirs(step.layers),
        args,
        env: step.runEnv,
        ...(config.User ? { user: config.User } : {}),
        workdir: workdirOf(step),
        network,
        sharedNetwork: await ctx.buildNetwork(),
        mounts: await Promise.all(mounts.map((f) => f())),
        ...(policy.limits ? { limits: policy.limits } : {}),
        securityInsecure: insecure,
        layer: ctx.layer,
        ...(policy.runtime ? { runtime: { runtime: policy.runtime } } : {}),
        signal: step.signal,
        onOutput: ctx.onOutput,
        logFile,
      }).catch((e: unknown) => {
        const failed = runFailure(e);
        if (!failed) throw e;
        // the one-line error quotes the last lines; it names the file that has all of them
        const { exitCode, outputTail, oomKilled } = failed;
        throw new RunFailedError(failed.message, { exitCode, outputTail, oomKilled, step: instr.original, logFile }, { hint: `full output: ${logFile}`, cause: e });
      });
      return { ...(r.layer ? { layer: r.layer } : {}), usage: { cpuSeconds: r.usage.cpuSeconds, ...(r.usage.peakMemoryBytes !== undefined ? { peakMemoryBytes: r.usage.peakMemoryBytes } : {}) }, timings: r.timings };
    },
  };
}

export async function executeRun(input: RunStepInput): Promise<RunStepResult> {
  const { store, layer, ...rest } = input;
  const req: SandboxRequest = { ...rest, storeRoot: store.root };
  let layerMs: number | undefined;
  // the sandbox (runc, mounts, seccomp, networking) and the layer writer are imported here, not at
  // the top: a cached build computes RUN keys through this module and never starts a container
  const { dropExcluded, runSandbox } = await import('../sandbox/sandbox.js');
  const { diffUpperdir, writeLayer } = await import('../layer/index.js');
  const r = await runSandbox(req, async ({ upperdir, exclude }) => {
    const layerStart = monotonicMs();
    const entries = await nonEmpty(diffUpperdir(upperdir, { exclude }), input.signal);
    layerMs = monotonicMs() - layerStart;
    if (!entries) return null;
    const written = await writeLayer(entries, store, layer);
    layerMs = monotonicMs() - layerStart;
    if (store.adoptSnapshot) {
      // the upperdir already is this layer in overlay form: keep it as the snapshot instead of extracting the blob later
      dropExcluded(upperdir, exclude);
      await store.adoptSnapshot({ descriptor: { mediaType: written.mediaType, digest: written.digest, size: written.size }, diffID: written.diffID }, upperdir).catch(() => false);
    }
    return written;
  });
  if (r.exitCode !== 0) {
    const tail = r.outputTail.slice(-TAIL_LINES);
    if (r.oomKilled) {
      const limit = input.limits?.memory !== undefined ? ` (limit ${formatBinarySize(input.limits.memory)})` : '';
      throw new RunFailedError(
        `RUN was killed: out of memory${limit}: process "${formatArgs(input.args)}" exit code 137`,
        { exitCode: r.exitCode, outputTail: tail, oomKilled: true },
        { hint: input.limits?.memory !== undefined ? 'raise --memory' : 'the build host ran out of memory' },
      );
    }
    // One line, as every KilnError: the last few output lines inline, all of them in `outputTail` (and the log file).
    const inline = tail
      .filter((l) => l.trim() !== '')
      .slice(-INLINE_LINES)
      .map((l) => printable(l, 200))
      .join(' | ');
    const shown = inline ? `; last output: ${inline}` : '';
    throw new RunFailedError(`process "${formatArgs(input.args)}" did not complete successfully: exit code ${r.exitCode}${shown}`, { exitCode: r.exitCode, outputTail: tail });
  }
  const result: RunStepResult = { exitCode: r.exitCode, usage: r.usage, durationMs: r.durationMs, timings: { runMs: r.runMs, ...(layerMs !== undefined ? { layerMs } : {}) } };
  if (r.collected) result.layer = r.collected;
  return result;
}

/** The failed process behind an error, when it is a RUN failure. */
export function runFailure(e: unknown): RunFailedError | undefined {
  return e instanceof RunFailedError ? e : undefined;
}

function formatArgs(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/**
 * Peeks one entry: undefined when the diff is empty, else an iterable yielding
 * everything — and stopping with CANCELLED when the build is interrupted while
 * a big layer is being written.
 */
async function nonEmpty(src: AsyncIterable<LayerEntry>, signal?: AbortSignal): Promise<AsyncIterable<LayerEntry> | undefined> {
  const it = src[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return undefined;
  return {
    async *[Symbol.asyncIterator]() {
      yield first.value;
      for (;;) {
        if (signal?.aborted) throw new KilnError('CANCELLED', 'RUN cancelled while writing its layer');
        const n = await it.next();
        if (n.done) return;
        yield n.value;
      }
    },
  };
}
