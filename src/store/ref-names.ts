/**
 * What the store accepts as an image name (an index.json ref.name), read on
 * names as registry/reference.ts normalises them (`sha256:abcd` is
 * `docker.io/library/sha256:abcd`). No file system access: the CLI and the
 * build options check a new tag with these before anything runs.
 */

/** Docker Hub's official images, whose names are typed without this prefix. */
const HUB_LIBRARY = 'docker.io/library/';

/** The digest part of `name[:tag]@digest`, as written (not checked); undefined for a name without one. */
export function refDigest(ref: string): string | undefined {
  const at = ref.indexOf('@');
  return at < 0 ? undefined : ref.slice(at + 1);
}

/**
 * Why no image may be given the name `ref`, or undefined. Besides empty names
 * and names with spaces or control characters (which index.json and the
 * listings cannot show), the names a digest lookup would take for a digest:
 * repository `sha256` (typed `sha256:abcd`, read as a digest prefix by rmi,
 * tag and FROM) and a repository of 64 hex digits (FROM reads it as an image
 * ID). Docker refuses both, with the messages quoted.
 */
export function nameRefusal(ref: string): string | undefined {
  if (!ref || /[\s\u0000-\u001f]/.test(ref)) return 'a name cannot be empty or contain spaces or control characters';
  const name = ref.split('@')[0]!;
  const typed = name.startsWith(HUB_LIBRARY) ? name.slice(HUB_LIBRARY.length) : name;
  const colon = typed.lastIndexOf(':');
  const repository = colon > typed.lastIndexOf('/') ? typed.slice(0, colon) : typed;
  if (repository === 'sha256') return 'refusing to create an ambiguous tag using digest algorithm as name';
  if (/^[a-f0-9]{64}$/.test(repository)) return 'a repository name cannot be 64 hexadecimal digits (it reads as an image ID)';
  return undefined;
}

/**
 * Why `ref` cannot be a new tag (`kiln tag`, `build -t`, an image output's
 * `name=`), or undefined: nameRefusal's reasons, and any digest. A digest in
 * a name is the registry's word for which content it is, which a local tag
 * cannot give; Docker refuses it the same way.
 */
export function tagRefusal(ref: string): string | undefined {
  return nameRefusal(ref) ?? (refDigest(ref) !== undefined ? 'refusing to create a tag with a digest reference' : undefined);
}
