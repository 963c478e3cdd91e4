/**
 * Canonical JSON: object keys sorted by code unit, no insignificant
 * whitespace, `undefined` members dropped. Every document kiln hashes (manifests,
 * configs, cache keys) goes through here so equal content gives equal digests.
 */
export function canonicalJSON(value: unknown): string {
  return encode(value);
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(encode(value), 'utf8');
}

function encode(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`canonicalJSON: non-finite number ${v}`);
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : encode(x))).join(',')}]`;
      if (Buffer.isBuffer(v) || v instanceof Uint8Array) throw new TypeError('canonicalJSON: binary values are not JSON');
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${encode(o[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJSON: cannot encode ${typeof v}`);
  }
}
