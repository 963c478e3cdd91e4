/**
 * Builds a context with kiln's library API, pushes the image and reports
 * progress on stderr the way `kiln build --progress plain` does.
 *
 *   node build.js CONTEXT REGISTRY/REPO:TAG [--insecure] [--build-arg K=V]...
 *
 * The store is $KILN_ROOT (default: kiln's usual root).
 */
import { build, createRenderer, defaultRoot, formatSize, isKilnError, parseBuildArgs, push, Store } from 'kiln';

async function main(argv: string[]): Promise<number> {
  const [context, ref, ...rest] = argv;
  if (!context || !ref) {
    process.stderr.write('usage: build CONTEXT REF [--insecure] [--build-arg K=V]...\n');
    return 2;
  }
  const insecure = rest.includes('--insecure');
  const buildArgs = parseBuildArgs(rest.flatMap((a, i) => (rest[i - 1] === '--build-arg' ? [a] : [])));
  const registry = ref.split('/')[0]!;

  const store = await Store.open(process.env['KILN_ROOT'] ?? defaultRoot());
  const progress = createRenderer('plain', process.stderr);
  try {
    const result = await build({ context, store, tags: [ref], buildArgs, onEvent: (e) => progress.onEvent(e) });
    progress.close();
    let bytes = 0;
    const pushed = await push(store, ref, undefined, {
      insecureRegistries: insecure ? [registry] : [],
      onEvent: (e) => {
        if (e.type === 'push-progress' && e.phase === 'done') bytes += e.total;
      },
    });
    process.stderr.write(`pushed ${ref} (${formatSize(bytes)} uploaded)\n`);
    process.stdout.write(`${JSON.stringify({ imageId: result.imageId, digest: pushed.digest, executedSteps: result.executedSteps })}\n`);
    return 0;
  } catch (e) {
    // typed errors keep their fields: code, location, hint
    process.stderr.write(`build failed: ${isKilnError(e) ? `${e.code}: ${e.format()}` : String(e)}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
