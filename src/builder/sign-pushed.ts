import type { Digest } from '../image/digest.js';
import type { BuildEvent } from '../events/index.js';
import type { RegistryAccess } from '../cache/remote/index.js';

/** `--sign-key`: signs, in each pushed repository, exactly the digest that was pushed (cosign's format). */
export async function signPushed(file: string, access: RegistryAccess, tags: readonly string[], digest: Digest, emit: (e: BuildEvent) => void): Promise<void> {
  const { loadPrivateKey, readKeyFile, signImage } = await import('../sign/index.js');
  const { RegistryClient } = await import('../registry/client.js');
  const { parseReference } = await import('../registry/reference.js');
  const text = await readKeyFile(file, `--sign-key ${file}`);
  const key = loadPrivateKey(text, process.env['COSIGN_PASSWORD'] ?? '', file);
  const client = new RegistryClient({ insecureRegistries: access.insecureRegistries, mirrors: access.mirrors, ...(access.signal ? { signal: access.signal } : {}) });
  try {
    const repos = new Set<string>();
    for (const t of tags) {
      const ref = parseReference(t);
      if (repos.has(ref.name)) continue;
      repos.add(ref.name);
      const t0 = Date.now();
      const r = await signImage(client, ref.withDigest(digest), key);
      emit({ type: 'phase', name: 'push', state: 'done', detail: `signature ${r.signatureRef}`, durationMs: Date.now() - t0, time: Date.now() });
    }
  } finally {
    await client.close();
  }
}
