// Whether the credential works: an access token for it, and an ID token (for the audience asked, or, for
// impersonation and --source gcloud, gcloud's default audience, to learn whether minting is allowed at all).
import { GCLOUD_CLIENT_ID } from '../../endpoints.ts';
import { asIdcallError } from '../../errors.ts';
import { decodeJwtClaims } from '../../google/jwt.ts';
import { mintAccessToken } from '../../google/mint.ts';
import { toRequestRecords, type Check } from '../../report.ts';
import { runMint, StepFailure } from '../../steps/steps.ts';
import type { Exchange } from '../../net/transport.ts';
import { userTokenFix } from '../verdict.ts';
import { check, type DoctorCheck } from './check.ts';
import { mintOptionsFor } from '../../options.ts';
import { kindOfAudience } from '../../target-kind.ts';

export const accessToken: DoctorCheck = async (ctx, options, { resolved, source, exchanges }) => {
  if (!resolved || resolved.source?.type === 'gcloud') return { checks: [] };
  const t0 = ctx.monotonic();
  const mintOptions = { endpoints: options.endpoints, timeoutMs: options.authTimeoutMs, delegates: options.delegates ?? [], includeEmail: options.includeEmail, format: options.format, ...(options.impersonate ? { impersonate: options.impersonate } : {}) };
  try {
    const access = await mintAccessToken(ctx, { credential: resolved.credential, ...(resolved.discovery ? { metadata: resolved.discovery.metadata } : {}) }, mintOptions);
    const row = check('access-token', 'ok', `access token obtained${access.principal ? ` for ${access.principal}` : ''}`, { durationMs: Math.round(ctx.monotonic() - t0), requests: toRequestRecords(access.exchanges) });
    // A metadata server or a user file may name the identity only here.
    const named = access.principal && source && !source.principal ? { source: { ...source, principal: access.principal } } : {};
    return { checks: [row], found: { exchanges: [...exchanges, ...access.exchanges], ...named } };
  } catch (err) {
    const e = asIdcallError(err, 'TOKEN_ENDPOINT_ERROR');
    const failed = (err as { exchanges?: Exchange[] }).exchanges ?? [];
    return { checks: [check('access-token', 'fail', e.message, { fix: e.fix, code: e.code, durationMs: Math.round(ctx.monotonic() - t0), requests: toRequestRecords(failed) })], found: { exchanges: [...exchanges, ...failed] } };
  }
};

export const idToken: DoctorCheck = async (ctx, options, { resolved, gcloud, exchanges }) => {
  const impersonating = Boolean(options.impersonate) || resolved?.source?.type === 'impersonated_service_account' || resolved?.source?.type === 'external_account' || options.source === 'gcloud';
  if (!resolved || (options.audience === undefined && !impersonating)) return { checks: [] };
  const audience = options.audience !== undefined ? options.audience.trim() : GCLOUD_CLIENT_ID;
  // The same rule as `token`: IAP needs the email claim.
  const kind = options.targetKind ?? (options.audience !== undefined ? kindOfAudience(audience) : undefined);
  const iap = kind === 'iap';
  try {
    const m = await runMint(ctx, resolved, audience, mintOptionsFor(options, kind));
    // A user's own token cannot carry the audience asked for: `token --audience` fails there, so doctor fails too.
    const user = m.minted.userToken && options.audience !== undefined;
    // IAP needs the email claim: the same rule as `token` and `inspect --target-kind iap`.
    if (iap && !user && typeof decodeJwtClaims(m.minted.token)?.email !== 'string') {
      return { checks: [check('id-token', 'fail', `the ID token for ${audience} has no email claim, which IAP requires`, { durationMs: m.step.durationMs, code: 'EMAIL_CLAIM_MISSING', fix: 'Mint it with the email claim (includeEmail; metadata format=full); idcall asks for it for IAP targets, so the source in use ignored the request.' })], found: { exchanges: [...exchanges, ...m.minted.exchanges] } };
    }
    const checks: Check[] = [
      check('id-token', user ? 'fail' : 'ok', user ? `${m.minted.principal ?? 'This user'} is a user account: Google issues a user's ID token for the OAuth client, never for ${audience}` : `${m.step.summary}${options.audience === undefined ? ' (probe with gcloud\'s default audience: generateIdToken is allowed)' : ''}`, {
        durationMs: m.step.durationMs,
        details: m.step.details,
        requests: m.step.requests,
        ...(user ? { fix: userTokenFix(m.minted.principal, audience), code: 'USER_TOKEN_AUDIENCE' as const } : {}),
      }),
    ];
    if (gcloud.account && resolved.source?.type === 'authorized_user') {
      const email = decodeJwtClaims(m.minted.token)?.email;
      if (typeof email === 'string' && email !== gcloud.account) {
        checks.push(check('gcloud-vs-adc', 'warn', `The gcloud CLI is logged in as ${gcloud.account}, but Application Default Credentials belong to ${email}`, { fix: 'Run `gcloud auth application-default login` as the account you mean, or switch the CLI: gcloud config set account EMAIL' }));
      }
    }
    return { checks, found: { exchanges: [...exchanges, ...m.minted.exchanges] } };
  } catch (err) {
    if (!(err instanceof StepFailure)) throw err;
    return { checks: [check('id-token', 'fail', err.error.message, { fix: err.error.fix, code: err.error.code, durationMs: err.step.durationMs, requests: err.step.requests })] };
  }
};
