import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * docs/kubernetes/kiln-job.yaml, checked offline: `kubectl create
 * --dry-run=client` needs an API server for discovery, so the manifest is
 * parsed with PyYAML (Debian python3-yaml) and its fields are checked against
 * the Job/Pod/Container fields it may use — a misspelt field would be silently
 * dropped by a cluster.
 */
const REPO = resolve(import.meta.dirname, '..', '..');
const MANIFEST = join(REPO, 'docs', 'kubernetes', 'kiln-job.yaml');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function parseYaml(text: string): Json[] {
  const out = execFileSync('/usr/bin/python3', ['-c', 'import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))'], { input: text, encoding: 'utf8' });
  return JSON.parse(out) as Json[];
}

const obj = (v: Json | undefined): { [k: string]: Json } => {
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) throw new Error(`not an object: ${JSON.stringify(v)}`);
  return v;
};
const arr = (v: Json | undefined): Json[] => {
  if (!Array.isArray(v)) throw new Error(`not a list: ${JSON.stringify(v)}`);
  return v;
};

// the fields of the Kubernetes API (batch/v1 Job, core/v1 PodSpec and Container) the manifest uses, per object kind
const ALLOWED: Record<string, string[]> = {
  job: ['apiVersion', 'kind', 'metadata', 'spec'],
  metadata: ['name', 'namespace', 'labels', 'annotations'],
  jobSpec: ['backoffLimit', 'ttlSecondsAfterFinished', 'activeDeadlineSeconds', 'template'],
  template: ['metadata', 'spec'],
  podSpec: ['restartPolicy', 'initContainers', 'containers', 'volumes', 'securityContext', 'serviceAccountName', 'hostUsers'],
  container: ['name', 'image', 'args', 'command', 'env', 'securityContext', 'resources', 'volumeMounts', 'workingDir'],
  securityContext: ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'allowPrivilegeEscalation', 'seccompProfile', 'appArmorProfile', 'procMount', 'capabilities'],
  volumeMount: ['name', 'mountPath', 'readOnly', 'subPath'],
  volume: ['name', 'emptyDir', 'secret', 'configMap'],
};

function onlyAllowed(kind: string, v: Json | undefined): void {
  for (const k of Object.keys(obj(v))) expect(ALLOWED[kind], `${kind}.${k}`).toContain(k);
}

describe('docs/kubernetes/kiln-job.yaml', () => {
  const docs = parseYaml(readFileSync(MANIFEST, 'utf8'));

  it('is one batch/v1 Job using only known fields', () => {
    expect(docs).toHaveLength(1);
    const job = obj(docs[0]);
    onlyAllowed('job', job);
    expect(job['apiVersion']).toBe('batch/v1');
    expect(job['kind']).toBe('Job');
    onlyAllowed('metadata', job['metadata']);
    const spec = obj(job['spec']);
    onlyAllowed('jobSpec', spec);
    const pod = obj(obj(spec['template'])['spec']);
    onlyAllowed('podSpec', pod);
    expect(pod['restartPolicy']).toBe('Never');
    for (const c of [...arr(pod['initContainers']), ...arr(pod['containers'])]) {
      onlyAllowed('container', c);
      if (obj(c)['securityContext'] !== undefined) onlyAllowed('securityContext', obj(c)['securityContext']);
      for (const m of arr(obj(c)['volumeMounts'] ?? [])) onlyAllowed('volumeMount', m);
    }
    for (const v of arr(pod['volumes'])) onlyAllowed('volume', v);
  });

  it('runs kiln rootless as uid 1000 with the registry cache and a Secret as config.json', () => {
    const pod = obj(obj(obj(obj(docs[0])['spec'])['template'])['spec']);
    const kiln = obj(arr(pod['containers']).map(obj).find((c) => c['name'] === 'kiln'));
    const sc = obj(kiln['securityContext']);
    expect(sc['runAsUser']).toBe(1000);
    expect(sc['runAsGroup']).toBe(1000);
    expect(obj(sc['seccompProfile'])['type']).toBe('Unconfined');
    expect(obj(sc['appArmorProfile'])['type']).toBe('Unconfined');
    // no added capabilities, no privileged
    expect(sc['capabilities']).toBeUndefined();
    expect(Object.keys(sc)).not.toContain('privileged');

    const args = arr(kiln['args']).map(String);
    expect(args[0]).toBe('build');
    expect(args[args.indexOf('--cache-from') + 1]).toMatch(/^type=registry,ref=\S+:buildcache$/);
    expect(args[args.indexOf('--cache-to') + 1]).toMatch(/^type=registry,ref=\S+:buildcache,mode=max$/);
    expect(args).toContain('--push');

    const env = Object.fromEntries(arr(kiln['env']).map(obj).map((e) => [String(e['name']), String(e['value'])]));
    const mounts = arr(kiln['volumeMounts']).map(obj);
    const auth = mounts.find((m) => m['mountPath'] === env['DOCKER_CONFIG']);
    expect(auth).toBeDefined();
    const vol = obj(arr(pod['volumes']).map(obj).find((v) => v['name'] === auth!['name']));
    const secret = obj(vol['secret']);
    expect(arr(secret['items']).map(obj)).toContainEqual({ key: '.dockerconfigjson', path: 'config.json' });
    // the store lives on a volume, not on the container's overlay root
    const store = mounts.find((m) => m['mountPath'] === '/home/kiln/.local/share/kiln');
    expect(obj(arr(pod['volumes']).map(obj).find((v) => v['name'] === store!['name']))['emptyDir']).toEqual({});
  });
});
