import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bench } from '../test/builder/helpers.js';
import { expectValidStore } from '../test/helpers/oci-validate.js';
import { validateOci } from '../test/helpers/oci-schema.js';
import { corporaDir } from './runner.js';

const schemas = join(corporaDir(), 'oci-image-spec-schema');
const projectCopy = fileURLToPath(new URL('../test/fixtures/oci-schemas/', import.meta.url));

describe('OCI image-spec schemas (oci-image-spec-schema)', () => {
  it('the project\'s copy in test/fixtures/oci-schemas is the same as the corpora\'s', () => {
    const names = readdirSync(schemas).filter((f) => f.endsWith('.json')).sort();
    expect(names.length).toBeGreaterThan(0);
    for (const f of names) expect(readFileSync(join(projectCopy, f), 'utf8'), f).toBe(readFileSync(join(schemas, f), 'utf8'));
  });

  it('a broken manifest fails the corpora\'s schemas', () => {
    expect(validateOci({ schemaVersion: 3, config: {}, layers: [] }, 'manifest', schemas)).not.toEqual([]);
  });

  it('every document a multi-stage build writes passes the corpora\'s schemas', async () => {
    const b = await bench();
    try {
      const ctx = await b.context({
        'Dockerfile': 'FROM scratch AS a\nCOPY f /f\nFROM busybox-base\nCOPY --from=a /f /g\nRUN cat /g > /h\nLABEL x=y\nENV A=b\nCMD ["sh"]\n'
          .replace('busybox-base', 'localhost/busybox:latest'),
        'f': 'hello',
      });
      await b.build(ctx, { tags: ['localhost/conformance:1'] });
      await expectValidStore(await b.store(), schemas);
    } finally {
      await b.cleanup();
    }
  });
});
