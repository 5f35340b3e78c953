// The width yargs lays help out with in the bundle: exact for ASCII, grapheme-aware otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import textWidth from '../../src/render/text-width.ts';

const cases: [string, string, number][] = [
  ['empty', '', 0],
  ['ASCII', 'idcall token --audience', 23],
  ['ANSI colour codes take no columns', '\x1b[31mfail\x1b[39m', 4],
  ['CJK is two columns each', '日本語', 6],
  ['full-width forms', 'ＡＢ', 4],
  ['a combining accent joins its letter', 'e\u0301', 1],
  ['emoji shown as emoji', '👍', 2],
  ['a ZWJ family is one emoji', '👨‍👩‍👧', 2],
  ['text-style symbols are one column', '✔ ✖ → …', 7],
  ['a symbol with the emoji selector is two', '✔\ufe0f', 2],
  ['accented Latin', 'café', 4],
  ['zero-width space', 'a\u200bb', 2],
];

for (const [name, text, width] of cases) {
  test(`text width: ${name}`, () => assert.equal(textWidth(text), width));
}
