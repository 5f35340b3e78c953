// Human rendering of reports: a step table on a terminal, stable plain lines when piped.
import Table from 'cli-table3';
import type { CallReport, Step, Verdict } from '../core/report.ts';
import { redact } from '../core/redact.ts';
import { markDetail, paint, statusMark, type Style } from './style.ts';
import { bodyText, escapeControls } from './terminal-safe.ts';

export function renderSteps(steps: Step[], style: Style): string {
  if (!style.symbols) {
    return steps
      .map((s) => [`${statusMark(style, s.status)} ${s.id} ${s.durationMs}ms ${escapeControls(s.summary)}`, ...s.details.map((d) => `    ${escapeControls(d)}`)].join('\n'))
      .join('\n');
  }
  const table = new Table({
    head: ['', 'Step', 'Time', 'Result'],
    style: { head: style.color ? ['bold'] : [], border: style.color ? ['grey'] : [] },
    colAligns: ['left', 'left', 'right', 'left'],
    wordWrap: true,
    colWidths: [3, 10, 9, Math.max(40, Math.min(100, style.columns - 28))],
  });
  for (const s of steps) {
    const result = [escapeControls(s.summary), ...s.details.map((d) => paint(style, 'dim', markDetail(style, escapeControls(d))))].join('\n');
    table.push([statusMark(style, s.status), s.id, s.status === 'skipped' ? '' : `${s.durationMs} ms`, result]);
  }
  return table.toString();
}

export function renderVerdict(verdict: Verdict, style: Style): string {
  const good = verdict.code === 'OK';
  const head = `${good ? statusMark(style, 'ok') : statusMark(style, 'fail')} ${paint(style, 'bold', verdict.code)}  ${escapeControls(verdict.summary)}`;
  return verdict.fix ? `${head}\n  ${paint(style, 'bold', 'Fix:')} ${escapeControls(verdict.fix)}` : head;
}

export function renderCallReport(report: CallReport, style: Style, body: { excerpt: Buffer | null; note?: string }): string {
  const lines = [`idcall call ${escapeControls(report.url)}${report.audience ? `  (audience ${escapeControls(report.audience)})` : ''}`, renderSteps(report.steps, style), '', renderVerdict(report.verdict, style)];
  if (report.response && body.excerpt !== null) {
    const shown = body.excerpt.length;
    const text = bodyText(body.excerpt);
    if (text === null) lines.push('', paint(style, 'dim', `Response body: binary, ${report.response.bodyBytes} bytes (use -o FILE to save it).`));
    else lines.push('', paint(style, 'dim', `Response body (${report.response.bodyBytes} bytes${shown < report.response.bodyBytes ? `, first ${shown} shown; --body full for all` : ''}):`), text);
  } else if (body.note) lines.push('', paint(style, 'dim', body.note));
  return redact(lines.join('\n')) + '\n';
}
