// Terminal styling: colours and symbols only on a TTY, and never when NO_COLOR or --no-color says so.

export interface Style {
  color: boolean;
  symbols: boolean;
  /** Width of the terminal the output goes to (tables wrap to it). */
  columns: number;
}

/** `colorFlag`: --color (true) forces colour even into a pipe, --no-color (false) turns it off, absent decides by the terminal. */
export function detectStyle(stream: { isTTY?: boolean; columns?: number }, env: Record<string, string | undefined>, colorFlag?: boolean): Style {
  const tty = Boolean(stream.isTTY);
  const color = colorFlag ?? (tty && env.NO_COLOR === undefined && env.TERM !== 'dumb');
  return { color, symbols: tty, columns: stream.columns ?? 120 };
}

/**
 * Column widths for a 4-column table (mark, name, time, result) that fits `columns`: the result column takes what is
 * left (at most 100), the name column gives way first on a narrow terminal. Borders take 5 characters.
 */
export function fitColumns(columns: number, nameWidth: number): [number, number, number, number] {
  const name = Math.max(6, Math.min(nameWidth, Math.floor((columns - 17) / 3)));
  const result = Math.max(10, Math.min(100, columns - 3 - name - 9 - 5));
  return [3, name, 9, result];
}

/**
 * Split words longer than `width` (emails, paths, URLs) across lines: the table wraps prose at spaces, and would cut
 * a longer word with "…". Words carrying colour codes are left alone (their width is not their length).
 */
export function breakLongWords(text: string, width: number): string {
  if (width < 2) return text;
  return text
    .split('\n')
    .map((line) => line.replace(/\S+/g, (word) => ([...word].length <= width || word.includes('\u001b') ? word : ([...word].join('').match(new RegExp(`.{1,${width}}`, 'gu')) ?? [word]).join('\n'))))
    .join('\n');
}

const codes = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

export function paint(style: Style, name: keyof typeof codes, text: string): string {
  return style.color ? `\u001b[${codes[name]}m${text}\u001b[0m` : text;
}

export function statusMark(style: Style, status: 'ok' | 'warn' | 'fail' | 'skipped'): string {
  if (!style.symbols) return { ok: '[ok]', warn: '[warn]', fail: '[fail]', skipped: '[skip]' }[status];
  const mark = { ok: '✔', warn: '⚠', fail: '✖', skipped: '·' }[status];
  return paint(style, status === 'ok' ? 'green' : status === 'warn' ? 'yellow' : status === 'fail' ? 'red' : 'dim', mark);
}

/** A detail line the core marked `[ok] `, `[warn] ` or `[fail] `: the same symbol as its step on a terminal, the word when piped. */
export function markDetail(style: Style, line: string): string {
  const marked = /^\[(ok|warn|fail)\] /.exec(line);
  if (!marked || !style.symbols) return line;
  return `${statusMark(style, marked[1] as 'ok' | 'warn' | 'fail')} ${line.slice(marked[0].length)}`;
}
