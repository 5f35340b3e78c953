// Obtain the right kind of ID token for each credential type. google-auth-library speaks the protocols;
// this module decides which protocol, routes endpoints, and turns failures into cause codes.
import type { Context } from './context.ts';
import { IdcallError } from './errors.ts';
import type { LoadedCredential } from './load.ts';
import { impersonationTarget } from './load.ts';
import type { MetadataTarget } from './discover.ts';
import { classifyFailure, type IamParty, type Phase } from './classify.ts';
import { CLOUD_PLATFORM_SCOPE, GOOGLE_IAM_URL, GOOGLE_STS_URL, GOOGLE_TOKEN_URL, type Endpoints } from './endpoints.ts';
import { createRecordingClient, type Exchange } from './transport.ts';
import type { HttpClient } from './http.ts';
import { libraryTransporter } from './gal-transport.ts';
import { decodeJwtClaims } from './jwt.ts';
import { describeFileProblem, FileReadError, readBoundedFile, SUBJECT_TOKEN_MAX_BYTES } from './files.ts';
import { registerSecret } from './redact.ts';


export interface MintOptions {
  audience: string;
  /** `--impersonate-service-account`: mint for this service account whatever the source. */
  impersonate?: string;
  delegates?: string[];
  includeEmail?: boolean;
  /** Metadata server token format. */
  format?: 'standard' | 'full';
  endpoints: Endpoints;
  /** Bound for each request to a Google endpoint. */
  timeoutMs: number;
}

export interface MintResult {
  token: string;
  /** How it was obtained, in words: "JWT-bearer grant at …/token". */
  method: string;
  /** Who the token speaks for (email), when known. */
  principal: string | null;
  /** The source identity behind an impersonation. */
  caller: string | null;
  exchanges: Exchange[];
  /** A user's own ID token: its audience is the OAuth client, whatever was asked. */
  userToken: boolean;
}

export interface MintSource {
  credential: LoadedCredential | null;
  /** Set when the winning source is the metadata server. */
  metadata?: MetadataTarget;
}

interface Session {
  ctx: Context;
  options: MintOptions;
  exchanges: Exchange[];
  http: HttpClient;
}

/**
 * One bound for the whole step: every request, retry and backoff of a mint fits in `timeoutMs`,
 * so a hanging or flapping endpoint costs at most that, never the libraries' own minutes of retries.
 */
function session(ctx: Context, options: MintOptions, exchanges: Exchange[]): Session {
  const deadline = Date.now() + options.timeoutMs;
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs), ...(ctx.signal ? [ctx.signal] : [])]);
  return {
    ctx,
    options,
    exchanges,
    http: createRecordingClient({ endpoints: options.endpoints, timeoutMs: options.timeoutMs, exchanges, base: ctx.http, signal, retry: { attempts: 4, deadline } }),
  };
}

export async function mintIdToken(ctx: Context, source: MintSource, options: MintOptions): Promise<MintResult> {
  const exchanges: Exchange[] = [];
  const session_ = session(ctx, options, exchanges);
  try {
    const result = await mint(session_, source);
    return { ...result, exchanges };
  } catch (err) {
    // The report shows every exchange, the failed one included.
    throw Object.assign(err instanceof IdcallError ? err : classifyFailure(err, 'token', exchanges.at(-1)), { exchanges });
  }
}

type Minted = Omit<MintResult, 'exchanges'>;

export interface AccessTokenResult {
  principal: string | null;
  exchanges: Exchange[];
  /** Expiry as the endpoint stated it, when it did. */
  token: string;
}

/** An OAuth access token for the source (what `doctor` uses to show the credential works at all). */
export async function mintAccessToken(ctx: Context, source: MintSource, options: Omit<MintOptions, 'audience'>): Promise<AccessTokenResult> {
  const exchanges: Exchange[] = [];
  try {
    const result = await accessToken(session(ctx, { ...options, audience: '' }, exchanges), source);
    return { ...result, exchanges };
  } catch (err) {
    throw Object.assign(err instanceof IdcallError ? err : classifyFailure(err, 'token', exchanges.at(-1)), { exchanges });
  }
}

async function mint(s: Session, source: MintSource): Promise<Minted> {
  const { credential } = source;
  const { audience, impersonate } = s.options;
  if (impersonate) {
    const caller = await accessToken(s, source);
    const token = await generateIdToken(s, caller.token, impersonate, s.options.delegates ?? [], caller.principal);
    return { token, method: `generateIdToken for ${impersonate}, authorised by ${caller.principal ?? 'the source credential'}`, principal: impersonate, caller: caller.principal, userToken: false };
  }
  if (!credential) {
    const token = await metadataIdentity(s, source.metadata!);
    const principal = (decodeJwtClaims(token)?.email as string | undefined) ?? null;
    return { token, method: `metadata server identity (format=${s.options.format ?? 'full'})`, principal, caller: null, userToken: false };
  }
  switch (credential.type) {
    case 'service_account': {
      const client = await jwtClient(s, credential);
      const token = await guard(s, 'token', () => client.fetchIdToken(audience));
      return { token, method: 'JWT-bearer grant with target_audience at the token endpoint', principal: credential.principal, caller: null, userToken: false };
    }
    case 'authorized_user': {
      const client = await userClient(s, credential.json);
      const token = await guard(s, 'refresh', () => client.fetchIdToken(audience));
      if (typeof token !== 'string' || !token) {
        throw new IdcallError('TOKEN_ENDPOINT_ERROR', 'The token endpoint refreshed the user credentials but returned no id_token.', 'Log in again with the openid scope: gcloud auth application-default login');
      }
      const claims = decodeJwtClaims(token);
      return { token, method: 'refresh-token grant (the user\'s own ID token)', principal: (claims?.email as string) ?? credential.principal, caller: null, userToken: true };
    }
    case 'impersonated_service_account': {
      const caller = await accessToken(s, { credential: nestedSource(credential) });
      const target = credential.principal!;
      const delegates = (credential.json.delegates ?? []) as string[];
      const token = await generateIdToken(s, caller.token, target, delegates, caller.principal, iamBase(credential.json.service_account_impersonation_url));
      return { token, method: `generateIdToken for ${target}, authorised by ${caller.principal ?? 'the source credential'}`, principal: target, caller: caller.principal, userToken: false };
    }
    case 'external_account': {
      const target = typeof credential.json.service_account_impersonation_url === 'string' ? impersonationTarget(credential.json.service_account_impersonation_url) : null;
      if (!target) {
        throw new IdcallError(
          'FEDERATION_FAILED',
          `Workload identity federation alone cannot mint an ID token: ${credential.path ?? 'the configuration'} has no service_account_impersonation_url.`,
          'Grant the pool roles/iam.workloadIdentityUser on a service account and recreate the file with `gcloud iam workload-identity-pools create-cred-config … --service-account=SA_EMAIL`, or pass --impersonate-service-account SA_EMAIL.',
        );
      }
      const federated = await federatedToken(s, credential);
      const token = await generateIdToken(s, federated.token, target, [], federated.principal, iamBase(credential.json.service_account_impersonation_url));
      return { token, method: `STS token exchange, then generateIdToken for ${target}`, principal: target, caller: federated.principal, userToken: false };
    }
    case 'external_account_authorized_user':
    case 'gdch_service_account':
      throw new IdcallError(
        'UNSUPPORTED_CREDENTIAL_TYPE',
        `${credential.type} credentials cannot mint Google-signed ID tokens for Cloud Run.`,
        'Impersonate a service account: pass --impersonate-service-account SA_EMAIL (the principal needs roles/iam.serviceAccountTokenCreator on it).',
      );
    default:
      throw new IdcallError('UNSUPPORTED_CREDENTIAL_TYPE', `Credential type ${credential.type} cannot mint an ID token.`, 'Use a service-account key or impersonation.');
  }
}

interface AccessToken {
  token: string;
  principal: string | null;
}

/** An OAuth access token for the source credential: the bearer for IAM Credentials calls. */
async function accessToken(s: Session, source: MintSource): Promise<AccessToken> {
  const { credential } = source;
  if (!credential) return metadataAccessToken(s, source.metadata!);
  switch (credential.type) {
    case 'service_account': {
      const client = await jwtClient(s, credential, [CLOUD_PLATFORM_SCOPE]);
      const { token } = await guard(s, 'token', () => client.getAccessToken());
      return { token: requireToken(token), principal: credential.principal };
    }
    case 'authorized_user': {
      const client = await userClient(s, credential.json);
      const { token } = await guard(s, 'refresh', () => client.getAccessToken());
      const idToken = (client.credentials as { id_token?: string }).id_token;
      const email = idToken ? (decodeJwtClaims(idToken)?.email as string | undefined) : undefined;
      return { token: requireToken(token), principal: email ?? credential.principal };
    }
    case 'impersonated_service_account': {
      const caller = await accessToken(s, { credential: nestedSource(credential) });
      const token = await generateAccessToken(s, caller.token, credential.principal!, (credential.json.delegates ?? []) as string[], caller.principal, iamBase(credential.json.service_account_impersonation_url));
      return { token, principal: credential.principal };
    }
    case 'external_account': {
      const federated = await federatedToken(s, credential);
      const target = typeof credential.json.service_account_impersonation_url === 'string' ? impersonationTarget(credential.json.service_account_impersonation_url) : null;
      if (!target) return federated;
      const token = await generateAccessToken(s, federated.token, target, [], federated.principal, iamBase(credential.json.service_account_impersonation_url));
      return { token, principal: target };
    }
    case 'external_account_authorized_user': {
      const { ExternalAccountAuthorizedUserClient } = await import('./auth-library.ts');
      const client = new ExternalAccountAuthorizedUserClient({ ...(credential.json as any), transporter: transporter(s) });
      const { token } = await guard(s, 'refresh', () => client.getAccessToken());
      return { token: requireToken(token), principal: credential.principal };
    }
    default:
      throw new IdcallError('UNSUPPORTED_CREDENTIAL_TYPE', `${credential.type} credentials cannot be used as an impersonation source.`, 'Use a service-account key, user credentials or the metadata server as the source.');
  }
}

function nestedSource(credential: LoadedCredential): LoadedCredential {
  const json = credential.json.source_credentials as Record<string, any>;
  return { type: json.type, path: credential.path, json, principal: ((json.client_email as string) ?? (json.account as string)) || null, details: [], warnings: [] };
}

// Retries are the recording client's (bounded by the step's deadline); gaxios' own would outlast it.
const transporter = (s: Session) => libraryTransporter(s.http) as never;

async function jwtClient(s: Session, credential: LoadedCredential, scopes?: string[]) {
  const { JWT } = await import('./auth-library.ts');
  const json = credential.json;
  // google-auth-library posts to https://oauth2.googleapis.com/token whatever the key says; the transport routes it
  // to the key's token_uri (as Python's and Go's libraries honour it) unless a flag or env overrides.
  if (!s.options.endpoints.token && typeof json.token_uri === 'string') s.options.endpoints.token = json.token_uri;
  // A project id given, so the library never goes looking for one (a metadata-server round trip off Google Cloud).
  const projectId = typeof json.project_id === 'string' ? { projectId: json.project_id } : {};
  return new JWT({ email: json.client_email, key: json.private_key, keyId: json.private_key_id, ...projectId, ...(scopes ? { scopes } : {}), transporter: transporter(s) });
}

async function userClient(s: Session, json: Record<string, any>) {
  const { UserRefreshClient } = await import('./auth-library.ts');
  const tokenUrl = s.options.endpoints.token ?? json.token_uri ?? GOOGLE_TOKEN_URL;
  return new UserRefreshClient({
    clientId: json.client_id,
    clientSecret: json.client_secret,
    refreshToken: json.refresh_token,
    endpoints: { oauth2TokenUrl: tokenUrl },
    transporter: transporter(s),
  });
}

/**
 * STS only: the federated token. google-auth-library reads the subject token (file, URL, executable, AWS signing);
 * the exchange itself goes through our bounded transport, since the library's STS client has a transport of its own.
 */
async function federatedToken(s: Session, credential: LoadedCredential): Promise<AccessToken> {
  const lib = await import('./auth-library.ts');
  const { service_account_impersonation_url: _drop, service_account_impersonation: _drop2, ...json } = credential.json;
  const options = { ...(json as any), transporter: transporter(s) };
  const cs = json.credential_source ?? {};
  let client;
  try {
    client = cs.environment_id ? new lib.AwsClient(options) : cs.executable ? new lib.PluggableAuthClient(options) : new lib.IdentityPoolClient(options);
  } catch (err) {
    throw new IdcallError('FEDERATION_FAILED', `The federation configuration ${credential.path ?? ''} is not usable: ${(err as Error).message}`, 'Recreate it with `gcloud iam workload-identity-pools create-cred-config`.', { cause: err });
  }
  // The library reads the file with no bound: a FIFO would hang it and /dev/zero exhaust memory. Check it first.
  if (typeof cs.file === 'string') {
    try {
      await readBoundedFile(cs.file, SUBJECT_TOKEN_MAX_BYTES);
    } catch (err) {
      throw new IdcallError('FEDERATION_FAILED', `The subject token file ${cs.file} (credential_source.file) ${err instanceof FileReadError ? describeFileProblem(err.problem) : 'cannot be read'}.`, 'Check credential_source.file in the configuration and that the process writing it runs.', { cause: err });
    }
  }
  const subjectToken = await guard(s, 'sts', () => client.retrieveSubjectToken());
  registerSecret(subjectToken);
  const form = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    audience: String(json.audience),
    scope: CLOUD_PLATFORM_SCOPE,
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    subject_token: subjectToken,
    subject_token_type: String(json.subject_token_type),
  });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (json.client_id && json.client_secret) headers.authorization = `Basic ${Buffer.from(`${json.client_id}:${json.client_secret}`).toString('base64')}`;
  else if (json.workforce_pool_user_project) form.set('options', JSON.stringify({ userProject: json.workforce_pool_user_project }));
  const stsUrl = s.options.endpoints.sts ?? json.token_url ?? GOOGLE_STS_URL;
  const data = await guard(s, 'sts', async () => {
    const res = await s.http(stsUrl, { method: 'POST', headers, body: form.toString() });
    const text = res.text();
    if (!res.ok) throw Object.assign(new Error(`STS answered ${res.status}`), { status: res.status });
    return parseJsonObject(text, 'The Security Token Service');
  });
  const pool = /workloadIdentityPools\/([^/]+)/.exec(String(json.audience))?.[1];
  return { token: requireToken(data.access_token), principal: pool ? `federated principal of pool ${pool}` : 'federated principal' };
}

function iamBase(impersonationUrl: unknown): string | undefined {
  if (typeof impersonationUrl !== 'string') return undefined;
  const match = /^(https?:\/\/[^/]+)\/v1\//.exec(impersonationUrl);
  return match?.[1];
}

function iamUrl(s: Session, sa: string, method: string, fileBase?: string): string {
  const base = (s.options.endpoints.iam ?? fileBase ?? GOOGLE_IAM_URL).replace(/\/$/, '');
  return `${base}/v1/projects/-/serviceAccounts/${encodeURIComponent(sa)}:${method}`;
}

const delegateEmails = (delegates: string[]) => delegates.map((d) => d.replace(/^projects\/[^/]+\/serviceAccounts\//, ''));
const delegateNames = (delegates: string[]) => delegates.map((d) => (d.startsWith('projects/') ? d : `projects/-/serviceAccounts/${d}`));

async function generateIdToken(s: Session, bearer: string, sa: string, delegates: string[], caller: string | null, fileBase?: string): Promise<string> {
  const body = { audience: s.options.audience, includeEmail: s.options.includeEmail ?? true, delegates: delegateNames(delegates) };
  const data = await iamCall(s, iamUrl(s, sa, 'generateIdToken', fileBase), bearer, body, { sa, caller, permission: 'getOpenIdToken', delegates: delegateEmails(delegates) });
  if (typeof data.token !== 'string') throw new IdcallError('TOKEN_ENDPOINT_ERROR', 'generateIdToken answered 200 without a token.', 'Check --iam-url points at IAM Credentials.');
  return data.token;
}

async function generateAccessToken(s: Session, bearer: string, sa: string, delegates: string[], caller: string | null, fileBase?: string): Promise<string> {
  const body = { scope: [CLOUD_PLATFORM_SCOPE], lifetime: '3600s', delegates: delegateNames(delegates) };
  const data = await iamCall(s, iamUrl(s, sa, 'generateAccessToken', fileBase), bearer, body, { sa, caller, permission: 'getAccessToken', delegates: delegateEmails(delegates) });
  if (typeof data.accessToken !== 'string') throw new IdcallError('TOKEN_ENDPOINT_ERROR', 'generateAccessToken answered 200 without an accessToken.', 'Check --iam-url points at IAM Credentials.');
  return data.accessToken;
}

async function iamCall(s: Session, url: string, bearer: string, body: object, who: IamParty): Promise<Record<string, any>> {
  return guard(
    s,
    'iam',
    async () => {
      const res = await s.http(url, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = res.text();
      if (!res.ok) throw Object.assign(new Error(`IAM Credentials answered ${res.status}`), { status: res.status });
      return parseJsonObject(text, 'IAM Credentials');
    },
    who,
  );
}

async function metadataIdentity(s: Session, target: MetadataTarget): Promise<string> {
  const format = s.options.format ?? 'full';
  // The audience must be encoded: a custom audience may hold ? and &.
  const url = `${target.base}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(s.options.audience)}&format=${format}`;
  return guard(s, 'metadata', async () => {
    const res = await s.http(url, { headers: { 'Metadata-Flavor': 'Google' }, direct: true });
    const text = res.text();
    if (!res.ok) throw Object.assign(new Error(`metadata server answered ${res.status}`), { status: res.status, body: text });
    if (res.headers.get('metadata-flavor') !== 'Google') throw new Error('the response has no Metadata-Flavor: Google header');
    if (text.split('.').length !== 3) throw new Error('the answer is not a JWT');
    return text.trim();
  });
}

async function metadataAccessToken(s: Session, target: MetadataTarget): Promise<AccessToken> {
  const data = await guard(s, 'metadata', async () => {
    const res = await s.http(`${target.base}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' }, direct: true });
    const text = res.text();
    if (!res.ok) throw Object.assign(new Error(`metadata server answered ${res.status}`), { status: res.status, body: text });
    return parseJsonObject(text, 'the metadata server');
  });
  const emailRes = await guard(s, 'metadata', async () => {
    const res = await s.http(`${target.base}/computeMetadata/v1/instance/service-accounts/default/email`, { headers: { 'Metadata-Flavor': 'Google' }, direct: true });
    return res.ok ? res.text().trim() : null;
  });
  return { token: requireToken(data.access_token), principal: emailRes };
}

/** Run one protocol exchange; any failure becomes an IdcallError blaming the right component. */
async function guard<T>(s: Session, phase: Phase, work: () => Promise<T>, who?: IamParty): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw classifyFailure(err, phase, s.exchanges.at(-1), who);
  }
}

function requireToken(token: unknown): string {
  if (typeof token !== 'string' || token === '') throw new IdcallError('TOKEN_ENDPOINT_ERROR', 'The token endpoint answered without a token.', 'Check that the token URL points at Google (or a faithful proxy).');
  return token;
}

function parseJsonObject(text: string, who: string): Record<string, any> {
  try {
    const value = JSON.parse(text);
    if (typeof value === 'object' && value !== null) return value;
  } catch {
    // fall through
  }
  // A plain error: guard() classifies it by phase (metadata, STS, IAM), with the 200 status it saw.
  throw new Error(`${who} answered with a body that is not JSON (${describeBody(text)})`);
}

export function describeBody(text: string): string {
  if (/<html|<!doctype/i.test(text)) return 'an HTML page';
  if (text.length === 0) return 'empty';
  return `${text.length} bytes`;
}
