// `idcall doctor`: the whole credential picture of this machine, without calling any target.
// It runs the same discover/load/mint steps as `call`; what it adds is the checks around them.
import type { Context } from './context.ts';
import { asIdcallError, exitCodeFor, IdcallError, type CauseCode } from './errors.ts';
import { describeFileProblem, FileReadError, isDirectory, isRegularFile, readBoundedFile, SUBJECT_TOKEN_MAX_BYTES } from './files.ts';
import { readGcloudCredentialAccounts, readGcloudSession, readGcloudState } from './gcloud.ts';
import { decodeJwtClaims } from './jwt.ts';
import { mintAccessToken } from './mint.ts';
import { REPORT_VERSION, toRequestRecords, type RequestRecord, type Shadowed, type Source, type StepStatus, type Verdict } from './report.ts';
import { runLoad, runMint, StepFailure, type Resolved } from './steps.ts';
import type { DoctorOptions } from './options.ts';
import { discover, type Discovery } from './discover.ts';
import { GCLOUD_CLIENT_ID, GOOGLE_STS_URL, GOOGLE_TOKEN_URL, GOOGLE_UNIVERSE, METADATA_URLS } from './endpoints.ts';
import type { Exchange } from './transport.ts';
import type { Candidate } from './discover.ts';
import { displayProxy, exemptFromProxy, proxyConfigured, proxyFor } from './proxy-env.ts';
import { userTokenFix } from './verdict.ts';
import { clockSkewSeconds, describeSkew, humanDuration, SKEW_TOLERANCE_S } from './verify.ts';
import { normaliseAudience } from './audience.ts';

export interface Check {
  id: string;
  status: StepStatus;
  durationMs: number;
  summary: string;
  details: string[];
  fix: string;
  code?: CauseCode;
  requests: RequestRecord[];
}

export interface DoctorReport {
  version: typeof REPORT_VERSION;
  command: 'doctor';
  ok: boolean;
  verdict: Verdict;
  source: Source | null;
  shadowed: Shadowed[];
  checks: Check[];
  exitCode: number;
}


const check = (id: string, status: StepStatus, summary: string, more: Partial<Omit<Check, 'id' | 'status' | 'summary'>> = {}): Check => ({
  id,
  status,
  summary,
  durationMs: more.durationMs ?? 0,
  details: more.details ?? [],
  fix: more.fix ?? '',
  ...(more.code ? { code: more.code } : {}),
  requests: more.requests ?? [],
});

export async function doctor(ctx: Context, options: DoctorOptions): Promise<DoctorReport> {
  const checks: Check[] = [];
  const exchanges: Exchange[] = [];
  const report: DoctorReport = { version: REPORT_VERSION, command: 'doctor', ok: false, verdict: { code: 'OK', summary: '', fix: '' }, source: null, shadowed: [], checks, exitCode: 0 };

  // Independent probes run together: ADC discovery (with the metadata probe) and reading gcloud's own state.
  const [discovered, gcloud] = await Promise.all([
    options.source === 'gcloud'
      ? Promise.resolve(null)
      : discover(ctx, { ...(options.credentials !== undefined ? { credentialsFlag: options.credentials } : {}), metadataTimeoutMs: options.metadataTimeoutMs, probeMetadata: 'always' }).catch((err: unknown) => asIdcallError(err, 'USAGE_ERROR')),
    readGcloudState(ctx),
  ]);
  if (discovered instanceof IdcallError) {
    checks.push(check('adc', 'fail', discovered.message, { fix: discovered.fix, code: discovered.code }));
    return finish(report);
  }
  const discovery: Discovery | null = discovered;
  const candidates = discovery?.candidates ?? [];
  if (!discovery) {
    checks.push(check('adc', 'ok', 'ADC discovery skipped: --source gcloud uses the gcloud CLI\'s own credentials'));
  } else {
    const winnerMissing = discovery.winner?.origin !== 'metadata_server' && discovery.winner?.path ? !(await isRegularFile(discovery.winner.path)) : false;
    candidates.forEach((c, i) => {
      const winner = c === discovery.winner;
      const label = c.origin === 'metadata_server' ? `metadata server ${c.path} (${c.via})` : `${c.via} ${c.path}`;
      // ADC stops at the first source named, even when its file is missing: Google's libraries fail there too.
      const state = winner ? (winnerMissing ? 'in use, but the file does not exist (ADC fails here; it does not fall back to the next source)' : 'in use') : c.present ? 'present, not used (a source above comes first)' : (c.note ?? 'absent');
      // A present source below the winner is ADC's documented order at work (a key file beside a gcloud login is the
      // common case, and the emulator's own env.sh is one), so it is shown, not warned about.
      checks.push(
        check(`adc:${c.origin}`, winner ? (winnerMissing ? 'fail' : 'ok') : 'skipped', `${i + 1}. ${label}: ${state}`, {
          ...(winner && winnerMissing ? { code: 'CREDENTIALS_FILE_ERROR' as const, fix: `Point ${c.via} at an existing key or credential file, or unset it.` } : {}),
          ...(c.present && !winner ? { details: [`To use it: ${c.origin === 'well_known_file' ? 'unset GOOGLE_APPLICATION_CREDENTIALS (and drop --credentials)' : 'remove the sources above it'}.`] } : {}),
          ...(c.origin === 'metadata_server' ? { requests: toRequestRecords(discovery.exchanges) } : {}),
        }),
      );
    });
    exchanges.push(...discovery.exchanges);
    if (!discovery.winner) {
      checks.push(
        check('adc', 'fail', 'No Application Default Credentials found: no --credentials, no GOOGLE_APPLICATION_CREDENTIALS, no gcloud application-default login, and no metadata server.', {
          fix: 'Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key or credential file, or pass --credentials FILE.',
          code: 'NO_CREDENTIALS',
        }),
      );
    }
  }

  // gcloud's own state, read from its config directory without running it.
  const adcPath = candidates.find((c) => c.origin === 'well_known_file');
  const gcloudDetails = [`config directory ${gcloud.configDir}`, `active configuration ${gcloud.activeConfig}`, `account ${gcloud.account ?? '(none)'}`, `project ${gcloud.project ?? '(none)'}`];
  if (gcloud.account && adcPath && !adcPath.present) {
    checks.push(
      check('gcloud', 'warn', `gcloud CLI is logged in as ${gcloud.account}, but there is no application-default login: Google's libraries and idcall do not use the CLI's login`, {
        details: gcloudDetails,
        fix: 'Run `gcloud auth application-default login` (or use --source gcloud to borrow the CLI\'s token).',
      }),
    );
  } else if (ctx.env.CLOUDSDK_CONFIG && !(await isDirectory(gcloud.configDir))) {
    checks.push(check('gcloud', 'warn', `CLOUDSDK_CONFIG names ${gcloud.configDir}, which does not exist: gcloud and the gcloud-login ADC source find nothing there`, { details: gcloudDetails, fix: 'Unset CLOUDSDK_CONFIG, or point it at your gcloud configuration directory (gcloud info --format="value(config.paths.global_config_dir)").' }));
  } else if (gcloud.problems.length) {
    checks.push(check('gcloud', 'warn', gcloud.problems[0]!, { details: [...gcloudDetails, ...gcloud.problems.slice(1)], fix: `Replace it with gcloud's own file (gcloud config configurations activate default), or point CLOUDSDK_CONFIG elsewhere.` }));
  } else {
    checks.push(check('gcloud', 'ok', gcloud.account ? `gcloud CLI account ${gcloud.account}, project ${gcloud.project ?? '(none)'}` : 'gcloud CLI: no account configured', { details: gcloudDetails }));
  }

  if (gcloud.account) {
    const stored = await readGcloudCredentialAccounts(gcloud.configDir);
    if (stored && !stored.includes(gcloud.account)) {
      checks.push(check('gcloud-credentials', 'warn', `gcloud CLI account ${gcloud.account} has no stored credentials (gcloud auth list shows ${stored.length ? stored.join(', ') : 'none'}): every gcloud command as it fails`, { fix: `gcloud auth login ${gcloud.account}` }));
    }
    const session = await readGcloudSession(gcloud.configDir, gcloud.account);
    if (session?.accessTokenExpiry) {
      const left = (session.accessTokenExpiry - ctx.now()) / 1000;
      const idLeft = session.idTokenExpiry ? (session.idTokenExpiry - ctx.now()) / 1000 : null;
      checks.push(
        check('gcloud-session', left < 300 ? 'warn' : 'ok', `gcloud CLI session of ${gcloud.account}: cached access token ${left > 0 ? `expires in ${humanDuration(left)}` : `expired ${humanDuration(-left)} ago`}${idLeft !== null ? `, last ID token ${idLeft > 0 ? `expires in ${humanDuration(idLeft)}` : `expired ${humanDuration(-idLeft)} ago`}` : ''}`, {
          ...(left < 300 ? { fix: 'gcloud refreshes it on next use; if that fails (revoked, reauthentication required), run `gcloud auth login`.' } : {}),
        }),
      );
    }
  }

  // The credential itself, and whether it works.
  let resolved: Resolved | null = null;
  if (discovery?.winner || options.source === 'gcloud') {
    try {
      const loaded = await runLoad(ctx, discovery, options);
      resolved = loaded.resolved;
      report.source = resolved.source;
      report.shadowed = resolved.shadowed;
      const cred = resolved.credential;
      checks.push(
        check('credential', loaded.step.status, loaded.step.summary, {
          details: loaded.step.details,
          durationMs: loaded.step.durationMs,
          ...(cred?.warnings.length ? { fix: cred.warnings.map((w) => w.fix).join('; ') } : {}),
        }),
      );
      checks.push(...(await configurationChecks(ctx, resolved, options)));
    } catch (err) {
      if (!(err instanceof StepFailure)) throw err;
      checks.push(check('credential', 'fail', err.error.message, { fix: err.error.fix, code: err.error.code }));
    }
  }

  if (resolved && resolved.source?.type !== 'gcloud') {
    const tokenOptions = { endpoints: options.endpoints, timeoutMs: options.authTimeoutMs, delegates: options.delegates ?? [], includeEmail: options.includeEmail, format: options.format, ...(options.impersonate ? { impersonate: options.impersonate } : {}) };
    const t0 = ctx.monotonic();
    try {
      const access = await mintAccessToken(ctx, { credential: resolved.credential, ...(resolved.discovery ? { metadata: resolved.discovery.metadata } : {}) }, tokenOptions);
      exchanges.push(...access.exchanges);
      if (access.principal && report.source && !report.source.principal) report.source = { ...report.source, principal: access.principal };
      checks.push(check('access-token', 'ok', `access token obtained${access.principal ? ` for ${access.principal}` : ''}`, { durationMs: Math.round(ctx.monotonic() - t0), requests: toRequestRecords(access.exchanges) }));
    } catch (err) {
      const e = asIdcallError(err, 'TOKEN_ENDPOINT_ERROR');
      const failed = (err as { exchanges?: Exchange[] }).exchanges ?? [];
      exchanges.push(...failed);
      checks.push(check('access-token', 'fail', e.message, { fix: e.fix, code: e.code, durationMs: Math.round(ctx.monotonic() - t0), requests: toRequestRecords(failed) }));
    }
  }

  // An ID token: for the audience asked, or, for impersonation, gcloud's default audience to learn whether generateIdToken is allowed.
  // --source gcloud: only running gcloud says whether it can produce a token.
  const impersonating = Boolean(options.impersonate) || resolved?.source?.type === 'impersonated_service_account' || resolved?.source?.type === 'external_account' || options.source === 'gcloud';
  if (resolved && (options.audience !== undefined || impersonating)) {
    const audience = options.audience !== undefined ? normaliseAudience(options.audience) : GCLOUD_CLIENT_ID;
    try {
      const m = await runMint(ctx, resolved, audience, options);
      exchanges.push(...m.minted.exchanges);
      // A user's own token cannot carry the audience asked for: `token --audience` fails there, so doctor fails too.
      const user = m.minted.userToken && options.audience !== undefined;
      checks.push(
        check('id-token', user ? 'fail' : 'ok', user ? `${m.minted.principal ?? 'This user'} is a user account: Google issues a user's ID token for the OAuth client, never for ${audience}` : `${m.step.summary}${options.audience === undefined ? ' (probe with gcloud\'s default audience: generateIdToken is allowed)' : ''}`, {
          durationMs: m.step.durationMs,
          details: m.step.details,
          requests: m.step.requests,
          ...(user ? { fix: userTokenFix(m.minted.principal, audience), code: 'USER_TOKEN_AUDIENCE' as const } : {}),
        }),
      );
      if (gcloud.account && resolved.source?.type === 'authorized_user') {
        const email = decodeJwtClaims(m.minted.token)?.email;
        if (typeof email === 'string' && email !== gcloud.account) {
          checks.push(check('gcloud-vs-adc', 'warn', `The gcloud CLI is logged in as ${gcloud.account}, but Application Default Credentials belong to ${email}`, { fix: 'Run `gcloud auth application-default login` as the account you mean, or switch the CLI: gcloud config set account EMAIL' }));
        }
      }
    } catch (err) {
      if (!(err instanceof StepFailure)) throw err;
      checks.push(check('id-token', 'fail', err.error.message, { fix: err.error.fix, code: err.error.code, durationMs: err.step.durationMs, requests: err.step.requests }));
    }
  }

  checks.push(...environmentChecks(ctx, exchanges, candidates));
  return finish(report);
}

function finish(report: DoctorReport): DoctorReport {
  const failed = report.checks.find((c) => c.status === 'fail');
  if (failed) report.verdict = { code: failed.code ?? 'NO_CREDENTIALS', summary: failed.summary, fix: failed.fix };
  else if (!report.source) report.verdict = { code: 'NO_CREDENTIALS', summary: 'No Application Default Credentials found.', fix: 'Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS.' };
  else {
    const warnings = report.checks.filter((c) => c.status === 'warn').length;
    report.verdict = { code: 'OK', summary: `Credentials work (${report.source.type}${report.source.principal ? `, ${report.source.principal}` : ''})${warnings ? `; ${warnings} warning${warnings > 1 ? 's' : ''} above` : ''}.`, fix: '' };
  }
  if (!report.source && !failed) {
    report.checks.push(check('verdict', 'fail', report.verdict.summary, { fix: report.verdict.fix, code: 'NO_CREDENTIALS' }));
  }
  report.ok = report.verdict.code === 'OK';
  report.exitCode = report.ok ? 0 : exitCodeFor(report.verdict.code, report.verdict.code === 'USAGE_ERROR' ? undefined : 'load');
  return report;
}

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
  if (type === 'external_account') {
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
    out.push(check('federation', status, summary, { details, fix, ...(status === 'fail' ? { code: 'FEDERATION_FAILED' as const } : {}) }));
  }
  const quota = ctx.env.GOOGLE_CLOUD_QUOTA_PROJECT ?? (json.quota_project_id as string | undefined);
  const universe = (json.universe_domain as string | undefined) ?? GOOGLE_UNIVERSE;
  out.push(
    check('quota-universe', universe === GOOGLE_UNIVERSE ? 'ok' : 'warn', `quota project ${quota ?? '(none)'}${ctx.env.GOOGLE_CLOUD_QUOTA_PROJECT ? ' (GOOGLE_CLOUD_QUOTA_PROJECT)' : ''}, universe ${universe}`, {
      ...(universe !== GOOGLE_UNIVERSE ? { fix: `This credential belongs to the ${universe} universe: Cloud Run in googleapis.com will not accept its tokens.` } : {}),
    }),
  );
  return out;
}

/** What breaks auth silently: proxies that swallow the metadata server, a wrong clock, a metadata override pointing nowhere. */
function environmentChecks(ctx: Context, exchanges: Exchange[], candidates: Candidate[]): Check[] {
  const out: Check[] = [];
  const env = ctx.env;
  const proxy = proxyFor(new URL(GOOGLE_TOKEN_URL), env);
  if (proxyConfigured(env)) {
    const via = proxy ? `idcall sends requests for Google's endpoints (e.g. oauth2.googleapis.com) through ${displayProxy(proxy)}` : 'NO_PROXY exempts Google\'s endpoints, so idcall reaches them directly';
    // Google's libraries (gaxios) send every URL to the proxy, http ones included, unless NO_PROXY says otherwise.
    const metadataProxied = METADATA_URLS.some((url) => !exemptFromProxy(new URL(url), env));
    out.push(
      metadataProxied
        ? check('proxy', 'warn', `${via}; NO_PROXY does not exempt the metadata server, so clients that honour the proxy (idcall does not) send metadata requests to it`, {
            fix: 'export NO_PROXY=169.254.169.254,metadata,metadata.google.internal${NO_PROXY:+,$NO_PROXY}',
          })
        : check('proxy', 'ok', `${via}; NO_PROXY exempts the metadata server`),
    );
  }
  const dated = [...exchanges].reverse().find((e) => e.date && e.status !== undefined && !/computeMetadata/.test(e.url));
  if (dated) {
    const skew = clockSkewSeconds(ctx.now(), dated.date!);
    out.push(
      Math.abs(skew) > SKEW_TOLERANCE_S
        ? check('clock', 'warn', `${describeSkew(skew)} (from the Date header of ${new URL(dated.url).host})`, { fix: 'Synchronise the clock: sudo timedatectl set-ntp true', code: 'CLOCK_SKEW' })
        : check('clock', 'ok', `clock within ${SKEW_TOLERANCE_S} s of Google's (${skew >= 0 ? '+' : ''}${skew} s)`),
    );
  } else out.push(check('clock', 'skipped', 'clock not compared: no Google endpoint answered'));
  const meta = candidates.find((c) => c.origin === 'metadata_server');
  if (meta && !meta.defaultAddress && !meta.present) {
    out.push(check('metadata-host', 'warn', `${meta.via} points at ${meta.path}, which is not a metadata server (${meta.note ?? 'no answer'})`, { fix: `Unset ${meta.via} off Google Cloud, or point it at a metadata server (host:port).` }));
  }
  return out;
}
