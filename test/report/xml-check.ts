/**
 * A strict little well-formedness check, enough for what the report writes:
 * balanced tags, quoted and unique attributes, only predefined or numeric
 * entities, no raw `<` or `&` in text, no characters XML 1.0 forbids.
 * In `html` mode the doctype is allowed and <script>/<style> bodies are raw text.
 */
export function checkWellFormed(doc: string, mode: 'xml' | 'html'): { root: string; elements: number } {
  let i = 0;
  const stack: string[] = [];
  let root = '';
  let elements = 0;
  const fail = (msg: string): never => {
    const line = doc.slice(0, i).split('\n').length;
    throw new Error(`not well-formed at line ${line} (offset ${i}): ${msg}: ${JSON.stringify(doc.slice(i, i + 60))}`);
  };
  const bad = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.exec(doc);
  if (bad) {
    i = bad.index;
    fail('forbidden character');
  }
  const checkText = (t: string) => {
    if (t.includes('<')) fail('raw < in text');
    for (const m of t.matchAll(/&([^;\s]*);?/g)) {
      if (!/^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);$/.test(m[0])) fail(`bad entity ${m[0]}`);
    }
  };
  if (doc.startsWith('<?xml')) {
    i = doc.indexOf('?>') + 2;
    if (i < 2) fail('unterminated prolog');
  }
  if (mode === 'html') {
    const m = /^\s*<!DOCTYPE html>/i.exec(doc.slice(i));
    if (!m) fail('no doctype');
    i += m![0].length;
  }
  while (i < doc.length) {
    const lt = doc.indexOf('<', i);
    if (lt === -1) {
      checkText(doc.slice(i));
      if (doc.slice(i).trim()) fail('text after the root');
      break;
    }
    checkText(doc.slice(i, lt));
    if (!stack.length && doc.slice(i, lt).trim() && root) fail('text after the root');
    i = lt;
    if (doc.startsWith('<!--', i)) {
      const end = doc.indexOf('-->', i);
      if (end === -1) fail('unterminated comment');
      i = end + 3;
      continue;
    }
    if (doc.startsWith('</', i)) {
      const m = /^<\/([A-Za-z][\w:.-]*)\s*>/.exec(doc.slice(i));
      if (!m) fail('bad end tag');
      const name = m![1]!;
      if (stack.pop() !== name) fail(`</${name}> does not close the open element`);
      i += m![0].length;
      continue;
    }
    const m = /^<([A-Za-z][\w:.-]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(doc.slice(i));
    if (!m) fail('bad start tag');
    const name = m![1]!;
    const seen = new Set<string>();
    for (const a of m![2]!.matchAll(/([^\s=/>]+)\s*=\s*("([^"]*)"|'([^']*)')/g)) {
      if (seen.has(a[1]!)) fail(`duplicate attribute ${a[1]}`);
      seen.add(a[1]!);
      checkText(a[3] ?? a[4] ?? '');
    }
    if (!stack.length) {
      if (root) fail('second root element');
      root = name;
    }
    elements++;
    i += m![0].length;
    if (m![3]) continue;
    if (mode === 'html' && (name === 'script' || name === 'style')) {
      const end = doc.indexOf(`</${name}>`, i);
      if (end === -1) fail(`unterminated <${name}>`);
      i = end + name.length + 3;
      continue;
    }
    stack.push(name);
  }
  if (stack.length) fail(`unclosed <${stack.join('> <')}>`);
  if (!root) fail('no root element');
  return { root, elements };
}
