/**
 * What the store accepts as an image name (an index.json ref.name), read on
 * names as registry/reference.ts normalises them. No file system access: the
 * CLI and the build options check a new tag with these before anything runs.
 */

/** The digest part of `name[:tag]@digest`, as written (not checked); undefined for a name without one. */
export function refDigest(ref: string): string | undefined {
  const at = ref.indexOf('@');
  return at < 0 ? undefined : ref.slice(at + 1);
}

/**
 * Why no image may be given the name `ref`, or undefined: an empty name, or
 * one with spaces or control characters, which index.json and the listings
 * cannot show.
 */
export function nameRefusal(ref: string): string | undefined {
  if (!ref || /[\s\u0000-\u001f]/.test(ref)) return 'a name cannot be empty or contain spaces or control characters';
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
