// Check a token locally before sending it: kind, issuer, audience, times, signature.
import type { Context } from '../context.ts';
import { normaliseAudience } from '../audience.ts';
import { decodeJwt, GOOGLE_ISSUERS, JwtDecodeError, verifySignature, type SignatureCheck } from './jwt.ts';
import { createRecordingClient, describeNetworkError, type Exchange } from '../net/transport.ts';
import type { StepStatus } from '../report.ts';
import type { CauseCode } from '../errors.ts';

export const SKEW_TOLERANCE_S = 30;

/** An ok finding has no code; a warn or fail one names the cause it would explain if the target rejects the token. */
/** What a finding is about, so code finds it by what it checked rather than by its wording. */
export type FindingCheck = 'format' | 'issuer' | 'audience' | 'email' | 'expiry' | 'issued_at' | 'clock' | 'signature';
export type Finding =
  | { check: FindingCheck; status: 'ok'; code?: never; text: string }
  /** malformed: the claim is of a shape Google never writes (a non-numeric exp, a numeric aud): not a Google token as minted. */
  | { check: FindingCheck; status: 'warn' | 'fail'; code?: CauseCode; text: string; malformed?: true };

export interface VerifyResult {
  status: StepStatus;
  summary: string;
  claims: Record<string, unknown>;
  header: Record<string, unknown>;
  findings: Finding[];
  signature: SignatureCheck;
  /** Local clock minus Google's, in seconds, when a Google Date header was seen. */
  skewSeconds: number | null;
  kind: 'id_token' | 'access_token' | 'not_a_jwt';
  exchanges: Exchange[];
}

export interface VerifyOptions {
  /** Audience the target will check; null when only the token itself is examined. */
  expectedAudience: string | null;
  certsUrl: string;
  timeoutMs: number;
  /** Date header of a recent Google response, for clock-skew measurement. */
  googleDate?: string;
  /** Known to be a user's own token (authorized_user). */
  userToken?: boolean;
  /** The target requires a string `email` claim (IAP, §11.2). */
  requireEmail?: boolean;
}

const CLIENT_ID = /\.apps\.googleusercontent\.com$/;
/** What Cloud Run puts in place of the signature of the token it passes to the container (§16.2). */
export const SIGNATURE_REMOVED = 'SIGNATURE_REMOVED_BY_GOOGLE';

export async function verifyToken(ctx: Context, token: string, options: VerifyOptions): Promise<VerifyResult> {
  const exchanges: Exchange[] = [];
  const findings: Finding[] = [];
  const nowS = ctx.now() / 1000;
  const skewSeconds = options.googleDate ? clockSkewSeconds(ctx.now(), options.googleDate) : null;
  const base = { claims: {}, header: {}, skewSeconds, exchanges };

  if (/^ya29\./.test(token) || (!token.includes('.') && token.length > 20)) {
    return {
      ...base,
      status: 'fail',
      summary: 'this is an OAuth access token, not an ID token',
      findings: [{ check: 'format', status: 'fail', code: 'AUDIENCE_MISMATCH', text: 'Cloud Run accepts only Google-signed ID tokens (JWTs); access tokens (ya29.…) are rejected.' }],
      signature: { status: 'unknown', reason: 'opaque access token' },
      kind: 'access_token',
    };
  }
  let decoded;
  try {
    decoded = decodeJwt(token);
  } catch (err) {
    const reason = err instanceof JwtDecodeError ? err.message : 'undecodable';
    return { ...base, status: 'fail', summary: `not a JWT: ${reason}`, findings: [{ check: 'format', status: 'fail', code: 'AUDIENCE_MISMATCH', text: `The token is ${reason}.` }], signature: { status: 'unknown', reason }, kind: 'not_a_jwt' };
  }
  const { claims, header } = decoded;

  if (!GOOGLE_ISSUERS.includes(String(claims.iss))) {
    const issuer = claims.iss === undefined ? 'the token has no iss claim' : `issuer is ${describeClaim(claims.iss)}`;
    findings.push({ check: 'issuer', status: 'fail', code: 'AUDIENCE_MISMATCH', text: `${issuer}, not https://accounts.google.com: Cloud Run accepts only Google-issued ID tokens` });
  }
  const audOk = claims.aud === undefined || typeof claims.aud === 'string' || (Array.isArray(claims.aud) && claims.aud.every((a) => typeof a === 'string'));
  if (!audOk) findings.push({ check: 'audience', status: 'fail', code: 'AUDIENCE_MISMATCH', text: `malformed claim: aud is ${describeClaim(claims.aud)}, not a string`, malformed: true });
  const aud = !audOk ? '' : typeof claims.aud === 'string' ? claims.aud : Array.isArray(claims.aud) ? String(claims.aud[0] ?? '') : '';
  const userToken = options.userToken || (CLIENT_ID.test(aud) && typeof claims.email === 'string' && !String(claims.email).endsWith('gserviceaccount.com'));
  if (options.expectedAudience !== null) {
    // The audience is compared exactly, as Google's front ends compare it; a URL that differs only by a slash or a
    // path from an expected origin is called out, since Cloud Run compares the exact origin.
    const expected = options.expectedAudience.trim();
    if (aud === expected || (expected === normaliseAudience(expected) && normaliseAudience(aud) === expected)) {
      findings.push(aud === expected ? { check: 'audience', status: 'ok', text: `aud matches ${expected}` } : { check: 'audience', status: 'warn', code: 'AUDIENCE_MISMATCH', text: `aud ${aud} matches ${expected} only once normalised; Cloud Run compares the exact origin` });
    } else if (userToken) {
      findings.push({ check: 'audience', status: 'warn', code: 'USER_TOKEN_AUDIENCE', text: `aud is the OAuth client ${aud}, not ${expected}: a user's own ID token; a target that checks its audience rejects it` });
    } else {
      findings.push({ check: 'audience', status: 'fail', code: 'AUDIENCE_MISMATCH', text: `aud is ${aud || '(none)'}, but the target expects ${expected}` });
    }
  }

  if (options.requireEmail && typeof claims.email !== 'string') {
    findings.push({ check: 'email', status: 'fail', code: 'EMAIL_CLAIM_MISSING', text: 'the token has no email claim, which IAP requires (it answers "JWT \'email\' claim isn\'t a string")' });
  }

  const exp = timeClaim(claims.exp) ?? NaN;
  const iat = timeClaim(claims.iat) ?? NaN;
  if (claims.exp !== undefined && typeof claims.exp === 'number' && Number.isNaN(exp)) findings.push({ check: 'expiry', status: 'fail', code: 'TOKEN_EXPIRED', text: `malformed claim: exp is ${describeClaim(claims.exp)}, not a time`, malformed: true });
  else if (Number.isNaN(exp)) findings.push({ check: 'expiry', status: 'fail', code: 'TOKEN_EXPIRED', text: 'the token has no numeric exp claim', malformed: true });
  else if (exp <= nowS) findings.push({ check: 'expiry', status: 'fail', code: 'TOKEN_EXPIRED', text: `expired ${humanDuration(nowS - exp)} ago` });
  else findings.push({ check: 'expiry', status: 'ok', text: `expires in ${humanDuration(exp - nowS)}` });
  if (claims.iat !== undefined && Number.isNaN(iat)) findings.push({ check: 'issued_at', status: 'fail', code: 'TOKEN_EXPIRED', text: `malformed claim: iat is ${describeClaim(claims.iat)}, not a time`, malformed: true });
  if (!Number.isNaN(iat) && iat > nowS + SKEW_TOLERANCE_S) {
    findings.push({ check: 'issued_at', status: 'warn', code: 'CLOCK_SKEW', text: `issued ${humanDuration(iat - nowS)} in the future by this machine's clock: the clock is behind` });
  }
  if (skewSeconds !== null && Math.abs(skewSeconds) > SKEW_TOLERANCE_S) {
    findings.push({ check: 'clock', status: 'warn', code: 'CLOCK_SKEW', text: describeSkew(skewSeconds) });
  }

  // Cloud Run hands the container the token it verified with the signature replaced (§16.2): not forged, not checkable.
  const signature: SignatureCheck = token.endsWith(`.${SIGNATURE_REMOVED}`)
    ? { status: 'unknown', reason: `its signature was replaced by ${SIGNATURE_REMOVED}: this is a token Cloud Run already verified and passed on to the container, so it cannot be checked again (nor sent anywhere)` }
    : await checkSignature(ctx, decoded, options, exchanges);
  if (signature.status === 'valid') findings.push({ check: 'signature', status: 'ok', text: 'signature verified against Google\'s certificates' });
  else if (signature.status === 'invalid') findings.push({ check: 'signature', status: 'fail', code: 'SIGNATURE_INVALID', text: `signature: ${signature.reason}` });
  else findings.push({ check: 'signature', status: 'warn', code: 'SIGNATURE_UNVERIFIED', text: `signature NOT verified: ${signature.reason}` });

  const status: StepStatus = findings.some((f) => f.status === 'fail') ? 'fail' : findings.some((f) => f.status === 'warn') ? 'warn' : 'ok';
  const firstProblem = findings.find((f) => f.status === status);
  const summary = status === 'ok' ? `ID token for ${aud}${claims.email ? ` as ${claims.email}` : ''}, ${findings.find((f) => f.check === 'expiry')?.text ?? ''}` : firstProblem!.text;
  return { status, summary, claims, header, findings, signature, skewSeconds, kind: 'id_token', exchanges };
}

async function checkSignature(ctx: Context, decoded: ReturnType<typeof decodeJwt>, options: VerifyOptions, exchanges: Exchange[]): Promise<SignatureCheck> {
  const http = createRecordingClient({ timeoutMs: options.timeoutMs, exchanges, base: ctx.http, now: ctx.monotonic, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  let certs: unknown;
  try {
    const res = await http(options.certsUrl);
    if (!res.ok) return { status: 'unknown', reason: `certificates at ${options.certsUrl} answered ${res.status}` };
    certs = res.json();
  } catch (err) {
    const reason = err instanceof SyntaxError ? 'the certificate document is not JSON' : describeNetworkError(err, options.timeoutMs);
    return { status: 'unknown', reason: `certificates unreachable (${reason})` };
  }
  return verifySignature(decoded, certs);
}

// JavaScript dates reach ±8.64e15 ms; a claim beyond that (1e20, 1e308) is not a time anyone can mean.
const MAX_TIME_S = 8.64e12;

/** A NumericDate claim (RFC 7519 §2) in seconds, or undefined when it is absent or not a usable time. */
export function timeClaim(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= MAX_TIME_S ? value : undefined;
}

function describeClaim(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** This machine's clock minus Google's (from a response's Date header), in whole seconds. */
export function clockSkewSeconds(nowMs: number, googleDate: string): number {
  return Math.round((nowMs - Date.parse(googleDate)) / 1000);
}

export function describeSkew(skewSeconds: number): string {
  return `this machine's clock is ${humanDuration(Math.abs(skewSeconds))} ${skewSeconds > 0 ? 'ahead of' : 'behind'} Google's`;
}

export function humanDuration(seconds: number): string {
  const s = Math.round(Math.abs(seconds));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}
