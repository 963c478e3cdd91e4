import type { Command } from 'commander';

async function client(cmd: Command) {
  const { registryClientOptions } = await import('../registry-flags.js');
  const { RegistryClient } = await import('../../registry/client.js');
  return new RegistryClient(await registryClientOptions(cmd, true));
}

async function readKeyFile(path: string): Promise<string> {
  const { readKeyFile: read } = await import('../../sign/index.js');
  return read(path, `cannot read key ${path}`);
}

/** `kiln sign`, `kiln verify` and `kiln generate-key-pair`: cosign's key-based signing, compatible in both directions. */
export function register(program: Command): void {
  program
    .command('sign')
    .description('sign an image in a registry with a cosign-format key (signature under the sha256-<hex>.sig tag)')
    .argument('<image>', 'registry reference, e.g. host:5000/app:1 (signed by digest)')
    .requiredOption('--key <file>', 'private key: cosign.key (password from COSIGN_PASSWORD) or a PEM P-256 key')
    .option('-a, --annotations <k=v...>', 'extra claims written into the signed payload')
    .action(async (image: string, flags: { key: string; annotations?: string[] }, cmd: Command) => {
      const { parseReference } = await import('../../registry/reference.js');
      const { loadPrivateKey, signImage } = await import('../../sign/index.js');
      const { KilnError } = await import('../../errors/index.js');
      const key = loadPrivateKey(await readKeyFile(flags.key), process.env.COSIGN_PASSWORD ?? '', flags.key);
      const annotations: Record<string, string> = {};
      for (const a of flags.annotations ?? []) {
        const i = a.indexOf('=');
        if (i <= 0) throw new KilnError('USAGE', `--annotations ${a}: expected KEY=VALUE`);
        annotations[a.slice(0, i)] = a.slice(i + 1);
      }
      const c = await client(cmd);
      try {
        const r = await signImage(c, parseReference(image), key, { annotations });
        process.stderr.write(`signed ${r.digest}, signature in ${r.signatureRef}\n`);
      } finally {
        await c.close();
      }
    });
  program
    .command('verify')
    .description('check an image in a registry against a cosign public key; exits non-zero unless a signature verifies')
    .argument('<image>', 'registry reference')
    .requiredOption('--key <file>', 'public key (cosign.pub)')
    .option('--json', 'print the verified payloads as JSON')
    .action(async (image: string, flags: { key: string; json?: boolean }, cmd: Command) => {
      const { parseReference } = await import('../../registry/reference.js');
      const { loadPublicKey, verifyImage } = await import('../../sign/index.js');
      const key = loadPublicKey(await readKeyFile(flags.key), flags.key);
      const c = await client(cmd);
      try {
        const r = await verifyImage(c, parseReference(image), key);
        if (flags.json) process.stdout.write(`${JSON.stringify(r.signatures.map((s) => s.payload), null, 2)}\n`);
        else process.stdout.write(`verified ${r.digest}: ${r.signatures.length} signature${r.signatures.length === 1 ? '' : 's'}\n`);
      } finally {
        await c.close();
      }
    });
  program
    .command('generate-key-pair')
    .description('write a new ECDSA P-256 key pair in cosign format (PREFIX.key encrypted with COSIGN_PASSWORD, PREFIX.pub)')
    .option('--output-key-prefix <prefix>', 'file name prefix', 'cosign')
    .action(async (flags: { outputKeyPrefix: string }) => {
      const { generateKeyPairSync } = await import('node:crypto');
      const { rm, writeFile } = await import('node:fs/promises');
      const { generateKeyPair } = await import('../../sign/index.js');
      const { KilnError } = await import('../../errors/index.js');
      // cosign asks for the password at a terminal; kiln never prompts, so it must be given,
      // and an empty one only on purpose (COSIGN_PASSWORD= set to nothing)
      const password = process.env.COSIGN_PASSWORD;
      if (password === undefined) throw new KilnError('USAGE', 'generate-key-pair: set COSIGN_PASSWORD to the password that encrypts the private key (COSIGN_PASSWORD= for none)');
      const pair = generateKeyPair(password, () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
      // wx: never overwrite an existing key; and never leave half a pair behind
      const keyFile = `${flags.outputKeyPrefix}.key`;
      await writeFile(keyFile, pair.privatePem, { mode: 0o600, flag: 'wx' });
      try {
        await writeFile(`${flags.outputKeyPrefix}.pub`, pair.publicPem, { flag: 'wx' });
      } catch (e) {
        await rm(keyFile, { force: true });
        throw e;
      }
      process.stderr.write(`wrote ${flags.outputKeyPrefix}.key and ${flags.outputKeyPrefix}.pub\n`);
    });
}
