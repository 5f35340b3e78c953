// docs/commands.md is generated from --help: it must not drift from the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { commandsDoc } from '../../scripts/commands-doc.ts';

test('docs/commands.md matches the help text (regenerate: node scripts/commands-doc.ts)', async () => {
  const current = await readFile(new URL('../../docs/commands.md', import.meta.url), 'utf8');
  assert.equal(current, await commandsDoc());
});

test('docs/troubleshooting.md has a section for every cause code', async () => {
  const { CAUSE_CODES } = await import('../../src/core/errors.ts');
  const doc = await readFile(new URL('../../docs/troubleshooting.md', import.meta.url), 'utf8');
  const sections = new Set([...doc.matchAll(/^## ([A-Z_]+)$/gm)].map((m) => m[1]));
  assert.deepEqual(CAUSE_CODES.filter((code) => !sections.has(code)), []);
});
