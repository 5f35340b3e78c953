// Human rendering of reports: a step table on a terminal, stable plain lines when piped.
import Table from 'cli-table3';
import type { CallReport, Step, Verdict } from '../core/report.ts';
import { redact } from '../core/redact.ts';
import { breakLongWords, fitColumns, markDetail, paint, statusMark, type Style } from './style.ts';
import { bodyText, escapeControls, escapeLine } from './terminal-safe.ts';

/** A row of a step table: a call or token step, or a doctor check (which adds the fix for what it found). */
export interface Row {
  id: string;
  status: Step['status'];
  durationMs: number;
  summary: string;
  details: string[];
  fix?: string;
}

export interface RowsOptions {
  /** Every detail (requests, candidates, claims, headers); otherwise only warnings and failures found along the way. */
  verbose: boolean;
  /** The first column's heading: Step or Check. */
  head: string;
  /** Leave the time empty for a row that took no measurable time (doctor's checks that only read state). */
  blankZeroTimes?: boolean;
}

/**
 * One line per row (status, id, time, the one fact that matters), its details and its fix underneath: a table on a
 * terminal, stable plain lines when piped. Call, token and doctor all print through here.
 */
export function renderRows(rows: Row[], style: Style, options: RowsOptions): string {
  const detailsOf = (r: Row) => (options.verbose ? r.details : r.details.filter((d) => /^\[(warn|fail)\] /.test(d) && d.slice(d.indexOf(' ') + 1) !== r.summary));
  if (!style.symbols) {
    return rows
      .map((r) => [`${statusMark(style, r.status)} ${r.id} ${r.durationMs}ms ${escapeLine(r.summary)}`, ...detailsOf(r).map((d) => `    ${escapeLine(d)}`), ...(r.fix ? [`    Fix: ${escapeLine(r.fix)}`] : [])].join('\n'))
      .join('\n');
  }
  const idWidth = Math.min(36, Math.max(8, ...rows.map((r) => r.id.length))) + 2;
  const widths = fitColumns(style.columns, idWidth);
  const table = new Table({
    head: ['', options.head, 'Time', 'Result'],
    style: { head: style.color ? ['bold'] : [], border: style.color ? ['grey'] : [] },
    colAligns: ['left', 'left', 'right', 'left'],
    wordWrap: true,
    colWidths: widths,
  });
  for (const r of rows) {
    const result = [escapeLine(r.summary), ...detailsOf(r).map((d) => paint(style, 'dim', markDetail(style, escapeLine(d)))), ...(r.fix ? [`${paint(style, 'bold', 'Fix:')} ${escapeLine(r.fix)}`] : [])].join('\n');
    const time = r.status === 'skipped' || (options.blankZeroTimes && !r.durationMs) ? '' : `${r.durationMs} ms`;
    // Long emails and paths are split across lines rather than cut with "…" (2: the cell's padding).
    table.push([statusMark(style, r.status), breakLongWords(r.id, widths[1] - 2), time, breakLongWords(result, widths[3] - 2)]);
  }
  return table.toString();
}

export function renderSteps(steps: Step[], style: Style, verbose = true): string {
  return renderRows(steps, style, { verbose, head: 'Step' });
}

export function renderVerdict(verdict: Verdict, style: Style): string {
  const good = verdict.code === 'OK';
  const head = `${good ? statusMark(style, 'ok') : statusMark(style, 'fail')} ${paint(style, 'bold', verdict.code)}  ${escapeLine(verdict.summary)}`;
  return verdict.fix ? `${head}\n  ${paint(style, 'bold', 'Fix:')} ${escapeLine(verdict.fix)}` : head;
}

export function renderCallReport(report: CallReport, style: Style, body: { excerpt: Buffer | null; note?: string }, verbose = false): string {
  const lines = [`idcall call ${escapeLine(report.url)}${report.audience ? `  (audience ${escapeLine(report.audience)})` : ''}`, renderSteps(report.steps, style, verbose), '', renderVerdict(report.verdict, style)];
  if (report.response && body.excerpt !== null) {
    const shown = body.excerpt.length;
    // The bytes say whether it is text; what is shown is the core's excerpt, redacted before it was cut.
    const text = bodyText(body.excerpt) === null ? null : escapeControls(report.response.bodyExcerpt);
    if (text === null) lines.push('', paint(style, 'dim', `Response body: binary, ${report.response.bodyBytes} bytes (use -o FILE to save it).`));
    else lines.push('', paint(style, 'dim', `Response body (${report.response.bodyBytes} bytes${shown < report.response.bodyBytes ? `, first ${shown} shown; --body full for all` : ''}):`), text);
  } else if (body.note) lines.push('', paint(style, 'dim', body.note));
  return redact(lines.join('\n')) + '\n';
}
