// The steps every command shares: discover → load → mint → verify → call. Each returns a Step row and its value;
// `call`, `token`, `doctor` and the library all run these, never a copy of them.
import type { Context } from '../context.ts';
import { discover, type Discovery } from '../google/discover.ts';
import { asIdcallError, IdcallError } from '../errors.ts';
import { gcloudIdentityToken } from '../google/gcloud.ts';
import { loadCredentialFile, type LoadedCredential } from '../google/load.ts';
import { mintIdToken, type MintResult } from '../google/mint.ts';
import { toRequestRecords, type Shadowed, type Source, type Step, type StepId } from '../report.ts';
import type { Exchange } from '../net/transport.ts';
import { timeClaim, verifyToken, type VerifyResult } from '../google/verify.ts';
import { decodeJwtClaims } from '../google/jwt.ts';

import type { CallSettings, SourceOptions } from '../options.ts';
import { displayProxy, proxyFor } from '../net/proxy-env.ts';
import type { CallResult } from '../net/target.ts';

export class StepFailure extends Error {
  readonly step: Step;
  readonly error: IdcallError;

  constructor(failed: Step, error: IdcallError) {
    super(error.message);
    this.step = failed;
    this.error = error;
  }
}

export function step(id: StepId, status: Step['status'], durationMs: number, summary: string, details: string[] = [], exchanges: Exchange[] = []): Step {
  // Behind a corporate proxy, say so where a person reads: the JSON has it per request.
  const proxies = [...new Set(exchanges.flatMap((e) => (e.proxy ? [e.proxy] : [])))];
  const via = proxies.map((p) => `through the proxy ${p} (HTTPS_PROXY/HTTP_PROXY)`);
  return { id, status, durationMs, summary, details: [...details, ...via], requests: toRequestRecords(exchanges) };
}

export const skipped = (id: StepId): Step => step(id, 'skipped', 0, 'not run: an earlier step failed');

export interface Resolved {
  discovery: Discovery | null;
  credential: LoadedCredential | null;
  source: Source | null;
  shadowed: Shadowed[];
}

const describeCandidate = (c: Discovery['candidates'][number]) =>
  `${c.origin === 'metadata_server' ? `metadata server ${c.path}` : `${c.origin} ${c.path}`}${c.present ? '' : ` — ${c.note ?? 'absent'}`}`;

async function runDiscoverRaw(ctx: Context, options: SourceOptions): Promise<{ step: Step; discovery: Discovery | null }> {
  const t0 = ctx.monotonic();
  if (options.source === 'gcloud') {
    return { step: step('discover', 'ok', 0, 'gcloud CLI requested (--source gcloud): it is not an ADC source; ADC discovery skipped'), discovery: null };
  }
  let discovery: Discovery;
  try {
    discovery = await discover(ctx, { ...(options.credentials !== undefined ? { credentialsFlag: options.credentials } : {}), metadataTimeoutMs: options.metadataTimeoutMs, probeMetadata: options.probeMetadata ?? 'when-likely' });
  } catch (err) {
    const error = asIdcallError(err, 'USAGE_ERROR');
    throw new StepFailure(step('discover', 'fail', Math.round(ctx.monotonic() - t0), error.message), error);
  }
  const ms = Math.round(ctx.monotonic() - t0);
  const details = discovery.candidates.map((c) => `${c === discovery.winner ? '→' : c.present ? '·' : ' '} ${describeCandidate(c)}${c === discovery.winner ? ' (wins)' : c.present ? ' (shadowed)' : ''}`);
  if (!discovery.winner) {
    // A metadata server the environment names (GCE_METADATA_HOST) that did not answer as one is the likely cause.
    const named = discovery.candidates.find((c) => c.origin === 'metadata_server' && !c.defaultAddress && c.probeFailure !== undefined);
    const error = new IdcallError(
      'NO_CREDENTIALS',
      `No Application Default Credentials found: no --credentials, no GOOGLE_APPLICATION_CREDENTIALS, no gcloud application-default login, and no metadata server${named ? ` (${named.via} names ${named.path}: ${named.note})` : ''}.`,
      named
        ? `Check that ${named.via} points at a running metadata server${named.probeFailure === 'timeout' ? ' (or raise --metadata-timeout)' : ''}, or unset it and use another source: \`gcloud auth application-default login\`, GOOGLE_APPLICATION_CREDENTIALS, or --credentials FILE.`
        : 'Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key or credential file, or pass --credentials FILE.',
    );
    throw new StepFailure(step('discover', 'fail', ms, error.message, details, discovery.exchanges), error);
  }
  const shadowedCount = discovery.candidates.filter((c) => c.present && c !== discovery.winner).length;
  const summary = `${describeCandidate(discovery.winner)} wins${shadowedCount ? `; ${shadowedCount} other source${shadowedCount > 1 ? 's' : ''} present, not used` : ''}`;
  // Sources below the winner are ADC's order at work, not a problem: listed in the details and in `shadowed`.
  return { step: step('discover', 'ok', ms, summary, details, discovery.exchanges), discovery };
}

async function runLoadRaw(ctx: Context, discovery: Discovery | null, options: SourceOptions): Promise<{ step: Step; resolved: Resolved }> {
  const t0 = ctx.monotonic();
  const shadowed: Shadowed[] = [];
  if (!discovery) {
    return {
      step: step('load', 'ok', 0, 'gcloud CLI credentials (read by gcloud itself)'),
      resolved: { discovery: null, credential: null, source: { type: 'gcloud', origin: 'gcloud', path: null, principal: null }, shadowed },
    };
  }
  const winner = discovery.winner!;
  // Shadowed files are peeked at for their type only; a broken shadowed file is not this run's problem.
  for (const c of discovery.candidates) {
    if (!c.present || c === winner) continue;
    if (c.origin === 'metadata_server') shadowed.push({ origin: c.origin, path: c.path, type: 'compute' });
    else {
      const type = await loadCredentialFile(c.path!, c.via, ctx.platform).then((l) => l.type, () => null);
      shadowed.push({ origin: c.origin, path: c.path, type });
    }
  }
  if (winner.origin === 'metadata_server') {
    const source: Source = { type: 'compute', origin: 'metadata_server', path: winner.path, principal: null };
    return { step: step('load', 'ok', Math.round(ctx.monotonic() - t0), `compute credentials from the metadata server at ${winner.path}`), resolved: { discovery, credential: null, source, shadowed } };
  }
  let credential: LoadedCredential;
  try {
    credential = await loadCredentialFile(winner.path!, winner.via, ctx.platform);
  } catch (err) {
    const error = asIdcallError(err, 'CREDENTIALS_FILE_ERROR');
    throw new StepFailure(step('load', 'fail', Math.round(ctx.monotonic() - t0), error.message), error);
  }
  const source: Source = { type: credential.type, origin: winner.origin, path: winner.path, principal: credential.principal };
  const details = [...credential.details, ...credential.warnings.map((w) => `[warn] ${w.text}. Run: ${w.fix}`)];
  const summary = `${credential.type}${credential.principal ? ` ${credential.principal}` : ''}`;
  return { step: step('load', credential.warnings.length ? 'warn' : 'ok', Math.round(ctx.monotonic() - t0), summary, details), resolved: { discovery, credential, source, shadowed } };
}

export interface Minted {
  token: string;
  principal: string | null;
  userToken: boolean;
  exchanges: Exchange[];
  /** The audience gcloud was able to honour (false for a user account). */
  audienceHonoured: boolean;
}

async function runMintRaw(ctx: Context, resolved: Resolved, audience: string, options: SourceOptions): Promise<{ step: Step; minted: Minted }> {
  const t0 = ctx.monotonic();
  const elapsed = () => Math.round(ctx.monotonic() - t0);
  try {
    if (resolved.source?.type === 'gcloud') {
      const g = await gcloudIdentityToken(ctx, audience, options.authTimeoutMs, options.impersonate);
      const claims = decodeJwtClaims(g.token) ?? {};
      const principal = (claims.email as string | undefined) ?? g.account;
      const summary = g.audienceHonoured ? `\`${g.command}\` gave a token for ${audience}` : `\`${g.command}\` gave ${principal ?? 'the account'}'s own token (aud ${String(claims.aud)}, gcloud's client id; Cloud Run accepts it for development)`;
      return { step: step('mint', g.audienceHonoured ? 'ok' : 'warn', elapsed(), summary), minted: { token: g.token, principal, userToken: !g.audienceHonoured, exchanges: [], audienceHonoured: g.audienceHonoured } };
    }
    const result: MintResult = await mintIdToken(ctx, { credential: resolved.credential, ...(resolved.discovery?.metadata ? { metadata: resolved.discovery.metadata } : {}) }, {
      audience,
      ...(options.impersonate ? { impersonate: options.impersonate } : {}),
      delegates: options.delegates ?? [],
      includeEmail: options.includeEmail,
      format: options.format,
      endpoints: { ...options.endpoints },
      timeoutMs: options.authTimeoutMs,
    });
    const details = [`via ${result.method}`, ...(result.caller && result.caller !== result.principal ? [`caller: ${result.caller}`] : []), ...(result.warnings ?? []).map((w) => `[warn] ${w}`)];
    const summary = result.userToken
      ? `${result.principal ?? 'user'}'s own ID token: its audience is the OAuth client, not ${audience}`
      : `ID token for ${audience}${result.principal ? ` as ${result.principal}` : ''}`;
    return { step: step('mint', result.userToken || result.warnings?.length ? 'warn' : 'ok', elapsed(), summary, details, result.exchanges), minted: { token: result.token, principal: result.principal, userToken: result.userToken, exchanges: result.exchanges, audienceHonoured: !result.userToken } };
  } catch (err) {
    const error = asIdcallError(err, 'TOKEN_ENDPOINT_ERROR');
    const exchanges = (err as { exchanges?: Exchange[] }).exchanges ?? [];
    throw new StepFailure(step('mint', 'fail', elapsed(), error.message, [], exchanges), error);
  }
}

async function runVerifyRaw(ctx: Context, minted: Minted, expectedAudience: string | null, options: SourceOptions, requireEmail = false): Promise<{ step: Step; verify: VerifyResult }> {
  const t0 = ctx.monotonic();
  const googleDate = [...minted.exchanges].reverse().find((e) => e.date)?.date;
  const verify = await verifyToken(ctx, minted.token, {
    expectedAudience,
    certsUrl: options.certsUrl,
    timeoutMs: Math.min(options.authTimeoutMs, 3000),
    ...(googleDate ? { googleDate } : {}),
    userToken: minted.userToken,
    requireEmail,
  });
  const claimLine = ['iss', 'aud', 'azp', 'email', 'sub', 'exp', 'iat']
    .filter((k) => verify.claims[k] !== undefined)
    .map((k) => {
      const time = k === 'exp' || k === 'iat' ? timeClaim(verify.claims[k]) : undefined;
      return `${k}=${time !== undefined ? new Date(time * 1000).toISOString() : String(verify.claims[k])}`;
    });
  const details = [...verify.findings.map((f) => `[${f.status}] ${f.text}`), ...(claimLine.length ? [`claims: ${claimLine.join(' ')}`] : [])];
  return { step: step('verify', verify.status, Math.round(ctx.monotonic() - t0), verify.summary, details, verify.exchanges), verify };
}

/** What `call` sends besides its settings: the body's bytes and, for -o, where the body streams to. */
export interface CallPayload {
  headers: [string, string][];
  data?: Buffer;
  /** Stream the whole body here as it arrives (-o); only the `bodyLimit` excerpt stays in memory. */
  openSink?: () => { stream: import('node:stream').Writable; close: boolean };
  /** The --cacert file's certificates (PEM), read by the caller. */
  ca?: string;
}

/** Headers of the target's answer that say who answered and why; shown under the call step. */
const SHOWN_HEADERS = ['www-authenticate', 'server', 'x-cloud-trace-context', 'content-type', 'location'];

/** `token` null: the same request without one (a probe of what the front end tells an anonymous caller). */
export async function runCallRaw(ctx: Context, url: URL, token: string | null, settings: CallSettings, payload: CallPayload): Promise<{ step: Step; result: CallResult | null; error: IdcallError | null }> {
  const t0 = ctx.monotonic();
  // undici loads only when a target is called: it is a third of start-up for the other commands.
  const { callTarget } = await import('../net/target.ts');
  const proxy = proxyFor(url, ctx.env);
  let result: CallResult;
  try {
    result = await callTarget({
      url,
      method: settings.method,
      headers: payload.headers,
      ...(payload.data ? { body: payload.data } : {}),
      token,
      headerName: settings.headerName,
      timeoutMs: settings.timeoutMs,
      ...(settings.maxTimeMs !== undefined ? { maxTimeMs: settings.maxTimeMs } : {}),
      bodyLimit: settings.bodyLimit,
      ...(payload.openSink ? { openSink: payload.openSink } : {}),
      ...(settings.routing.resolve.length || settings.routing.connectTo.length || payload.ca ? { routing: { ...settings.routing, ...(payload.ca ? { ca: payload.ca } : {}) } } : {}),
      monotonic: ctx.monotonic,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(proxy ? { proxy } : {}),
    });
  } catch (err) {
    const error = asIdcallError(err, 'TARGET_UNREACHABLE');
    return { step: step('call', 'fail', Math.round(ctx.monotonic() - t0), error.message), result: null, error };
  }
  const t = result.timings;
  const timing = [proxy ? `through the proxy ${displayProxy(proxy)}` : t.connectMs !== undefined ? `connect ${t.connectMs} ms` : 'reused connection', `first byte ${t.firstByteMs} ms`].join(', ');
  const details = [
    `${settings.method} ${url.toString()} with the token in ${result.tokenHeader}`,
    timing,
    ...(result.connectedVia ? [result.connectedVia] : []),
    ...Object.entries(result.headers)
      .filter(([k]) => SHOWN_HEADERS.includes(k))
      .map(([k, v]) => `${k}: ${v}`),
  ];
  const status = result.status < 300 ? 'ok' : result.status < 400 ? 'warn' : 'fail';
  return { step: step('call', status, Math.round(ctx.monotonic() - t0), `HTTP ${result.status}${result.redirect ? ` → ${result.redirect} (not followed)` : ''}`, details), result, error: null };
}

/** Report progress around a step without the step knowing about terminals. */
function withProgress<A extends unknown[], R>(id: string, run: (ctx: Context, ...args: A) => Promise<R>) {
  return async (ctx: Context, ...args: A): Promise<R> => {
    ctx.progress?.(id, 'start');
    try {
      return await run(ctx, ...args);
    } finally {
      ctx.progress?.(id, 'end');
    }
  };
}

export const runDiscover = withProgress('discover', runDiscoverRaw);
export const runLoad = withProgress('load', runLoadRaw);
export const runMint = withProgress('mint', runMintRaw);
export const runVerify = withProgress('verify', runVerifyRaw);
export const runCall = withProgress('call', runCallRaw);
