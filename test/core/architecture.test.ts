// The rules the layout promises (CONTRIBUTING.md, "Where things live"), checked on the source itself so that a change
// that breaks one fails here, not in review.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

const SRC = new URL('../../src/', import.meta.url).pathname;

async function sources(dir = SRC): Promise<{ path: string; text: string }[]> {
  const out: { path: string; text: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(full)));
    else if (entry.name.endsWith('.ts')) out.push({ path: relative(SRC, full), text: await readFile(full, 'utf8') });
  }
  return out;
}

const files = await sources();
const core = files.filter((f) => f.path.startsWith('core/'));
const lines = (f: { text: string }) => f.text.split('\n');

test('architecture: the core imports nothing above it (cli, render, proxy, emulator, lib)', () => {
  const upward = core.flatMap((f) => lines(f).filter((l) => /^\s*(import|export)\b.*from '\.\.\/(cli|render|proxy|emulator|lib|demo)\//.test(l)).map((l) => `${f.path}: ${l.trim()}`));
  assert.deepEqual(upward, []);
});

test('architecture: each layer of the core imports only the layers before it (src/core/README.md)', () => {
  const allowed: Record<string, string[]> = { '': ['net'], net: [], google: ['net'], steps: ['net', 'google'], diagnosis: ['net', 'google', 'steps'] };
  const layerOf = (path: string) => /^core\/(net|google|steps|diagnosis)\//.exec(path)?.[1] ?? '';
  const wrong = core.flatMap((f) => {
    const layer = layerOf(f.path);
    return [...f.text.matchAll(/from '(\.[^']+)'/g)]
      .map((m) => relative(SRC, join(SRC, f.path, '..', m[1]!)))
      .filter((target) => target.startsWith('core/') && layerOf(target) !== layer && layerOf(target) !== '' && !allowed[layer]!.includes(layerOf(target)))
      .map((target) => `${f.path} → ${target}`);
  });
  assert.deepEqual(wrong, []);
});

test('architecture: the core never prints; commands return reports that renderers print', () => {
  const printing = core.flatMap((f) => lines(f).filter((l) => /\b(console\.(log|error|warn|info)|process\.(stdout|stderr)\.write)\b/.test(l) && !/^\s*(\/\/|\*)/.test(l)).map((l) => `${f.path}: ${l.trim()}`));
  assert.deepEqual(printing, []);
});

test('architecture: code branches on cause codes and typed fields, never on the wording of idcall\'s own messages', () => {
  // Our messages, fixes, summaries and finding texts are for people; Google's own error texts (g.message, the wire)
  // are data and may be matched.
  const OWN_TEXT = /\.(summary|text|fix|note|details?)\??\.(startsWith|endsWith|includes|match|replace)\(|\.test\(\w*\??\.(summary|fix|note|text)\)|\b(err|error|e)\??\.message\??\.(startsWith|endsWith|includes|match)\(|\.test\((err|error|e)\??\.message\)/;
  const hits = files.flatMap((f) => lines(f).filter((l) => OWN_TEXT.test(l) && !/^\s*(\/\/|\*)/.test(l)).map((l) => `${f.path}: ${l.trim()}`));
  assert.deepEqual(hits, []);
});

test('architecture: the core reads time only from the injected clocks (ctx.now, ctx.monotonic)', () => {
  const clocks = core.filter((f) => f.path !== 'core/context.ts').flatMap((f) => lines(f).filter((l) => /\b(Date\.now|performance\.now|new Date\(\))/.test(l) && !/^\s*(\/\/|\*)/.test(l)).map((l) => `${f.path}: ${l.trim()}`));
  assert.deepEqual(clocks, []);
});

test('architecture: Google\'s endpoint URLs are written once, in core/endpoints.ts', () => {
  const urls = files
    .filter((f) => f.path !== 'core/endpoints.ts' && !f.path.startsWith('emulator/') && !f.path.startsWith('demo/'))
    .flatMap((f) => lines(f).filter((l) => /'https:\/\/(oauth2|iamcredentials|sts)\.googleapis\.com[^']*'|'https:\/\/www\.googleapis\.com\/oauth2[^']*'/.test(l) && !/describe:|example\(|^\s*(\/\/|\*)/.test(l)).map((l) => `${f.path}: ${l.trim()}`));
  assert.deepEqual(urls, []);
});

test('architecture: a source file over 300 lines says why in its opening comment', () => {
  const long = files.filter((f) => lines(f).length > 300 && !/Longer than 300 lines because/.test(lines(f).slice(0, 8).join('\n'))).map((f) => `${f.path} (${lines(f).length} lines)`);
  assert.deepEqual(long, []);
});
