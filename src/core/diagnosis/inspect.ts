// `idcall inspect`: what a token is, and whether a given target would accept it.
import type { TargetKind } from '../target-kind.ts';
import type { Context } from '../context.ts';
import { usageError, type CauseCode } from '../errors.ts';
import { GOOGLE_CERTS_URL } from '../endpoints.ts';
import { conclude, REPORT_VERSION, toRequestRecords, type InspectReport, type Verdict } from '../report.ts';
import { humanDuration, timeClaim, verifyToken } from '../google/verify.ts';
import type { SignatureCheck } from '../google/jwt.ts';
import { userTokenFix } from './verdict.ts';

const MAX_INPUT = 64 * 1024;

/** Accept a bare token, `Bearer …`, or a whole `Authorization: Bearer …` header line. */
export function extractToken(input: string): string {
  if (input.length > MAX_INPUT) throw usageError(`The input is ${Math.round(input.length / 1024)} KB; a Google token is at most a few KB.`, 'Paste just the token, or the Authorization header line.');
  let text = input.trim();
  text = text.replace(/^(x-serverless-)?authorization\s*:\s*/i, '').replace(/^bearer(\s+|$)/i, '').trim();
  if (text === '') throw usageError('No token given.', 'Pass a token as an argument, or pipe one on stdin: idcall inspect - < token.txt');
  if (/\s/.test(text)) throw usageError('The input holds more than one word; expected a single token.', 'Paste just the token, or the Authorization header line.');
  return text;
}

export interface InspectOptions {
  audience?: string;
  /** iap: the email claim is required too (§11.2). */
  targetKind?: TargetKind;
  certsUrl: string;
  timeoutMs: number;
}

export async function inspectToken(ctx: Context, input: string, options: InspectOptions): Promise<InspectReport> {
  const token = extractToken(input);
  const audience = options.audience !== undefined ? options.audience.trim() : null;
  const v = await verifyToken(ctx, token, { expectedAudience: audience, certsUrl: options.certsUrl, timeoutMs: options.timeoutMs, requireEmail: options.targetKind === 'iap' });
  if (v.kind === 'not_a_jwt') {
    throw usageError(`This is not a token idcall can read: ${v.signature.status === 'unknown' ? v.signature.reason : 'undecodable'}.`, 'Paste the whole ID token (three base64url parts separated by dots), e.g. from `idcall token --audience URL`.');
  }
  const nowS = ctx.now() / 1000;
  const times: Record<string, string> = {};
  const iat = timeClaim(v.claims.iat);
  const exp = timeClaim(v.claims.exp);
  if (iat !== undefined) times.iat = `${new Date(iat * 1000).toISOString()} (${iat <= nowS ? `${humanDuration(nowS - iat)} ago` : `in ${humanDuration(iat - nowS)}`})`;
  if (exp !== undefined) times.exp = `${new Date(exp * 1000).toISOString()} (${exp > nowS ? `expires in ${humanDuration(exp - nowS)}` : `expired ${humanDuration(nowS - exp)} ago`})`;
  if (v.claims.email_verified !== undefined && v.claims.email_verified !== true) {
    v.findings.push({ check: 'email', status: 'warn', text: `email_verified is ${JSON.stringify(v.claims.email_verified)}` });
  }

  const verdict = verdictFor(v.findings, v.kind, audience, v.claims, v.signature);
  const report: InspectReport = {
    version: REPORT_VERSION,
    command: 'inspect',
    ok: false,
    verdict,
    kind: v.kind,
    audience,
    header: v.header,
    claims: v.claims,
    times,
    findings: v.findings,
    signature: v.signature.status,
    requests: toRequestRecords(v.exchanges),
    exitCode: 0,
  };
  return conclude(report, verdict);
}

function verdictFor(findings: InspectReport['findings'], kind: InspectReport['kind'], audience: string | null, claims: Record<string, unknown>, signature: SignatureCheck): Verdict {
  if (kind === 'access_token') {
    return { code: 'AUDIENCE_MISMATCH', summary: 'This is an OAuth access token (ya29.…), not an ID token: Cloud Run rejects it.', fix: 'Mint an ID token instead: idcall token --audience URL (or gcloud auth print-identity-token).' };
  }
  // Definite rejections first; an unverified signature only when nothing else is wrong: OK means the signature was checked.
  const order: CauseCode[] = ['TOKEN_EXPIRED', 'SIGNATURE_INVALID', 'AUDIENCE_MISMATCH', 'EMAIL_CLAIM_MISSING', 'USER_TOKEN_AUDIENCE', 'CLOCK_SKEW', 'SIGNATURE_UNVERIFIED'];
  // A claim of a shape Google never writes says more about the token than anything checked after it.
  const malformed = findings.find((f) => f.status === 'fail' && f.malformed);
  if (malformed) {
    return { code: malformed.code as CauseCode, summary: `A target checking this token would reject it: ${malformed.text}.`, fix: 'Google writes numeric exp and iat and a string aud: this token was not minted by Google as it stands (altered, or from another issuer). Use one Google issued: idcall token --audience URL.' };
  }
  for (const code of order) {
    const hit = findings.find((f) => f.code === code && (f.status === 'fail' || code === 'USER_TOKEN_AUDIENCE' || code === 'SIGNATURE_UNVERIFIED'));
    if (!hit) continue;
    if (code === 'TOKEN_EXPIRED') return { code, summary: `The token ${hit.text}.`, fix: 'Mint a fresh one: idcall token --audience URL. ID tokens live one hour.' };
    if (code === 'SIGNATURE_INVALID') {
      return { code, summary: `A target checking this token would reject it: ${hit.text}.`, fix: 'Use a token Google issued (idcall token --audience URL); if it came from Google, check that --certs-url points at Google\'s certificates.' };
    }
    if (code === 'SIGNATURE_UNVERIFIED') {
      return {
        code,
        summary: `The signature was NOT verified (${signature.status === 'unknown' ? signature.reason : 'no certificates'}), so idcall cannot say whether a target would accept this token.`,
        fix: `Let idcall reach ${GOOGLE_CERTS_URL} (or point --certs-url at a copy of it) and run inspect again.`,
      };
    }
    if (code === 'EMAIL_CLAIM_MISSING') {
      return { code, summary: `IAP would reject this token: ${hit.text}.`, fix: 'Mint it with the email claim: idcall token --audience CLIENT_ID --include-email (gcloud: --include-email; the metadata server: format=full; generateIdToken: "includeEmail": true).' };
    }
    if (code === 'USER_TOKEN_AUDIENCE') {
      return { code, summary: `${hit.text}. (Cloud Run accepts gcloud's own client id for development only.)`, fix: userTokenFix(typeof claims.email === 'string' ? claims.email : null, audience ?? 'the service URL') };
    }
    return {
      code,
      summary: `A target checking this token would reject it: ${hit.text}.`,
      fix: `Mint a token for the audience the target expects: idcall token --audience ${audience ?? 'URL'}`,
    };
  }
  return { code: 'OK', summary: audience ? `Fit for ${audience}.` : 'A valid Google-signed ID token (pass --audience to check it against a target).', fix: '' };
}
