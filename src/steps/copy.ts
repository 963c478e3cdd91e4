import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { posix } from 'node:path';
import { BuildContext } from '../context/build-context.js';
import { SelectionHasher } from '../context/content-hash.js';
import { PatternMatcher, type MatchInfo } from '../context/dockerignore.js';
import { type FsNode, type FsView, type HostFile, joinRel, resolvePath, type SourceTree, forEachNode } from '../context/fs-view.js';
import { BadPatternError, cleanPath, goMatch, hasMeta } from '../context/glob.js';
import { HashCache } from '../context/hash-cache.js';
import { KilnError } from '../errors/index.js';
import type { Digest } from '../image/digest.js';
import { comparePaths } from '../layer/path-order.js';
import type { LayerEntry } from '../layer/types.js';
import { type AddInstruction, type CopyInstruction, isLinkedCopy } from '../frontend/instructions.js';
import { type ArchiveCompression, ArchiveTree, detectArchive, type SourceInode } from './copy-archive.js';
import { parseChmod, type ChmodFn } from './copy-chmod.js';
import { resolveChown, type Owner } from './copy-chown.js';
import { cloneGit, isGitUrl, parseGitUrl } from './copy-git.js';
import { downloadUrl, isHttpUrl } from './copy-url.js';
import { heredocTree } from './heredoc.js';
import { writeStepLayer } from './step-layer.js';
import type { PreparedStep, RunFirstStep, StepContext, StepInput, StepKeyInputs, StepOutcome } from './step-context.js';
import { workdirOf } from './workdir.js';
import { monotonicMs } from '../events/index.js';

/** A COPY or ADD after expansion, as plain data (`prepareCopy` builds it from the instruction). */
export interface CopyParams {
  kind?: 'COPY' | 'ADD';
  sources: string[];
  dest: string;
  /** The stage's WORKDIR, absolute. */
  workdir: string;
  chown?: string;
  chmod?: string;
  exclude?: string[];
  parents?: boolean;
  link?: boolean;
  /** Where local sources come from: the build context, or a stage's/image's LayeredFs. */
  from: SourceTree;
  /** The current stage's file system before this step; undefined for scratch. */
  destFs?: FsView;
  /** ADD --checksum=sha256:… (URL sources). */
  checksum?: string;
  /** ADD --keep-git-dir. */
  keepGitDir?: boolean;
  /** ADD --unpack: default unpacks local archives, not downloads. */
  unpack?: boolean;
  /** Stat-keyed file hash cache; an in-memory one when absent. */
  hashCache?: HashCache;
  /** Where downloads, clones and unpacked archives are staged; default the OS temp dir. */
  tmpDir?: string;
  /** Time (s) given to directories the step creates; default now. */
  now?: number;
  /** Cancels downloads and clones. */
  signal?: AbortSignal;
  /** Told of every remote source read (a URL with its content's sha256, a git repository with its commit): provenance's materials. */
  onRemoteSource?: (source: { uri: string; digest: Record<string, string> }) => void;
}

export interface CopyResult {
  /**
   * The new layer's entries, depth-first with sorted names (parents before
   * children). Computed on first access, so a cache hit pays only for the
   * digest; a destination conflict with the image ("not a directory") throws here.
   */
  readonly entries: LayerEntry[];
  /**
   * The same entries, in the same order, for the layer writer. A copy of one directory is walked as
   * it is written: no target map, no sort, no entry kept once written (a COPY of 100,000 context
   * files held some 30 MB of them until its layer was done). Anything else is `entries`.
   */
  layerEntries(): Iterable<LayerEntry>;
  /** Content digest of exactly the selected source files: the cache-key input. */
  readonly inputDigest: Digest;
  /** Per selected path, a short digest of what went into `inputDigest` (undefined for very large selections). */
  readonly inputFiles?: Record<string, string> | undefined;
  /**
   * Unpacks the copy's ADD archives into the staging directory, asynchronously (a signal stops the
   * decoder at once). `entries` and `layerEntries()` need it first when the copy has any; a cache
   * hit, which needs only the digest of the archive file, never pays for it.
   */
  unpackArchives(): Promise<void>;
  /** Removes staged downloads/clones/unpacked archives; call after the layer is written. */
  dispose(): void;
}

interface Planned {
  view: FsView;
  srcPath: string;
  node: FsNode;
  owner: Owner | undefined;
  /** True when the node is part of the copied content (not a parent filled in afterwards). */
  content: boolean;
  /**
   * A directory the step creates (the destination or a missing parent):
   * owned per --chown, mode 0755 or an octal --chmod, as BuildKit's MkdirAll.
   */
  created?: boolean;
  /** Files of one copy sharing this key are one inode in the source: the layer keeps them hard-linked. */
  linkKey?: string | undefined;
  /** An unpacked archive's entry: BuildKit's untar applies no --chmod. */
  unpacked?: boolean;
  /**
   * Inside a copied directory (not the directory copied itself): an existing directory of the image
   * here takes the source's metadata, as fsutil's copier overwrites every directory below the one
   * it copies into (copyDirectory recurses with overwriteTargetMetadata; COPY src/ / gives /tmp the
   * mode of src/tmp).
   */
  below?: boolean;
}

/** One matched source: a tree, the path in it, and the name it was matched by. */
interface Match {
  view: FsView;
  /** Resolved path (symlinks followed) in view. */
  path: string;
  /** Path as matched (before following a final symlink): its basename names the copy. */
  matched: string;
  /** --parents: the path kept under the destination. */
  keep?: string | undefined;
  /**
   * A tar archive to unpack: its contents go into the destination, owners
   * from the archive. The cache key hashes the archive file itself; it is
   * unpacked only when the layer is built.
   */
  archive?: { file: string; compression: ArchiveCompression; inode: SourceInode };
  /** A download: always a file placed by name. */
  label: string;
}

/**
 * COPY and ADD with Docker/BuildKit semantics: resolves sources, decides
 * where each lands, and returns the layer's entries without copying anything
 * (content is read from the source when the layer writer opens it).
 */
/**
 * COPY and ADD as a build step: the key needs only the selected sources
 * (context files, heredocs, a stage's or image's key, downloads); the
 * destination's own files (owners for --chown, existing parents) are read
 * only when the step runs.
 */
export async function prepareCopy(step: StepInput & { instruction: CopyInstruction | AddInstruction }, ctx: StepContext): Promise<PreparedStep | RunFirstStep> {
  const instr = step.instruction;
  const heredocFiles = await heredocTree(instr.heredocs, ctx.scratch);
  const fromHeredocs = heredocFiles !== undefined && instr.sources.every((s) => s.startsWith('<<'));
  const params = (from: FsView, destFs: FsView | undefined): CopyParams => ({
    kind: instr.kind,
    sources: fromHeredocs ? heredocFiles.names : instr.sources,
    dest: instr.dest,
    workdir: workdirOf(step),
    from,
    ...(instr.chown !== undefined ? { chown: instr.chown } : {}),
    ...(instr.chmod !== undefined ? { chmod: instr.chmod } : {}),
    exclude: instr.exclude,
    parents: instr.parents,
    link: isLinkedCopy(instr),
    ...(destFs ? { destFs } : {}),
    ...(instr.kind === 'ADD' && instr.checksum !== undefined ? { checksum: instr.checksum } : {}),
    ...(instr.kind === 'ADD' && instr.keepGitDir !== undefined ? { keepGitDir: instr.keepGitDir } : {}),
    ...(instr.kind === 'ADD' && instr.unpack !== undefined ? { unpack: instr.unpack } : {}),
    // snapshot files never change, so their hashes are as cacheable as the context's
    hashCache: ctx.hashes(),
    tmpDir: ctx.scratch,
    signal: step.signal,
    now: ctx.sourceDateEpoch ?? Math.floor(Date.now() / 1000),
    ...(ctx.onRemoteSource ? { onRemoteSource: ctx.onRemoteSource } : {}),
  });
  // with --link planCopy reads the destination only to resolve --chown names, never for metadata
  const destFs = async (): Promise<FsView | undefined> => (step.layers.length === 0 ? undefined : ctx.fsOf(step.layers, 'image'));
  const layerOf = async (planned: CopyResult): Promise<StepOutcome> => {
    await planned.unpackArchives();
    return { layer: await writeStepLayer(planned.layerEntries(), ctx, step.snapshotWanted === true) };
  };
  const writeOut = async (planned: CopyResult): Promise<StepOutcome> => {
    try {
      return await layerOf(planned);
    } finally {
      planned.dispose();
    }
  };
  if (instr.from !== undefined && !fromHeredocs) {
    // a stage's or image's key names its content: nothing is read (or downloaded) on a cache hit
    const from = instr.from;
    const src = await ctx.resolveFrom(from);
    return {
      inputs: [`from:${src.key}`],
      execute: async () => writeOut(await planCopy(params(await ctx.fsOf(src.layers, `stage ${from}`), await destFs()))),
    };
  }
  const view: FsView = fromHeredocs ? heredocFiles.view : ctx.context();
  if (instr.kind === 'ADD' && instr.sources.some(isRemoteSource)) {
    // downloads happen once: the planned entries are kept for execute
    const planned = await planCopy(params(view, await destFs()));
    return { inputs: [planned.inputDigest], execute: async () => writeOut(planned) };
  }
  // The key needs only the selected sources: their digest does not depend on the destination or on
  // --chown, whose owners are resolved against the image when the step runs.
  const keyFrom = (planned: CopyResult, hashStart: number): StepKeyInputs => {
    const files = planned.inputFiles;
    return { inputs: [planned.inputDigest], ...(files ? { files } : {}), hashMs: monotonicMs() - hashStart };
  };
  const { chown: _chown, ...probeParams } = params(view, undefined);
  const run = async (): Promise<StepOutcome> => writeOut(await planCopy(params(view, await destFs())));
  if (step.missExpected === true) {
    // The layer is written first and its reads give the files' hashes: each source is read once, not once to
    // hash it for the key and again for the layer. The key then comes from the same plan, whose walk of the
    // sources uses the hashes the layer writer remembered.
    let ran: CopyResult | undefined;
    return {
      runFirst: true,
      execute: async () => {
        const planned = await planCopy(params(view, await destFs()));
        try {
          const outcome = await layerOf(planned);
          ran = planned;
          return outcome;
        } catch (e) {
          planned.dispose();
          throw e;
        }
      },
      key: async () => {
        const planned = ran ?? (await planCopy(probeParams));
        ran = undefined;
        try {
          return keyFrom(planned, monotonicMs());
        } finally {
          planned.dispose();
        }
      },
    };
  }
  const hashStart = monotonicMs();
  const probe = await planCopy(probeParams);
  try {
    return { ...keyFrom(probe, hashStart), execute: run };
  } finally {
    probe.dispose();
  }
}

/** An ADD source fetched from elsewhere (HTTP or git) rather than read from the context. */
function isRemoteSource(s: string): boolean {
  return /^(https?:\/\/|git@|git:\/\/|ssh:\/\/)/.test(s);
}

export async function planCopy(p: CopyParams): Promise<CopyResult> {
  const kind = p.kind ?? 'COPY';
  const staged: string[] = [];
  const cache = p.hashCache ?? HashCache.load();
  const dispose = (): void => {
    for (const d of staged.splice(0)) {
      cache.forget(`${d}/`);
      rmSync(d, { recursive: true, force: true });
    }
  };
  try {
    return await plan({ ...p, hashCache: cache }, kind, () => {
      const d = mkdtempSync(posix.join(p.tmpDir ?? tmpdir(), 'kiln-add-'));
      staged.push(d);
      return d;
    }, dispose);
  } catch (e) {
    dispose();
    throw e;
  }
}

async function plan(p: CopyParams, kind: 'COPY' | 'ADD', stage: () => string, dispose: () => void): Promise<CopyResult> {
  if (p.sources.length === 0) throw new KilnError('CONTEXT', `${kind} failed: no source files were specified`);
  const cache = p.hashCache ?? HashCache.load();
  const now = p.now ?? Date.now() / 1000;
  const owner = await resolveChown(p.chown, p.destFs);
  const chmod = p.chmod !== undefined ? parseChmod(p.chmod) : undefined;
  const exclude = p.exclude && p.exclude.length > 0 ? new PatternMatcher(p.exclude, '--exclude') : undefined;
  const destFs = p.link ? undefined : p.destFs;

  const destSyntaxDir = /(^|\/)\.{0,2}$/.test(p.dest) || p.dest.endsWith('/');
  if (p.sources.length > 1 && !destSyntaxDir) {
    throw new KilnError('CONTEXT', `When using ${kind} with more than one source file, the destination must be a directory and end with a /`);
  }
  // an absolute destination ignores WORKDIR; a relative one is resolved against it
  const destAbs = cleanPath(p.dest.startsWith('/') ? p.dest : posix.join('/', p.workdir || '/', p.dest));
  const { path: dest, isDir: destExistsDir } = resolveDest(destFs, destAbs);

  const matches: Match[] = [];
  for (const src of p.sources) matches.push(...(await matchSource(p, kind, src, stage)));
  const destIsDir = destSyntaxDir || destExistsDir || matches.length > 1 || p.parents === true;

  // Sources that are missing, or a file copied onto "/", fail now, whichever of key and layer comes first.
  for (const m of matches) {
    const node = m.view.lstat(m.path);
    if (!node) throw new KilnError('CONTEXT', `${kind} failed: "${m.label}" not found in ${m.view.label}`);
    if (m.archive || node.type === 'directory') continue;
    if (exclude && exclude.matchWithParent(posix.basename(m.matched), []).excluded) continue;
    if (m.keep === undefined && !destIsDir && dest === '') {
      throw new KilnError('CONTEXT', `${kind} failed: cannot copy "${m.label}" onto the root directory`);
    }
  }

  // The digest is all a cache hit needs: one walk per source, on first access (a step that runs
  // before its key is known asks after the layer is written, when the files' hashes are known).
  let selection: { digest: Digest; files: Record<string, string> | undefined } | undefined;
  const hashSources = (): { digest: Digest; files: Record<string, string> | undefined } => {
    if (selection) return selection;
    const h = new SelectionHasher(cache);
    for (const m of matches) {
      h.mark(m.label);
      const node = m.view.lstat(m.path)!;
      if (m.archive) {
        h.mark('unpack');
        h.add(posix.basename(m.path), node);
      } else if (node.type === 'directory') {
        h.add('.', node);
        const cut = m.path === '' ? 0 : m.path.length + 1;
        if (exclude) copyTree(m, m.path, '', exclude, [], (_target, path, n) => h.add(path.slice(cut), n));
        else forEachNode(m.view, m.path, (path, n) => h.add(path.slice(cut), n));
      } else {
        const name = posix.basename(m.matched);
        if (exclude && exclude.matchWithParent(name, []).excluded) continue;
        h.add(name, node);
      }
    }
    selection = { digest: h.digest(), files: h.listing() };
    return selection;
  };

  // A host file's entry carries its HostFile as the inode it was listed as (see toEntry). Made here,
  // not in build(): every entry that learns its hash holds this function until the layer is written,
  // and a closure made in build() would hold build()'s scope with it — the plan's whole target map.
  const learn = (hex: string, e: LayerEntry): void => cache.remember(e.sourceInode as HostFile, hex);
  // BuildKit keeps the owners of files copied from a stage, an image or an archive; context, git
  // and download files become 0:0 (the client resets them). --chown overrides both.
  const ownerOf = (view: FsView, n: FsNode): Owner | undefined => (!p.chown && view.chroot ? { uid: n.uid, gid: n.gid } : undefined);
  const contentOf = (index: number, m: Match, path: string, node: FsNode): Planned => {
    // only a file with more than one link can share its inode with another file of the copy
    const host = node.type === 'file' ? node.host : undefined;
    const linkKey = host !== undefined && host.nlink > 1 ? `${index}:${host.dev}:${host.ino}` : undefined;
    return { view: m.view, srcPath: path, node, owner: ownerOf(m.view, node), content: true, linkKey };
  };
  // BuildKit's unpack creates missing directories 0755 whatever the --chmod
  const createdMode = p.chmod !== undefined && !matches.some((m) => m.archive) ? createdDirMode(p.chmod) : DEFAULT_DIR_MODE;
  // Targets, parents, order and entry objects only matter on a cache miss: built on first access
  // (the second walk reads the views' remembered listings, not the disk).
  const build = (): LayerEntry[] => {
    const planned = new Map<string, Planned>();
    matches.forEach((found, index) => {
      const put = (target: string, m: Match, path: string, node: FsNode): void => {
        if (target !== '') planned.set(target, contentOf(index, m, path, node));
      };
      if (found.archive) {
        const tree = trees.get(index);
        if (tree === undefined) throw new KilnError('INTERNAL', `${kind}: archive "${found.label}" was read before it was unpacked`);
        const base = found.keep !== undefined ? joinRel(dest, found.keep) : dest;
        if (base !== '' && !planned.has(base) && !destFs?.lstat(base)) {
          planned.set(base, { view: tree, srcPath: '', node: newDir(now), owner: undefined, content: true, created: true });
        }
        planArchive(tree, base, planned, destFs, index, ownerOf);
        return;
      }
      const m = found;
      const node = m.view.lstat(m.path)!;
      if (m.keep !== undefined) putParentsOfKeep(m, dest, planned, put);
      if (node.type === 'directory') {
        const base = m.keep !== undefined ? joinRel(dest, m.keep) : dest;
        // --parents recreates the source's directories; otherwise a missing destination directory is new.
        if (m.keep !== undefined) put(base, m, m.path, node);
        else if (base !== '' && !planned.has(base) && !destFs?.lstat(base)) {
          planned.set(base, { view: m.view, srcPath: m.path, node: newDir(now), owner: undefined, content: true, created: true });
        }
        copyTree(m, m.path, base, exclude, [], (target, path, n) => {
          if (target !== '') planned.set(target, { ...contentOf(index, m, path, n), below: true });
        });
      } else {
        const name = posix.basename(m.matched);
        if (exclude && exclude.matchWithParent(name, []).excluded) return;
        put(m.keep !== undefined ? joinRel(dest, m.keep) : destIsDir ? joinRel(dest, name) : dest, m, m.path, node);
      }
    });
    // nothing matched (only empty wildcards): BuildKit stops before making the destination
    if (matches.length > 0 && destIsDir && dest !== '' && !planned.has(dest) && !destFs?.lstat(dest)) {
      planned.set(dest, { view: p.from, srcPath: '', node: newDir(now), owner: undefined, content: true, created: true });
    }
    addParents(planned, destFs, now, kind);
    const paths = [...planned.keys()].sort(comparePaths);
    const firstOfLink = new Map<string, string>();
    return paths.map((path) => toEntry(path, planned.get(path)!, owner, chmod, createdMode, firstOfLink, cache, learn));
  };

  // One directory copied to the destination: its walk (sorted names, depth-first) is already the
  // layer's order, so each entry is made when the writer asks for it. It plans what build() plans:
  // the destination when it is new, the parents addParents gives it, the tree with the source's
  // metadata on every directory (Planned.below); the layer writer refuses entries out of order.
  const single = matches.length === 1 ? matches[0] : undefined;
  const walked = single !== undefined && single.archive === undefined && single.keep === undefined && single.view.lstat(single.path)?.type === 'directory' ? single : undefined;
  function* stream(m: Match): Generator<LayerEntry> {
    const firstOfLink = new Map<string, string>();
    const entryOf = (path: string, pl: Planned): LayerEntry => toEntry(path, pl, owner, chmod, createdMode, firstOfLink, cache, learn);
    const treeOf = ([, path, node]: [string, string, FsNode]): Planned => ({ ...contentOf(0, m, path, node), below: true });
    const tree = walkTree(m, m.path, dest, exclude, []);
    const first = tree.next();
    const head = new Map<string, Planned>();
    if (dest !== '' && !destFs?.lstat(dest)) head.set(dest, { view: m.view, srcPath: m.path, node: newDir(now), owner: undefined, content: true, created: true });
    // The first entry stands for the whole tree when the parents are planned: every later entry's
    // parents are the tree's own directories, the destination or the destination's parents.
    if (!first.done) head.set(first.value[0], treeOf(first.value));
    addParents(head, destFs, now, kind);
    if (!first.done) head.delete(first.value[0]);
    for (const path of [...head.keys()].sort(comparePaths)) yield entryOf(path, head.get(path)!);
    if (first.done) return;
    yield entryOf(first.value[0], treeOf(first.value));
    for (const item of tree) yield entryOf(item[0], treeOf(item));
  }

  const trees = new Map<number, ArchiveTree>();
  let entries: LayerEntry[] | undefined;
  return {
    async unpackArchives(): Promise<void> {
      for (const [index, m] of matches.entries()) {
        if (m.archive === undefined || trees.has(index)) continue;
        trees.set(index, await ArchiveTree.unpack(m.archive.file, m.archive.compression, stage(), `archive "${m.label}"`, m.archive.inode, p.signal));
      }
    },
    get entries(): LayerEntry[] {
      entries ??= build();
      return entries;
    },
    layerEntries(): Iterable<LayerEntry> {
      if (entries === undefined && walked) return stream(walked);
      entries ??= build();
      return entries;
    },
    get inputDigest(): Digest {
      return hashSources().digest;
    },
    get inputFiles(): Record<string, string> | undefined {
      return hashSources().files;
    },
    dispose,
  };
}

const DEFAULT_DIR_MODE = 0o755;

function newDir(now: number): FsNode {
  return { type: 'directory', mode: DEFAULT_DIR_MODE, uid: 0, gid: 0, size: 0, mtime: now };
}

/**
 * The mode of directories COPY creates: an octal --chmod (permission bits
 * only) or 0755. BuildKit passes only an octal --chmod to MkdirAll; a
 * symbolic one (u+x) changes copied entries, never created directories.
 */
function createdDirMode(spec: string): number {
  return /^[0-7]{1,4}$/.test(spec) ? parseInt(spec, 8) & 0o777 : DEFAULT_DIR_MODE;
}

/**
 * --parents: the directories between the pivot and a matched path come from
 * the source with their own metadata (BuildKit copies them as it descends),
 * not as new 0755 directories.
 */
function putParentsOfKeep(m: Match, dest: string, planned: Map<string, Planned>, put: (target: string, m: Match, path: string, node: FsNode) => void): void {
  const keep = m.keep ?? '';
  if (keep === '') return;
  const srcPrefix = m.matched.slice(0, m.matched.length - keep.length);
  const parts = keep.split('/');
  for (let i = 1; i < parts.length; i++) {
    const rel = parts.slice(0, i).join('/');
    const target = joinRel(dest, rel);
    if (planned.has(target)) continue;
    const src = resolvePath(m.view, `${srcPrefix}${rel}`, { followFinal: true, what: m.label });
    const node = m.view.lstat(src);
    if (node?.type === 'directory') put(target, m, src, node);
  }
}

/**
 * An archive's entries placed the way BuildKit's untar (chrooted to the
 * destination) places them: each entry's parent is resolved through the
 * symlinks already there, in the image or from earlier entries, with absolute
 * links and `..` bounded by the destination; the entry's own name is never
 * followed (a directory entry replaces a symlink). Directories the archive
 * only implies are not entries of their own: missing ones are created 0755
 * root, existing ones are kept.
 */
function planArchive(
  tree: ArchiveTree,
  base: string,
  planned: Map<string, Planned>,
  destFs: FsView | undefined,
  index: number,
  ownerOf: (view: FsView, n: FsNode) => Owner | undefined,
): void {
  const merged = (path: string): FsNode | undefined => planned.get(path)?.node ?? destFs?.lstat(path);
  const inDest: FsView = {
    label: 'destination',
    chroot: true,
    lstat: (path) => merged(path === '' ? base : joinRel(base, path)),
    readdir: () => [],
    open: () => {
      throw new KilnError('INTERNAL', 'destination view is for path resolution only');
    },
  };
  forEachNode(tree, '', (path, node) => {
    if (tree.isImplicit(path)) return;
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '' : resolvePath(inDest, path.slice(0, slash), { followFinal: true });
    const dir = parent === '' ? base : joinRel(base, parent);
    const target = joinRel(dir, path.slice(slash + 1));
    const content = tree.contentKey(path);
    planned.set(target, {
      view: tree, srcPath: path, node, owner: ownerOf(tree, node), content: true, unpacked: true,
      ...(content !== undefined ? { linkKey: `${index}:${content}` } : {}),
    });
  });
}

/**
 * The destination in the parent image, resolved as BuildKit's fs.RootPath
 * does: every symlink followed, the last one included, inside the image root
 * (absolute targets start at the root, `..` stops there). A link to a
 * directory is copied into; a link to a file is written through; a dangling
 * link's target is created. Without a parent image (scratch, --link) the path
 * is taken literally.
 */
function resolveDest(destFs: FsView | undefined, destAbs: string): { path: string; isDir: boolean } {
  const rel = destAbs.replace(/^\/+/, '');
  if (!destFs) return { path: rel, isDir: false };
  const path = resolvePath(destFs, rel, { followFinal: true, what: destAbs });
  return { path, isDir: path === '' || destFs.lstat(path)?.type === 'directory' };
}

/** Sources → matches: URLs and git repositories staged, wildcards expanded, symlinks resolved inside the tree. */
async function matchSource(p: CopyParams, kind: 'COPY' | 'ADD', src: string, stage: () => string): Promise<Match[]> {
  if (kind === 'ADD' && isGitUrl(src)) {
    const git = parseGitUrl(src);
    const dir = stage();
    const commit = await cloneGit(git, dir, p.signal);
    p.onRemoteSource?.({ uri: src, digest: { sha1: commit } });
    // ADD --checksum on a git source pins the commit (a full or abbreviated sha), as BuildKit does.
    if (p.checksum !== undefined && !(p.checksum.length >= 7 && commit.startsWith(p.checksum.toLowerCase()))) {
      throw new KilnError('DIGEST_MISMATCH', `ADD failed: ${src} is at commit ${commit}, expected ${p.checksum}`);
    }
    const view = BuildContext.open(dir, { ignorePatterns: p.keepGitDir ? [] : ['.git'], label: `git repository ${git.remote}` });
    const sub = git.subdir ? resolvePath(view, git.subdir, { followFinal: true, what: src }) : '';
    if (view.lstat(sub)?.type !== 'directory') throw new KilnError('CONTEXT', `ADD failed: "${git.subdir ?? ''}" is not a directory in ${git.remote}`);
    return [{ view, path: sub, matched: sub, label: src }];
  }
  if (isHttpUrl(src)) {
    if (kind === 'COPY') throw new KilnError('CONTEXT', `COPY failed: source can't be a URL for COPY ("${src}")`);
    const dir = stage();
    const got = await downloadUrl(src, dir, p.checksum, p.signal);
    p.onRemoteSource?.({ uri: src, digest: { sha256: got.sha256 } });
    const view = BuildContext.open(dir, { ignoreFile: null, label: `download ${src}` });
    if (p.unpack === true) {
      const archive = await unpackIfArchive(view, got.name, src);
      if (archive) return [archive];
    }
    return [{ view, path: got.name, matched: got.name, label: src }];
  }
  if (p.checksum !== undefined && kind === 'ADD') {
    throw new KilnError('CONTEXT', `ADD failed: --checksum applies to URL and git sources only ("${src}")`);
  }
  const out: Match[] = [];
  for (const m of matchLocal(p.from, src, kind, p.parents === true)) {
    if (kind === 'ADD' && p.unpack !== false && m.view.lstat(m.path)?.type === 'file') {
      const archive = await unpackIfArchive(m.view, m.path, src);
      if (archive) {
        out.push({ ...archive, ...(m.keep !== undefined ? { keep: posix.dirname(m.keep) === '.' ? '' : posix.dirname(m.keep) } : {}) });
        continue;
      }
    }
    out.push(m);
  }
  return out;
}

async function unpackIfArchive(view: FsView, path: string, label: string): Promise<Match | undefined> {
  const node = view.lstat(path);
  if (!node?.host) return undefined;
  const inode = { dev: node.host.dev, ino: node.host.ino };
  const compression = await detectArchive(node.host.path, inode);
  if (compression === undefined) return undefined;
  return { view, path, matched: path, archive: { file: node.host.path, compression, inode }, label };
}

function matchLocal(view: FsView, src: string, kind: string, parents: boolean): Match[] {
  // --parents: "/./" pivots; only what follows it is kept under the destination.
  const pivotAt = parents ? src.indexOf('/./') : -1;
  const stripped = src.replace(/^\/+/, '');
  const rel = cleanPath(stripped);
  if (rel === '..' || rel.startsWith('../')) {
    throw new KilnError('UNSAFE_PATH', `${kind} failed: "${src}" is outside the ${view.label}`);
  }
  const norm = rel === '.' ? '' : rel;
  let pivot = '';
  if (pivotAt >= 0) {
    const before = cleanPath(src.slice(0, pivotAt).replace(/^\/+/, ''));
    pivot = before === '.' ? '' : before;
  }
  const keepOf = (matched: string): string | undefined => {
    if (!parents) return undefined;
    if (pivot === '') return matched;
    return matched === pivot ? '' : matched.slice(pivot.length + 1);
  };
  if (!hasMeta(norm)) {
    const path = resolvePath(view, norm, { followFinal: true, what: src });
    if (!view.lstat(path)) throw new KilnError('CONTEXT', `${kind} failed: "${src}" not found in ${view.label}`);
    return [{ view, path, matched: norm, keep: keepOf(norm), label: src }];
  }
  let found: string[] = [''];
  for (const seg of norm.split('/')) {
    const next: string[] = [];
    for (const dir of found) {
      const resolvedDir = resolvePath(view, dir, { followFinal: true, what: src });
      if (!hasMeta(seg)) {
        if (view.lstat(joinRel(resolvedDir, seg))) next.push(joinRel(dir, seg));
        continue;
      }
      if (view.lstat(resolvedDir)?.type !== 'directory') continue;
      for (const name of view.readdir(resolvedDir)) {
        let ok: boolean;
        try {
          ok = goMatch(seg, name);
        } catch (e) {
          if (e instanceof BadPatternError) throw new KilnError('CONTEXT', `${kind} failed: bad pattern "${src}"`);
          throw e;
        }
        if (ok) next.push(joinRel(dir, name));
      }
    }
    found = next;
  }
  // A wildcard that matches nothing copies nothing, as in BuildKit (AllowEmptyWildcard): the
  // "COPY requirements.* /app/" idiom for an optional file. A name without wildcards must exist.
  return found.map((matched) => ({
    view,
    path: resolvePath(view, matched, { followFinal: true, what: src }),
    matched,
    keep: keepOf(matched),
    label: src,
  }));
}

/** Walks a source directory into targets under `base`, with --exclude applied relative to the source directory. */
function copyTree(
  m: Match,
  dir: string,
  base: string,
  exclude: PatternMatcher | undefined,
  info: MatchInfo,
  emit: (target: string, path: string, node: FsNode) => void,
): void {
  for (const [target, path, node] of walkTree(m, dir, base, exclude, info)) emit(target, path, node);
}

/** What copyTree emits, one [target, path in the view, node] at a time, depth-first with sorted names. */
function* walkTree(m: Match, dir: string, base: string, exclude: PatternMatcher | undefined, info: MatchInfo): Generator<[string, string, FsNode]> {
  const relRoot = m.path;
  // a view that lists nodes with their names spares a lookup per child
  const listing = m.view.list?.(dir);
  const names = listing?.names ?? m.view.readdir(dir);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const path = joinRel(dir, name);
    const node = listing ? listing.nodes[i] : m.view.lstat(path);
    if (!node) continue;
    const rel = relRoot === '' ? path : path.slice(relRoot.length + 1);
    let childInfo: MatchInfo = [];
    if (exclude) {
      const v = exclude.matchWithParent(rel, info);
      childInfo = v.info;
      if (v.excluded && !(node.type === 'directory' && exclude.mayReinclude(rel))) continue;
      if (v.excluded) {
        // Only kept when something below is re-included.
        const inner = [...walkTree(m, path, joinRel(base, name), exclude, childInfo)];
        if (inner.length === 0) continue;
        yield [joinRel(base, name), path, node];
        yield* inner;
        continue;
      }
    }
    yield [joinRel(base, name), path, node];
    if (node.type === 'directory') yield* walkTree(m, path, joinRel(base, name), exclude, childInfo);
  }
}

/**
 * Every ancestor of a copied entry appears in the layer: with the parent
 * image's metadata when it exists there (so /tmp keeps 1777), else 0755 root.
 */
function addParents(planned: Map<string, Planned>, destFs: FsView | undefined, now: number, kind: string): void {
  for (const path of [...planned.keys()]) {
    let slash = path.lastIndexOf('/');
    while (slash > 0) {
      const parent = path.slice(0, slash);
      const have = planned.get(parent);
      if (have) {
        if (have.node.type !== 'directory') {
          throw new KilnError('CONTEXT', `${kind} failed: cannot copy to "/${path}": "/${parent}" is not a directory`);
        }
        break;
      }
      const existing = destFs?.lstat(parent);
      if (existing && existing.type !== 'directory') {
        throw new KilnError('CONTEXT', `${kind} failed: cannot copy to "/${path}": "/${parent}" is not a directory in the image`);
      }
      planned.set(parent, existing
        ? { view: destFs ?? emptyView, srcPath: parent, node: existing, owner: { uid: existing.uid, gid: existing.gid }, content: false }
        : { view: emptyView, srcPath: parent, node: newDir(now), owner: undefined, content: false, created: true });
      slash = parent.lastIndexOf('/');
    }
  }
  // A directory the image already has keeps its metadata when COPY merges into it, when it is the
  // destination or a parent of what is copied (BuildKit's copier sets the metadata of those only when
  // it creates them); inside a copied directory, and for an archive's own directory entries (as untar
  // does), the source's metadata overwrites it.
  for (const [path, pl] of planned) {
    const kept = keepImageDir(path, pl, destFs);
    if (kept !== pl) planned.set(path, kept);
  }
}

/** A copied directory the image already has at `path`: planned with the image's metadata (see addParents). */
function keepImageDir(path: string, pl: Planned, destFs: FsView | undefined): Planned {
  if (pl.created || pl.below || pl.node.type !== 'directory' || (pl.content && pl.view instanceof ArchiveTree)) return pl;
  const existing = destFs?.lstat(path);
  return existing?.type === 'directory' ? { ...pl, node: existing, owner: { uid: existing.uid, gid: existing.gid }, content: false } : pl;
}

const emptyView: FsView = {
  label: 'scratch',
  chroot: true,
  lstat: () => undefined,
  readdir: () => [],
  open: () => {
    throw new KilnError('INTERNAL', 'no content in scratch');
  },
};

function toEntry(
  path: string, pl: Planned, owner: Owner, chmod: ChmodFn | undefined, createdMode: number, firstOfLink: Map<string, string>, hashes: HashCache,
  learn: (sha256Hex: string, e: LayerEntry) => void,
): LayerEntry {
  const n = pl.node;
  const isDir = n.type === 'directory';
  let mode = n.mode;
  let who: Owner;
  if (pl.created) {
    mode = createdMode;
    who = owner;
  } else if (pl.content) {
    if (chmod && n.type !== 'symlink' && !pl.unpacked) mode = chmod(mode, isDir);
    who = pl.owner ?? owner;
  } else {
    who = pl.owner ?? { uid: 0, gid: 0 };
  }
  if (n.type === 'file') {
    if (pl.linkKey !== undefined) {
      const first = firstOfLink.get(pl.linkKey);
      if (first !== undefined) return { path, type: 'hardlink', mode, uid: who.uid, gid: who.gid, mtime: n.mtime, linkname: first };
      firstOfLink.set(pl.linkKey, path);
    }
    // One literal (one shape for every file entry). A host file is read by the layer writer from its
    // path, as the inode it was listed as, so it needs no opener; its digest callback is there only
    // when the file is not hashed yet (the step runs before its key and learns the hash from that read).
    const host = n.host;
    const { view, srcPath } = pl;
    const file: LayerEntry = {
      path, type: 'file', mode, uid: who.uid, gid: who.gid, mtime: n.mtime, size: n.size,
      sourcePath: host?.path, sourceInode: host, open: host ? undefined : () => view.open(srcPath),
      onContentDigest: host && !hashes.has(host) ? learn : undefined,
    };
    if (n.xattrs && pl.content) file.xattrs = n.xattrs;
    return file;
  }
  const entry: LayerEntry = { path, type: n.type, mode, uid: who.uid, gid: who.gid, mtime: n.mtime };
  if (n.linkname !== undefined) entry.linkname = n.linkname;
  if (n.devmajor !== undefined) entry.devmajor = n.devmajor;
  if (n.devminor !== undefined) entry.devminor = n.devminor;
  if (n.xattrs && pl.content) entry.xattrs = n.xattrs;
  return entry;
}
