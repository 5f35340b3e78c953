// `idcall doctor`: the whole credential picture of this machine, without calling any target. It runs the same
// discover/load/mint steps as `call`; what it adds is the checks around them, one function each, in DOCTOR_CHECKS.
import type { Context } from '../../context.ts';
import { discover } from '../../google/discover.ts';
import { asIdcallError, IdcallError } from '../../errors.ts';
import { readGcloudState } from '../../google/gcloud.ts';
import type { DoctorOptions } from '../../options.ts';
import { conclude, REPORT_VERSION, type Check, type DoctorReport, type Verdict } from '../../report.ts';
import { adcSources } from './adc.ts';
import { check, type DoctorCheck, type Found } from './check.ts';
import { credentialFile } from './credential.ts';
import { environment } from './environment.ts';
import { gcloudCli } from './gcloud.ts';
import { accessToken, idToken } from './tokens.ts';

/** In report order; each sees what the ones before it found. */
const DOCTOR_CHECKS: DoctorCheck[] = [adcSources, gcloudCli, credentialFile, accessToken, idToken, environment];

export async function doctor(ctx: Context, options: DoctorOptions): Promise<DoctorReport> {
  const report: DoctorReport = { version: REPORT_VERSION, command: 'doctor', ok: false, verdict: { code: 'OK', summary: '', fix: '' }, source: null, shadowed: [], checks: [], exitCode: 0 };
  // Independent probes run together: ADC discovery (with the metadata probe) and reading gcloud's own state.
  const [discovered, gcloud] = await Promise.all([
    options.source === 'gcloud'
      ? Promise.resolve(null)
      : discover(ctx, { ...(options.credentials !== undefined ? { credentialsFlag: options.credentials } : {}), metadataTimeoutMs: options.metadataTimeoutMs, probeMetadata: 'always' }).catch((err: unknown) => asIdcallError(err, 'USAGE_ERROR')),
    readGcloudState(ctx),
  ]);
  if (discovered instanceof IdcallError) {
    report.checks.push(check('adc', 'fail', discovered.message, { fix: discovered.fix, code: discovered.code }));
    return conclude(report, verdictOf(report.checks, null), discovered.code === 'USAGE_ERROR' ? undefined : 'credential');
  }
  let found: Found = { discovery: discovered, gcloud, resolved: null, source: null, shadowed: [], exchanges: [] };
  for (const run of DOCTOR_CHECKS) {
    const result = await run(ctx, options, found);
    report.checks.push(...result.checks);
    found = { ...found, ...result.found };
  }
  report.source = found.source;
  report.shadowed = found.shadowed;
  const verdict = verdictOf(report.checks, found.source);
  // No source and nothing failed (--source gcloud without gcloud): the verdict is a failure row of its own.
  if (!found.source && !report.checks.some((c) => c.status === 'fail')) report.checks.push(check('verdict', 'fail', verdict.summary, { fix: verdict.fix, code: 'NO_CREDENTIALS' }));
  // Doctor never calls a target: every failure it finds is on the credential side.
  return conclude(report, verdict, verdict.code === 'USAGE_ERROR' ? undefined : 'credential');
}

function verdictOf(checks: Check[], source: DoctorReport['source']): Verdict {
  const failed = checks.find((c) => c.status === 'fail');
  if (failed) return { code: failed.code ?? 'NO_CREDENTIALS', summary: failed.summary, fix: failed.fix };
  if (!source) return { code: 'NO_CREDENTIALS', summary: 'No Application Default Credentials found.', fix: 'Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS.' };
  const warnings = checks.filter((c) => c.status === 'warn').length;
  return { code: 'OK', summary: `Credentials work (${source.type}${source.principal ? `, ${source.principal}` : ''})${warnings ? `; ${warnings} warning${warnings > 1 ? 's' : ''} above` : ''}.`, fix: '' };
}
