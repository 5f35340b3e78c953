// What a service, an endpoint or a token says is shown on a terminal as text, never obeyed: control characters
// (ESC sequences that retitle the window, recolour or move the cursor, CR that overwrites a line, C1 controls, Unicode
// bidi overrides that reorder what is read) are written as visible escapes, and binary bodies are not shown at all.

// Tab and newline stay; everything else below 0x20, DEL, C1 (0x80–0x9f) and the bidi embedding/override/isolate marks.
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

// One-line values (a claim, a summary, a fix) may not start a line of their own either: a token whose aud ends in
// "\n[ok] OK" would print a verdict idcall never gave.
const LINE_BREAKS = /[\n\r\u2028\u2029]/g;

/** escapeControls, and newlines too: for values that must stay on their one line. */
export function escapeLine(text: string): string {
  return escapeControls(text).replace(LINE_BREAKS, (c) => (c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** A body excerpt as terminal-safe text, or null when it is binary (a NUL byte, or not UTF-8). */
export function bodyText(bytes: Buffer): string | null {
  if (bytes.includes(0)) return null;
  try {
    // stream: true lets a multi-byte character cut by the excerpt's end pass as incomplete rather than invalid.
    return escapeControls(new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true }));
  } catch {
    return null;
  }
}
