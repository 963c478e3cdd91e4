import { createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError } from '../errors/index.js';
import { MAX_DOCKERFILE_BYTES } from '../frontend/syntax-tree.js';

/**
 * The build context as buildx accepts it: a directory, `-` (a tar on stdin,
 * optionally compressed, or a bare Dockerfile), a git URL
 * (`https://host/repo.git#ref:subdir`, `git://…`, `git@host:repo`) or an HTTP
 * tarball URL. Remote and stdin contexts are unpacked into a private temporary
 * directory with the same extraction that refuses hostile layers (no absolute
 * names, no `..`, nothing written through a symlink), then built as a directory.
 */
export interface ContextSource {
  /** The directory to build. */
  dir: string;
  /** The Dockerfile when the source was one (stdin or a URL that is not an archive). */
  dockerfileText?: string;
  /** A git context: the commit checked out. */
  gitCommit?: string;
  /** A git or URL context: the URL as given and its immutable digest (commit `sha1`, archive `sha256`), for provenance. */
  origin?: { uri: string; digest: Record<string, string> };
  /**
   * The context came from elsewhere (stdin, a URL, git), not from a directory of the user's: pass
   * it on as `untrustedContext`, so its Dockerfile and ignore files are resolved inside it.
   */
  untrusted?: boolean;
  /** Removes what was unpacked; a no-op for a local directory. */
  cleanup(): Promise<void>;
}

/**
 * A stdin or downloaded context is refused past this many bytes (compressed), so a runaway stream
 * cannot fill the disk; a compressed one is also refused when it expands past maxExpandedBytes.
 */
export const MAX_CONTEXT_ARCHIVE_BYTES = 16 * 1024 ** 3;

const LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';

export function isRemoteContext(spec: string): boolean {
  return spec === '-' || /^(https?|git|ssh):\/\//i.test(spec) || /^git@[^:]+:/.test(spec);
}

export async function openContextSource(spec: string, opts: { stdin?: AsyncIterable<Uint8Array>; signal?: AbortSignal } = {}): Promise<ContextSource> {
  if (!isRemoteContext(spec)) return { dir: spec, cleanup: async () => {} };
  const tmp = await mkdtemp(path.join(tmpdir(), 'kiln-context-'));
  const cleanup = () => rm(tmp, { recursive: true, force: true });
  try {
    const { isGitUrl } = await import('../steps/copy-git.js');
    if (spec !== '-' && isGitUrl(spec)) {
      const git = await checkoutGit(spec, tmp, opts.signal);
      return { ...git, origin: { uri: spec, digest: { sha1: git.gitCommit } }, untrusted: true, cleanup };
    }
    let file: string;
    let origin: ContextSource['origin'];
    if (spec === '-') {
      file = path.join(tmp, 'stdin');
      await pipeline(opts.stdin ?? process.stdin, limit(MAX_CONTEXT_ARCHIVE_BYTES, 'the context on stdin'), createWriteStream(file, { mode: 0o600 }));
    } else {
      const { downloadUrl } = await import('../steps/copy-url.js');
      await mkdir(path.join(tmp, 'dl'));
      const got = await downloadUrl(spec, path.join(tmp, 'dl'), undefined, opts.signal);
      file = got.file;
      origin = { uri: spec, digest: { sha256: got.sha256 } };
    }
    return { ...(await unpackOrDockerfile(file, path.join(tmp, 'ctx'), spec === '-' ? 'stdin' : spec)), ...(origin ? { origin } : {}), untrusted: true, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/**
 * A git context in `tmp`: only the ref's commit is fetched (depth 1), `.git`
 * is removed (the history is not part of the context, as with buildx) and the
 * `subdir` of the fragment, which must stay inside the clone, is the context.
 */
export async function checkoutGit(spec: string, tmp: string, signal?: AbortSignal): Promise<{ dir: string; gitCommit: string }> {
  const { parseGitUrl, cloneGit } = await import('../steps/copy-git.js');
  const src = parseGitUrl(spec);
  const repo = path.join(tmp, 'repo');
  const gitCommit = await cloneGit(src, repo, signal);
  await rm(path.join(repo, '.git'), { recursive: true, force: true });
  if (!src.subdir) return { dir: repo, gitCommit };
  // a subdir that is (or passes through) a symlink out of the clone is refused
  const dir = await realpath(path.join(repo, src.subdir)).catch(() => undefined);
  const root = await realpath(repo);
  if (!dir || (dir !== root && !dir.startsWith(`${root}/`)) || !(await lstat(dir)).isDirectory()) {
    throw new KilnError('CONTEXT', `git context ${spec}: "${src.subdir}" is not a directory inside the repository`);
  }
  return { dir, gitCommit };
}

async function unpackOrDockerfile(file: string, dir: string, label: string): Promise<{ dir: string; dockerfileText?: string }> {
  const { detectArchive, openDecompressed } = await import('../steps/copy-archive.js');
  await mkdir(dir, { mode: 0o700 });
  const compression = await detectArchive(file);
  if (compression === undefined) {
    // not a tar: buildx reads it as the Dockerfile, with an empty context
    const { size } = await lstat(file);
    if (size > MAX_DOCKERFILE_BYTES) throw new KilnError('CONTEXT', `context from ${label} is neither a tar archive nor a Dockerfile (${size} bytes)`);
    return { dir, dockerfileText: await readFile(file, 'utf8') };
  }
  const { extractLayer } = await import('../layer/extract.js');
  const { boundedExpansion } = await import('../layer/decompress.js');
  try {
    const source = compression === 'none' ? openDecompressed(file, compression) : boundedExpansion(openDecompressed(file, compression), (await lstat(file)).size, 'the archive');
    await extractLayer(source, LAYER_TAR, dir);
  } catch (e) {
    if (e instanceof KilnError) throw new KilnError(e.code, `context from ${label}: ${e.message}`, { cause: e });
    throw new KilnError('CONTEXT', `context from ${label}: ${(e as Error).message}`);
  }
  return { dir };
}

function limit(max: number, what: string): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > max) cb(new KilnError('CONTEXT', `${what} is larger than ${max} bytes`));
      else cb(null, chunk);
    },
  });
}
