import { KilnError } from '../errors/index.js';
import { isDigest, type Digest } from '../image/digest.js';

export const DOCKER_HUB = 'docker.io';
/** The key Docker writes for Docker Hub in config.json, kept for compatibility. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';
/** Where Docker Hub's API actually lives. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

// The grammar of github.com/distribution/reference, written out.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const ANY_DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const NAME_MAX = 255;

/**
 * A normalised image reference: `registry/repository[:tag][@digest]`, with
 * Docker's defaults applied (docker.io, library/, latest). Immutable.
 */
export class Reference {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;

  constructor(registry: string, repository: string, tag?: string, digest?: Digest) {
    this.registry = registry;
    this.repository = repository;
    this.tag = tag;
    this.digest = digest;
  }

  /** `registry/repository`, the name without tag or digest. */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** What the registry API addresses: the digest when pinned, else the tag (default `latest`). */
  get identifier(): string {
    return this.digest ?? this.tag ?? 'latest';
  }

  withTag(tag: string): Reference {
    if (!TAG_RE.test(tag)) throw new KilnError('INVALID_REFERENCE', `invalid tag "${tag}"`);
    return new Reference(this.registry, this.repository, tag, undefined);
  }

  withDigest(digest: Digest): Reference {
    // digests often come out of registry documents: checked here whatever the caller's type says
    if (!isDigest(digest)) throw new KilnError('INVALID_REFERENCE', `invalid digest ${JSON.stringify(String(digest))} (want sha256:<64 lowercase hex>)`);
    return new Reference(this.registry, this.repository, this.tag, digest);
  }

  /** Name plus tag and/or digest; the form kiln stores tags under. */
  toString(): string {
    return `${this.name}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }

  /** The short form people type: `busybox:latest`, `ghcr.io/o/r:1`. */
  familiar(): string {
    let name = this.name;
    if (this.registry === DOCKER_HUB) {
      name = this.repository.startsWith('library/') && this.repository.split('/').length === 2 ? this.repository.slice('library/'.length) : this.repository;
    }
    return `${name}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }
}

/**
 * Parses a reference with Docker's normalisation: `busybox` →
 * `docker.io/library/busybox:latest`; `host:5000/x` keeps the host; a digest
 * alone does not add `latest`.
 */
export function parseReference(input: string, opts: { defaultTag?: string | false } = {}): Reference {
  const s = input.trim();
  const bad = (why: string): KilnError => new KilnError('INVALID_REFERENCE', `invalid reference "${input}": ${why}`);
  if (s === '') throw bad('empty');

  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!ANY_DIGEST_RE.test(d)) throw bad(`bad digest "${d}"`);
    if (!isDigest(d)) throw bad(`unsupported digest "${d}" (want sha256:<64 lowercase hex>)`);
    digest = d;
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === '') throw bad('empty tag');
    if (!TAG_RE.test(tag)) throw bad(`bad tag "${tag}"`);
  }
  if (rest === '') throw bad('empty name');

  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // Docker's rule: the first component is a host when it has a dot, a port, is localhost, or has upper case
    if (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first) {
      if (!DOMAIN_RE.test(first)) throw bad(`bad registry host "${first}"`);
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;

  const components = repository.split('/');
  for (const c of components) {
    if (c === '') throw bad('empty path component');
    if (c.toLowerCase() !== c) throw bad('repository name must be lowercase');
    if (!PATH_COMPONENT_RE.test(c)) throw bad(`bad repository component "${c}"`);
  }
  if (`${registry}/${repository}`.length > NAME_MAX) throw bad(`name longer than ${NAME_MAX} characters`);

  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = opts.defaultTag ?? 'latest';
  return new Reference(registry, repository, tag, digest);
}

/** A tag as the reference grammar allows it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (no `/`, `:` or `..` prefix). */
export function isTag(s: string): boolean {
  return TAG_RE.test(s);
}

/** A repository path as the reference grammar allows it: lowercase components joined by single `/`. */
export function isRepository(s: string): boolean {
  return s.length > 0 && s.length <= NAME_MAX && s.split('/').every((c) => PATH_COMPONENT_RE.test(c));
}

/** True for hosts Docker lets use plain HTTP without configuration: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackHost(registry: string): boolean {
  const host = hostOf(registry);
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The host part of `host[:port]` (brackets removed from IPv6). */
export function hostOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const i = registry.lastIndexOf(':');
  return i >= 0 ? registry.slice(0, i) : registry;
}
