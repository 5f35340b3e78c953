// Human rendering of `idcall doctor`: one row per check, its fix underneath.
import Table from 'cli-table3';
import type { DoctorReport } from '../core/doctor.ts';
import { redact } from '../core/redact.ts';
import { breakLongWords, fitColumns, markDetail, paint, statusMark, type Style } from './style.ts';
import { renderVerdict } from './table.ts';

export function renderDoctor(report: DoctorReport, style: Style): string {
  const rowText = (c: DoctorReport['checks'][number]) =>
    [c.summary, ...c.details.map((d) => paint(style, 'dim', markDetail(style, d))), ...(c.fix ? [`${paint(style, 'bold', 'Fix:')} ${c.fix}`] : [])].join('\n');
  let body: string;
  if (!style.symbols) {
    body = report.checks
      .map((c) => [`${statusMark(style, c.status)} ${c.id} ${c.durationMs}ms ${c.summary}`, ...c.details.map((d) => `    ${d}`), ...(c.fix ? [`    Fix: ${c.fix}`] : [])].join('\n'))
      .join('\n');
  } else {
    const idWidth = Math.min(36, Math.max(...report.checks.map((c) => c.id.length))) + 2;
    const widths = fitColumns(style.columns, idWidth);
    const table = new Table({ head: ['', 'Check', 'Time', 'Result'], colAligns: ['left', 'left', 'right', 'left'], wordWrap: true, colWidths: widths, style: { head: style.color ? ['bold'] : [], border: [] } });
    for (const c of report.checks) table.push([statusMark(style, c.status), breakLongWords(c.id, widths[1] - 2), c.durationMs ? `${c.durationMs} ms` : '', breakLongWords(rowText(c), widths[3] - 2)]);
    body = table.toString();
  }
  return redact(`idcall doctor\n${body}\n\n${renderVerdict(report.verdict, style)}\n`);
}
