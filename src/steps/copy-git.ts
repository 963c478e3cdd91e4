import { execFile, type ExecFileOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { KilnError } from '../errors/index.js';

/**
 * execFile as a promise, with stdout and stderr on the error as promisify gives them. A function
 * rather than `promisify(execFile)` at load time, which reads execFile from child_process when the
 * module loads and so loads child_process into every build, git or not.
 */
function run(file: string, args: readonly string[], options: ExecFileOptions): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...options, encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(Object.assign(err, { stdout, stderr })) : resolve({ stdout, stderr })));
  });
}

/**
 * Git sources of ADD: `git@host:repo`, `git://…`, `ssh://…`, and http(s)
 * URLs whose path ends in `.git`; a `#ref:subdir` fragment picks the commit and
 * the directory. A file:// URL ending in `.git` is recognised only to be
 * refused (see cloneGit).
 */
export function isGitUrl(s: string): boolean {
  if (/^git@[^:]+:/.test(s) || /^(git|ssh):\/\//.test(s)) return true;
  return /^(https?|file):\/\/[^#]*\.git(\/)?(#.*)?$/.test(s);
}

export interface GitSource {
  remote: string;
  ref?: string;
  subdir?: string;
}

export function parseGitUrl(s: string): GitSource {
  const hash = s.indexOf('#');
  const remote = hash < 0 ? s : s.slice(0, hash);
  const frag = hash < 0 ? '' : s.slice(hash + 1);
  const colon = frag.indexOf(':');
  const ref = colon < 0 ? frag : frag.slice(0, colon);
  const subdir = colon < 0 ? '' : frag.slice(colon + 1);
  const out: GitSource = { remote };
  if (ref !== '') out.ref = ref;
  if (subdir !== '') out.subdir = subdir;
  return out;
}

/**
 * Transports git may never use for a Dockerfile's source or its submodules:
 * file:// (and plain paths) would copy a repository of the build machine into
 * the image, past the build context, and ext:: runs a command. BuildKit
 * refuses local git sources the same way.
 */
const PROTOCOL_GUARDS = ['-c', 'protocol.file.allow=never', '-c', 'protocol.ext.allow=never'];

/** A remote that names the build machine's own file system is refused before git runs. */
export function assertRemoteGit(remote: string): void {
  if (/^file:/i.test(remote) || remote.startsWith('/') || remote.startsWith('.')) {
    throw new KilnError(
      'UNSAFE_PATH',
      `ADD failed: "${remote}" is a repository on the build machine; file:// git sources are refused (they would copy files from outside the build context)`,
      { hint: 'put the repository in the build context and COPY it, or serve it over git://, ssh:// or https://' },
    );
  }
}

/**
 * Fetches `src` into `dir` with the system git and checks out its ref (branch,
 * tag or commit); returns the commit. Only the ref's commit is fetched (depth
 * 1), as BuildKit does; a server that refuses to fetch a commit by its id gets
 * a full fetch instead, then the commit is checked out from it.
 */
export async function cloneGit(src: GitSource, dir: string, signal?: AbortSignal): Promise<string> {
  assertRemoteGit(src.remote);
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true' };
  const git = async (args: string[], what: string): Promise<void> => {
    try {
      await run('git', args, signal ? { env, maxBuffer: 16 << 20, signal } : { env, maxBuffer: 16 << 20 });
    } catch (e) {
      if (signal?.aborted) throw new KilnError('CANCELLED', `ADD cancelled: ${src.remote}`);
      const out = (e as { stderr?: unknown }).stderr;
      const stderr = (typeof out === 'string' || Buffer.isBuffer(out) ? out.toString() : '').trim().split('\n').pop() ?? '';
      throw new KilnError('CONTEXT', `ADD failed: ${what} ${src.remote}: ${stderr || (e as Error).message}`);
    }
  };
  const ref = src.ref ?? 'HEAD';
  await git(['init', '--quiet', dir], 'cannot create a repository for');
  await git(['-C', dir, 'remote', 'add', 'origin', '--', src.remote], 'cannot add remote');
  const fetch = (opts: string[], refspecs: string[]) => git(['-C', dir, ...PROTOCOL_GUARDS, 'fetch', '--quiet', '--no-tags', ...opts, '--', 'origin', ...refspecs], 'cannot fetch');
  // a full commit id is fetched as itself; a name as a tag or branch of that name (the tag wins, as in git)
  const wants = /^[0-9a-f]{40}$/.test(ref) ? [ref] : ref === 'HEAD' ? ['HEAD'] : ref.startsWith('refs/') ? [ref] : [`refs/tags/${ref}`, `refs/heads/${ref}`];
  let commit: string | undefined;
  for (const want of wants) {
    try {
      await fetch(['--depth=1'], [want]);
    } catch {
      continue;
    }
    commit = await revParse(dir, 'FETCH_HEAD', env);
    if (commit) break;
  }
  if (!commit) {
    // an abbreviated commit id, or a server that does not serve commits by id: everything, then the ref in it
    await fetch([], ['+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*']);
    commit = (await revParse(dir, ref, env)) ?? (await revParse(dir, `origin/${ref}`, env));
    if (!commit && ref === 'HEAD') {
      await fetch([], ['HEAD']).catch(() => undefined);
      commit = await revParse(dir, 'FETCH_HEAD', env);
    }
  }
  if (!commit) throw new KilnError('CONTEXT', `ADD failed: ref "${ref}" not found in ${src.remote}`);
  await git(['-C', dir, '-c', 'advice.detachedHead=false', 'checkout', '--quiet', commit], `cannot check out "${ref}" of`);
  if (existsSync(`${dir}/.gitmodules`)) {
    await git(['-C', dir, ...PROTOCOL_GUARDS, 'submodule', 'update', '--quiet', '--init', '--recursive', '--depth=1'], 'cannot fetch submodules of');
  }
  return commit;
}

async function revParse(dir: string, ref: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['-C', dir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { env });
    const sha = stdout.trim();
    return sha === '' ? undefined : sha;
  } catch {
    return undefined;
  }
}
