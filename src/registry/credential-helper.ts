import { spawn } from 'node:child_process';
import { KilnError } from '../errors/index.js';

/** The helper program is not installed (a `credsStore` copied from another machine, often). */
export class CredentialHelperMissing extends KilnError {
  constructor(program: string) {
    super('REGISTRY_AUTH', `credential helper ${program} not found on PATH`);
  }
}

/** The JSON a `docker-credential-*` helper speaks. */
export interface HelperCredentials {
  ServerURL?: string;
  Username: string;
  Secret: string;
}

/**
 * One `docker-credential-<name>` executable on PATH, driven through the
 * get/store/erase protocol (server URL or JSON on stdin, JSON on stdout).
 */
export class CredentialHelper {
  readonly program: string;
  private readonly env: NodeJS.ProcessEnv | undefined;

  /** `env` is the helper's environment (its PATH finds it); default process.env. */
  constructor(name: string, env?: NodeJS.ProcessEnv) {
    this.program = `docker-credential-${name}`;
    this.env = env;
  }

  /** Undefined when the helper has nothing for `serverURL`. */
  async get(serverURL: string): Promise<HelperCredentials | undefined> {
    const r = await this.run('get', serverURL);
    if (r.code !== 0) {
      if (/credentials not found/i.test(r.stdout + r.stderr)) return undefined;
      throw this.failure('get', r);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.stdout);
    } catch {
      // the output may hold the secret: do not quote it
      throw new KilnError('REGISTRY_AUTH', `${this.program} get printed something that is not JSON`);
    }
    const o = parsed as Partial<HelperCredentials>;
    if (typeof o.Username !== 'string' || typeof o.Secret !== 'string') {
      throw new KilnError('REGISTRY_AUTH', `${this.program} get answered without Username/Secret`);
    }
    if (o.Secret === '') return undefined;
    return { ServerURL: o.ServerURL ?? serverURL, Username: o.Username, Secret: o.Secret };
  }

  async store(creds: HelperCredentials): Promise<void> {
    const r = await this.run('store', JSON.stringify(creds));
    if (r.code !== 0) throw this.failure('store', r);
  }

  async erase(serverURL: string): Promise<void> {
    const r = await this.run('erase', serverURL);
    if (r.code !== 0 && !/credentials not found/i.test(r.stdout + r.stderr)) throw this.failure('erase', r);
  }

  private failure(op: string, r: { code: number | null; stdout: string; stderr: string }): KilnError {
    // helpers report errors on stdout or stderr in one line; they do not echo secrets there
    const detail = (r.stderr.trim() || r.stdout.trim()).split('\n')[0]?.slice(0, 200) ?? '';
    return new KilnError('REGISTRY_AUTH', `${this.program} ${op} failed (exit ${r.code ?? 'signal'})${detail ? `: ${detail}` : ''}`);
  }

  private run(op: string, input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.program, [op], { stdio: ['pipe', 'pipe', 'pipe'], env: this.env ?? process.env });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e: NodeJS.ErrnoException) => {
        reject(e.code === 'ENOENT' ? new CredentialHelperMissing(this.program) : new KilnError('REGISTRY_AUTH', `cannot run ${this.program}: ${e.message}`));
      });
      child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    });
  }
}
