// Human rendering of `idcall doctor`: one row per check, its fix underneath, through the same table as call's steps.
import type { DoctorReport } from '../core/report.ts';
import { redact } from '../core/redact.ts';
import type { Style } from './style.ts';
import { renderRows, renderVerdict } from './table.ts';

export function renderDoctor(report: DoctorReport, style: Style): string {
  const body = renderRows(report.checks, style, { verbose: true, head: 'Check', blankZeroTimes: true });
  return redact(`idcall doctor\n${body}\n\n${renderVerdict(report.verdict, style)}\n`);
}
