// IAM Service Account Credentials API (google-wire.md §4).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { apiError, apiJson, readBody } from './http.ts';
import type { AccessTokenGrant, EmulatorState, ServiceAccount } from './state.ts';

const SERVICE = 'iamcredentials.googleapis.com';
const IAM_SCOPES = ['https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/iam'];
const OIDC_SCOPES = ['openid', 'email', 'profile'];
const UNAUTHENTICATED_TAIL = 'Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

const PERMISSION_ROLES: Record<string, string[]> = {
  'iam.serviceAccounts.getOpenIdToken': ['roles/iam.serviceAccountTokenCreator', 'roles/iam.serviceAccountOpenIdTokenCreator', 'roles/iam.workloadIdentityUser', 'roles/owner'],
  'iam.serviceAccounts.getAccessToken': ['roles/iam.serviceAccountTokenCreator', 'roles/iam.workloadIdentityUser', 'roles/owner'],
  'iam.serviceAccounts.implicitDelegation': ['roles/iam.serviceAccountTokenCreator', 'roles/owner'],
};

const METHODS = {
  generateIdToken: { permission: 'iam.serviceAccounts.getOpenIdToken', rpc: 'GenerateIdToken' },
  generateAccessToken: { permission: 'iam.serviceAccounts.getAccessToken', rpc: 'GenerateAccessToken' },
} as const;

export async function iamEndpoint(state: EmulatorState, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const match = /^\/v1\/projects\/([^/]+)\/serviceAccounts\/([^/:]+):(generateIdToken|generateAccessToken)$/.exec(url.pathname);
  if (!match) return apiError(res, 404, 'NOT_FOUND', `Method not found.`);
  if (req.method !== 'POST') return apiError(res, 405, 'INVALID_ARGUMENT', 'Method not allowed.');
  const [, project, rawName, methodName] = match as unknown as [string, string, string, keyof typeof METHODS];
  const method = METHODS[methodName];
  const rpc = `google.iam.credentials.v1.IAMCredentials.${method.rpc}`;

  const caller = authenticate(state, req.headers.authorization, rpc);
  if ('error' in caller) return apiError(res, 401, 'UNAUTHENTICATED', caller.error, [caller.detail]);
  // The caller's token must carry cloud-platform or iam (§15.1): a VM with default access scopes has neither.
  // Federated (STS) tokens are scoped by the exchange, which asks for cloud-platform.
  if (!caller.grant.scopes.some((s) => IAM_SCOPES.includes(s))) {
    return apiError(res, 403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.', [
      { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT', domain: 'googleapis.com', metadata: { service: SERVICE, method: rpc } },
    ]);
  }

  let body: Record<string, unknown>;
  try {
    const text = await readBody(req);
    body = text ? JSON.parse(text) : {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not an object');
  } catch {
    return apiError(res, 400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
  }
  if (project !== '-') return apiError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');

  const targetName = decodeURIComponent(rawName);
  const delegates = Array.isArray(body.delegates) ? body.delegates.map((d) => String(d).replace(/^projects\/-\/serviceAccounts\//, '')) : [];
  // Each link of the chain needs implicit delegation on the next; the last needs the method's permission on the target.
  let member = caller.grant.member;
  for (const delegate of delegates) {
    const account = state.findServiceAccount(delegate);
    if (!account || account.spec.disabled || !permitted(state, account, 'iam.serviceAccounts.implicitDelegation', member)) {
      return permissionDenied(res, 'iam.serviceAccounts.implicitDelegation');
    }
    member = `serviceAccount:${account.spec.email}`;
  }
  const target = state.findServiceAccount(targetName);
  if (!target || target.spec.disabled || !permitted(state, target, method.permission, member)) return permissionDenied(res, method.permission);

  if (methodName === 'generateIdToken') {
    const audience = body.audience;
    if (typeof audience !== 'string' || audience === '') return apiError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');
    const includeEmail = body.includeEmail === true || body.includeEmail === 'true';
    const claims: Record<string, unknown> = { aud: audience, azp: target.uniqueId, sub: target.uniqueId };
    if (includeEmail) Object.assign(claims, { email: target.spec.email, email_verified: true });
    if (body.organizationNumberIncluded === true) claims.google = { organization_number: null };
    return apiJson(res, { token: state.signIdToken(claims) });
  }

  const scopes = body.scope;
  // Any https://www.googleapis.com/auth/… scope, and the short OpenID names gcloud sends (openid, email, profile; §15.2).
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => typeof s === 'string' && (/^https:\/\/www\.googleapis\.com\/auth\/[\w.-]+$/.test(s) || OIDC_SCOPES.includes(s)))) {
    return apiError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');
  }
  const lifetime = body.lifetime === undefined ? 3600 : /^(\d+)(\.\d+)?s$/.exec(String(body.lifetime))?.[1];
  if (lifetime === undefined || Number(lifetime) > 3600 || Number(lifetime) <= 0) {
    return apiError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');
  }
  const { token } = state.issueAccessToken({ member: `serviceAccount:${target.spec.email}`, email: target.spec.email, scopes: scopes as string[] });
  const grant = state.accessTokens.get(token)!;
  grant.exp = Math.min(grant.exp, state.now() + Number(lifetime));
  // Python's google-auth parses expireTime with "%Y-%m-%dT%H:%M:%SZ": no fractional seconds.
  return apiJson(res, { accessToken: token, expireTime: new Date(grant.exp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') });
}

function permitted(state: EmulatorState, account: ServiceAccount, permission: string, member: string): boolean {
  return state.hasRole(account.spec.bindings, PERMISSION_ROLES[permission] ?? [], member);
}

function permissionDenied(res: ServerResponse, permission: string): void {
  apiError(res, 403, 'PERMISSION_DENIED', `Permission '${permission}' denied on resource (or it may not exist).`, [
    { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'IAM_PERMISSION_DENIED', domain: 'iam.googleapis.com', metadata: { permission } },
  ]);
}

type Authenticated = { grant: AccessTokenGrant } | { error: string; detail: object };

export function authenticate(state: EmulatorState, header: string | undefined, rpc: string, service: string = SERVICE): Authenticated {
  const metadata = { method: rpc, service };
  if (!header || !/^Bearer\s+\S/i.test(header)) {
    return {
      error: `Request is missing required authentication credential. ${UNAUTHENTICATED_TAIL}`,
      detail: { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'CREDENTIALS_MISSING', domain: 'googleapis.com', metadata },
    };
  }
  const grant = state.accessTokens.get(header.replace(/^Bearer\s+/i, '').trim());
  const invalid = `Request had invalid authentication credentials. ${UNAUTHENTICATED_TAIL}`;
  if (!grant) return { error: invalid, detail: { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED', metadata } };
  if (grant.exp <= state.now()) {
    return { error: invalid, detail: { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_EXPIRED', domain: 'googleapis.com', metadata: {} } };
  }
  return { grant };
}
