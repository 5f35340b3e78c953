// Human rendering of `idcall inspect`.
import type { InspectReport } from '../core/report.ts';
import { redact } from '../core/redact.ts';
import { paint, statusMark, type Style } from './style.ts';
import { renderVerdict } from './table.ts';

export function renderInspect(report: InspectReport, style: Style): string {
  const lines: string[] = [];
  lines.push(`${paint(style, 'bold', report.kind === 'id_token' ? 'ID token' : 'OAuth access token')}${report.audience ? `  checked against ${report.audience}` : ''}`);
  if (Object.keys(report.header).length) lines.push(`  header   alg=${String(report.header.alg)} kid=${String(report.header.kid ?? '(none)')}${report.header.typ ? ` typ=${String(report.header.typ)}` : ''}`);
  for (const key of ['iss', 'aud', 'azp', 'sub', 'email', 'email_verified', 'hd']) {
    if (report.claims[key] !== undefined) lines.push(`  ${key.padEnd(8)} ${String(report.claims[key])}`);
  }
  for (const [key, text] of Object.entries(report.times)) lines.push(`  ${key.padEnd(8)} ${text}`);
  const google = report.claims.google as { compute_engine?: Record<string, unknown> } | undefined;
  if (google?.compute_engine) lines.push(`  google   compute_engine instance ${String(google.compute_engine.instance_name)} in ${String(google.compute_engine.project_id)}`);
  lines.push('');
  for (const f of report.findings) lines.push(`${statusMark(style, f.status)} ${f.text}`);
  lines.push('', renderVerdict(report.verdict, style));
  return redact(lines.join('\n')) + '\n';
}
