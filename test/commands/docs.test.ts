// docs/commands.md is generated from --help: it must not drift from the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { commandsDoc } from '../../scripts/commands-doc.ts';

test('docs/commands.md matches the help text (regenerate: node scripts/commands-doc.ts)', async () => {
  const current = await readFile(new URL('../../docs/commands.md', import.meta.url), 'utf8');
  assert.equal(current, await commandsDoc());
});
