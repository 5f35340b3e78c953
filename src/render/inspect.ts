// Human rendering of `idcall inspect`.
import type { InspectReport } from '../core/report.ts';
import { redact } from '../core/redact.ts';
import { paint, statusMark, type Style } from './style.ts';
import { renderVerdict } from './table.ts';
import { escapeLine } from './terminal-safe.ts';

export function renderInspect(report: InspectReport, style: Style): string {
  const lines: string[] = [];
  // Everything below comes from the token, which anyone can write: shown as text on its own line, never obeyed.
  const v = (value: unknown) => escapeLine(typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value)));
  lines.push(`${paint(style, 'bold', report.kind === 'id_token' ? 'ID token' : 'OAuth access token')}${report.audience ? `  checked against ${v(report.audience)}` : ''}`);
  if (Object.keys(report.header).length) lines.push(`  header   alg=${v(report.header.alg)} kid=${v(report.header.kid ?? '(none)')}${report.header.typ ? ` typ=${v(report.header.typ)}` : ''}`);
  for (const key of ['iss', 'aud', 'azp', 'sub', 'email', 'email_verified', 'hd']) {
    if (report.claims[key] !== undefined) lines.push(`  ${key.padEnd(8)} ${v(report.claims[key])}`);
  }
  for (const [key, text] of Object.entries(report.times)) lines.push(`  ${key.padEnd(8)} ${v(text)}`);
  const google = report.claims.google as { compute_engine?: Record<string, unknown> } | undefined;
  if (google?.compute_engine) lines.push(`  google   compute_engine instance ${v(google.compute_engine.instance_name)} in ${v(google.compute_engine.project_id)}`);
  lines.push('');
  for (const f of report.findings) lines.push(`${statusMark(style, f.status)} ${v(f.text)}`);
  lines.push('', renderVerdict(report.verdict, style));
  return redact(lines.join('\n')) + '\n';
}
