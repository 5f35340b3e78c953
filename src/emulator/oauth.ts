// OAuth 2.0 token endpoint and tokeninfo (google-wire.md §2, §6.4).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { decodeJwt, verifyJwtSignature } from './keys.ts';
import { oauthError, oauthJson, readBody, send } from './http.ts';
import { OAUTH_TOKEN_AUDIENCE, type EmulatorState } from './state.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const SHORT_LIVED =
  'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values and use a clock with skew to account for clock differences between systems.';
// What a gcloud login consents to (gcloud's CLOUDSDK_SCOPES plus reauth): a refresh may ask for any of them.
const USER_SCOPES = ['openid', 'https://www.googleapis.com/auth/userinfo.email', 'https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/appengine.admin', 'https://www.googleapis.com/auth/sqlservice.login', 'https://www.googleapis.com/auth/compute', 'https://www.googleapis.com/auth/accounts.reauth'];

export async function tokenEndpoint(state: EmulatorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'Method Not Allowed');
  const form = new URLSearchParams(await readBody(req));
  const grantType = form.get('grant_type');
  if (grantType === JWT_BEARER) return jwtBearer(state, form, res);
  if (grantType === 'refresh_token') return refreshGrant(state, form, res);
  if (!grantType) return oauthError(res, 400, 'invalid_request', 'Missing required parameter: grant_type');
  return oauthError(res, 400, 'unsupported_grant_type', `Invalid grant_type: ${grantType}`);
}

function jwtBearer(state: EmulatorState, form: URLSearchParams, res: ServerResponse): void {
  const jwt = decodeJwt(form.get('assertion') ?? '');
  if (!jwt) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT Signature.');
  const { iss, aud, iat, exp, scope, target_audience: targetAudience } = jwt.claims as Record<string, unknown>;
  const account = typeof iss === 'string' ? state.serviceAccounts.get(iss) : undefined;
  if (!account || account.spec.disabled) return oauthError(res, 400, 'invalid_grant', 'Invalid grant: account not found');
  const candidates = account.keys.filter((k) => jwt.header.kid === undefined || k.key.kid === jwt.header.kid);
  const signer = candidates.find((k) => verifyJwtSignature(jwt, k.key.publicKey));
  if (!signer || signer.deleted) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT Signature.');
  if (signer.disabled) return oauthError(res, 401, 'disabled_client', 'The OAuth client was disabled.');
  const validAudience = typeof aud === 'string' && (aud === OAUTH_TOKEN_AUDIENCE || aud.startsWith(state.googleUrl) || /^https:\/\/(www|oauth2)\.googleapis\.com\/oauth2\/v[34]\/token$/.test(aud));
  if (!validAudience) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: Failed audience check.');
  const now = state.now();
  if (typeof iat !== 'number' || typeof exp !== 'number' || exp < iat || exp - iat > 3900 || iat > now + 300 || exp < now - 300) {
    return oauthError(res, 400, 'invalid_grant', SHORT_LIVED);
  }
  if (typeof targetAudience === 'string' && targetAudience !== '') {
    return oauthJson(res, {
      id_token: state.signIdToken({ aud: targetAudience, azp: account.uniqueId, email: account.spec.email, email_verified: true, sub: account.uniqueId }),
    });
  }
  const scopes = typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
  if (scopes.length === 0) return oauthError(res, 400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
  const { token, expiresIn } = state.issueAccessToken({ member: `serviceAccount:${account.spec.email}`, email: account.spec.email, scopes });
  return oauthJson(res, { access_token: token, expires_in: expiresIn - 1, token_type: 'Bearer' });
}

function refreshGrant(state: EmulatorState, form: URLSearchParams, res: ServerResponse): void {
  const clientId = form.get('client_id');
  const refreshToken = form.get('refresh_token');
  if (!clientId) return oauthError(res, 400, 'invalid_request', 'Missing required parameter: client_id');
  if (!refreshToken) return oauthError(res, 400, 'invalid_request', 'Missing required parameter: refresh_token');
  const user = state.users.get(refreshToken);
  const knownClient = [...state.users.values()].some((u) => u.clientId === clientId);
  if (!knownClient) return oauthError(res, 401, 'invalid_client', 'The OAuth client was not found.');
  if (!user || user.clientId !== clientId) return oauthError(res, 400, 'invalid_grant', 'Bad Request');
  if (form.get('client_secret') !== user.clientSecret) return oauthError(res, 401, 'invalid_client', 'Unauthorized');
  if (user.spec.revoked) return oauthError(res, 400, 'invalid_grant', 'Token has been expired or revoked.');
  if (user.spec.reauthRequired && !form.get('rapt')) {
    return oauthError(res, 400, 'invalid_grant', 'reauth related error (invalid_rapt)', {
      error_uri: 'https://support.google.com/a/answer/9368756',
      error_subtype: 'invalid_rapt',
    });
  }
  const requested = form.get('scope')?.split(' ').filter(Boolean);
  const scopes = requested && requested.length ? requested.filter((s) => USER_SCOPES.includes(s)) : USER_SCOPES;
  const { token, expiresIn } = state.issueAccessToken({ member: `user:${user.spec.email}`, email: user.spec.email, clientId, scopes }, 'ya29.a0');
  // A user cannot choose the audience: the ID token is always for the OAuth client, whatever target_audience says.
  const idToken = scopes.includes('openid')
    ? state.signIdToken({
        azp: clientId,
        aud: clientId,
        sub: user.sub,
        ...(user.spec.hd ? { hd: user.spec.hd } : {}),
        email: user.spec.email,
        email_verified: true,
        at_hash: createHash('sha256').update(token).digest().subarray(0, 16).toString('base64url'),
      })
    : undefined;
  return oauthJson(res, { access_token: token, expires_in: expiresIn - 1, scope: scopes.join(' '), token_type: 'Bearer', ...(idToken ? { id_token: idToken } : {}) });
}

export async function tokeninfoEndpoint(state: EmulatorState, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const params = req.method === 'POST' ? new URLSearchParams(await readBody(req)) : url.searchParams;
  const idToken = params.get('id_token');
  const accessToken = params.get('access_token') ?? (req.headers.authorization?.startsWith('Bearer ') ? req.headers.authorization.slice(7) : null);
  if (idToken !== null) {
    const jwt = decodeJwt(idToken);
    const key = jwt && state.googleKeys.find((k) => k.kid === jwt.header.kid);
    const exp = jwt?.claims.exp;
    if (!jwt || !key || !verifyJwtSignature(jwt, key.publicKey) || typeof exp !== 'number' || exp < state.now()) {
      return oauthJson400(res, { error_description: 'Invalid Value' });
    }
    const stringified = Object.fromEntries(Object.entries({ ...jwt.claims, alg: jwt.header.alg, kid: jwt.header.kid, typ: jwt.header.typ }).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]));
    return oauthJson(res, stringified);
  }
  const grant = accessToken ? state.accessTokens.get(accessToken) : undefined;
  if (!grant || grant.exp < state.now()) return oauthJson400(res, { error: 'invalid_token', error_description: 'Invalid Value' });
  return oauthJson(res, {
    azp: grant.clientId ?? state.findServiceAccount(grant.email ?? '')?.uniqueId ?? '',
    aud: grant.clientId ?? state.findServiceAccount(grant.email ?? '')?.uniqueId ?? '',
    sub: grant.email ? (state.findUserByEmail(grant.email)?.sub ?? state.findServiceAccount(grant.email)?.uniqueId ?? '') : '',
    scope: grant.scopes.join(' '),
    exp: String(grant.exp),
    expires_in: String(grant.exp - state.now()),
    ...(grant.email ? { email: grant.email, email_verified: 'true' } : {}),
    access_type: 'online',
  });
}

// tokeninfo's errors are not quite the OAuth dialect: a bad id_token gets only an error_description.
function oauthJson400(res: ServerResponse, body: object): void {
  send(res, 400, JSON.stringify(body), { 'content-type': 'application/json; charset=utf-8' });
}
