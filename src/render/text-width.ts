// The terminal width of a string, for yargs' help layout (the bundle puts this in place of `string-width`).
// string-width builds an Intl.Segmenter and Unicode-property regular expressions in its module body: about
// 20 ms, a tenth of an `idcall token` run, spent before any help is shown. Every help text idcall prints is
// ASCII, which this answers exactly at once; anything else gets the grapheme-aware answer, built on first use.
import { stripVTControlCharacters } from 'node:util';

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

let graphemes: Intl.Segmenter | undefined;
let zeroWidth: RegExp | undefined;
let wide: RegExp | undefined;

export default function textWidth(text: string): number {
  if (typeof text !== 'string' || text.length === 0) return 0;
  if (PRINTABLE_ASCII.test(text)) return text.length;
  const plain = text.includes('\x1b') ? stripVTControlCharacters(text) : text;
  if (PRINTABLE_ASCII.test(plain)) return plain.length;
  graphemes ??= new Intl.Segmenter();
  zeroWidth ??= /^[\p{Default_Ignorable_Code_Point}\p{Control}\p{Format}\p{Mark}\p{Surrogate}]+$/u;
  // East Asian Wide and Fullwidth scripts, and pictographs shown as emoji.
  wide ??= /[\p{Extended_Pictographic}\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{20000}-\u{3fffd}]/u;
  let width = 0;
  for (const { segment } of graphemes.segment(plain)) {
    if (zeroWidth.test(segment)) continue;
    // Text-presentation pictographs (✔, ©) are one column unless followed by the emoji selector.
    const emojiByDefault = wide.test(segment) && (!/^\p{Extended_Pictographic}$/u.test(segment) || /\p{Emoji_Presentation}|\ufe0f/u.test(segment));
    width += emojiByDefault ? 2 : 1;
  }
  return width;
}
