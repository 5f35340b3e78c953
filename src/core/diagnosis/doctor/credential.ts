// The credential in use: loaded as call loads it, then what its type configures (impersonation, federation, quota
// project and universe).
import type { Context } from '../../context.ts';
import { GOOGLE_STS_URL, GOOGLE_UNIVERSE } from '../../endpoints.ts';
import { describeFileProblem, FileReadError, readBoundedFile, SUBJECT_TOKEN_MAX_BYTES } from '../../files.ts';
import { decodeJwtClaims } from '../../google/jwt.ts';
import type { DoctorOptions } from '../../options.ts';
import type { Check, StepStatus } from '../../report.ts';
import { runLoad, StepFailure, type Resolved } from '../../steps/steps.ts';
import { humanDuration } from '../../google/verify.ts';
import { check, type DoctorCheck } from './check.ts';

export const credentialFile: DoctorCheck = async (ctx, options, { discovery }) => {
  if (!discovery?.winner && options.source !== 'gcloud') return { checks: [] };
  try {
    const loaded = await runLoad(ctx, discovery, options);
    const { resolved } = loaded;
    const warnings = resolved.credential?.warnings ?? [];
    const row = check('credential', loaded.step.status, loaded.step.summary, { details: loaded.step.details, durationMs: loaded.step.durationMs, ...(warnings.length ? { fix: warnings.map((w) => w.fix).join('; ') } : {}) });
    return { checks: [row, ...(await configurationChecks(ctx, resolved, options))], found: { resolved, source: resolved.source, shadowed: resolved.shadowed } };
  } catch (err) {
    if (!(err instanceof StepFailure)) throw err;
    return { checks: [check('credential', 'fail', err.error.message, { fix: err.error.fix, code: err.error.code })] };
  }
};

/** Impersonation and federation specifics, quota project and universe domain. */
async function configurationChecks(ctx: Context, resolved: Resolved, options: DoctorOptions): Promise<Check[]> {
  const out: Check[] = [];
  const json = resolved.credential?.json ?? {};
  const type = resolved.credential?.type;
  if (type === 'impersonated_service_account' || options.impersonate) {
    const source = type === 'impersonated_service_account' ? (json.source_credentials as Record<string, unknown>) : json;
    const delegates = (options.delegates ?? (json.delegates as string[] | undefined) ?? []) as string[];
    const target = options.impersonate ?? resolved.credential?.principal;
    out.push(
      check('impersonation', 'ok', `impersonates ${target}`, {
        details: [`source: ${String(source?.type ?? resolved.source?.type)} ${String(source?.client_email ?? source?.account ?? '')}`.trim(), `delegates: ${delegates.length ? delegates.join(' → ') : '(none)'}`],
      }),
    );
  }
  if (type === 'external_account') out.push(await federationCheck(ctx, resolved, options));
  const quota = ctx.env.GOOGLE_CLOUD_QUOTA_PROJECT ?? (json.quota_project_id as string | undefined);
  const universe = (json.universe_domain as string | undefined) ?? GOOGLE_UNIVERSE;
  out.push(
    check('quota-universe', universe === GOOGLE_UNIVERSE ? 'ok' : 'warn', `quota project ${quota ?? '(none)'}${ctx.env.GOOGLE_CLOUD_QUOTA_PROJECT ? ' (GOOGLE_CLOUD_QUOTA_PROJECT)' : ''}, universe ${universe}`, {
      ...(universe !== GOOGLE_UNIVERSE ? { fix: `This credential belongs to the ${universe} universe: Cloud Run in googleapis.com will not accept its tokens.` } : {}),
    }),
  );
  return out;
}

async function federationCheck(ctx: Context, resolved: Resolved, options: DoctorOptions): Promise<Check> {
  const json = resolved.credential!.json;
  const cs = (json.credential_source ?? {}) as Record<string, any>;
  const kind = cs.file ? 'file' : cs.url ? 'url' : cs.executable ? 'executable' : cs.environment_id ? String(cs.environment_id) : cs.certificate ? 'certificate' : 'unknown';
  const details = [`audience ${String(json.audience)}`, `subject token type ${String(json.subject_token_type)}`, `subject token from ${kind}${cs.file ? ` ${cs.file}` : cs.url ? ` ${cs.url}` : ''}`, `STS ${String(options.endpoints.sts ?? json.token_url ?? GOOGLE_STS_URL)}`, `impersonates ${resolved.credential?.principal ?? '(nobody: federation alone cannot mint ID tokens)'}`];
  let status: StepStatus = 'ok';
  let summary = `workload identity federation via ${kind}`;
  let fix = '';
  if (cs.file) {
    try {
      const text = (await readBoundedFile(cs.file, SUBJECT_TOKEN_MAX_BYTES)).bytes.toString('utf8').trim();
      const token = cs.format?.type === 'json' ? JSON.parse(text)[cs.format.subject_token_field_name] : text;
      const exp = typeof token === 'string' ? decodeJwtClaims(token)?.exp : undefined;
      if (typeof exp === 'number' && exp * 1000 < ctx.now()) {
        status = 'fail';
        summary = `the subject token in ${cs.file} expired ${humanDuration(ctx.now() / 1000 - exp)} ago`;
        fix = 'Whatever writes the subject token file (a CI step, a sidecar) must refresh it before it expires.';
      } else summary += `; subject token readable${typeof exp === 'number' ? `, expires in ${humanDuration(exp - ctx.now() / 1000)}` : ''}`;
    } catch (err) {
      status = 'fail';
      summary = err instanceof FileReadError ? `the subject token file ${cs.file} ${describeFileProblem(err.problem)}` : `the subject token file ${cs.file} cannot be parsed`;
      fix = 'Check credential_source.file in the configuration and that the process writing it runs.';
    }
  }
  if (cs.executable && ctx.env.GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES !== '1') {
    status = 'fail';
    summary = 'the subject token comes from an executable, but GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES is not 1';
    fix = 'export GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 (after reviewing the command in the configuration).';
  }
  if (!json.service_account_impersonation_url && !options.impersonate) {
    status = status === 'fail' ? status : 'warn';
    fix ||= 'Add service-account impersonation (gcloud iam workload-identity-pools create-cred-config … --service-account=SA) to mint ID tokens.';
  }
  return check('federation', status, summary, { details, fix, ...(status === 'fail' ? { code: 'FEDERATION_FAILED' as const } : {}) });
}
