// Human rendering of reports: a step table on a terminal, stable plain lines when piped.
import Table from 'cli-table3';
import type { CallReport, Step, Verdict } from '../core/report.ts';
import { redact } from '../core/redact.ts';
import { breakLongWords, fitColumns, markDetail, paint, statusMark, type Style } from './style.ts';
import { bodyText, escapeControls } from './terminal-safe.ts';

/**
 * One line per step (status, step, time, the one fact that matters), plus any warning or failure found along the way;
 * `verbose` adds every detail (requests, candidates, claims, headers).
 */
export function renderSteps(steps: Step[], style: Style, verbose = true): string {
  const detailsOf = (s: Step) => (verbose ? s.details : s.details.filter((d) => /^\[(warn|fail)\] /.test(d) && d.slice(d.indexOf(' ') + 1) !== s.summary));
  if (!style.symbols) {
    return steps
      .map((s) => [`${statusMark(style, s.status)} ${s.id} ${s.durationMs}ms ${escapeControls(s.summary)}`, ...detailsOf(s).map((d) => `    ${escapeControls(d)}`)].join('\n'))
      .join('\n');
  }
  const widths = fitColumns(style.columns, 10);
  const table = new Table({
    head: ['', 'Step', 'Time', 'Result'],
    style: { head: style.color ? ['bold'] : [], border: style.color ? ['grey'] : [] },
    colAligns: ['left', 'left', 'right', 'left'],
    wordWrap: true,
    colWidths: widths,
  });
  for (const s of steps) {
    const result = [escapeControls(s.summary), ...detailsOf(s).map((d) => paint(style, 'dim', markDetail(style, escapeControls(d))))].join('\n');
    // Long emails and paths are split across lines rather than cut with "…" (2: the cell's padding).
    table.push([statusMark(style, s.status), s.id, s.status === 'skipped' ? '' : `${s.durationMs} ms`, breakLongWords(result, widths[3] - 2)]);
  }
  return table.toString();
}

export function renderVerdict(verdict: Verdict, style: Style): string {
  const good = verdict.code === 'OK';
  const head = `${good ? statusMark(style, 'ok') : statusMark(style, 'fail')} ${paint(style, 'bold', verdict.code)}  ${escapeControls(verdict.summary)}`;
  return verdict.fix ? `${head}\n  ${paint(style, 'bold', 'Fix:')} ${escapeControls(verdict.fix)}` : head;
}

export function renderCallReport(report: CallReport, style: Style, body: { excerpt: Buffer | null; note?: string }, verbose = false): string {
  const lines = [`idcall call ${escapeControls(report.url)}${report.audience ? `  (audience ${escapeControls(report.audience)})` : ''}`, renderSteps(report.steps, style, verbose), '', renderVerdict(report.verdict, style)];
  if (report.response && body.excerpt !== null) {
    const shown = body.excerpt.length;
    const text = bodyText(body.excerpt);
    if (text === null) lines.push('', paint(style, 'dim', `Response body: binary, ${report.response.bodyBytes} bytes (use -o FILE to save it).`));
    else lines.push('', paint(style, 'dim', `Response body (${report.response.bodyBytes} bytes${shown < report.response.bodyBytes ? `, first ${shown} shown; --body full for all` : ''}):`), text);
  } else if (body.note) lines.push('', paint(style, 'dim', body.note));
  return redact(lines.join('\n')) + '\n';
}
