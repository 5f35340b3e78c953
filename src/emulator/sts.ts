// Security Token Service token exchange (google-wire.md §5), and the external IdP that issues subject tokens.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeJwt, publicJwk, verifyJwtSignature } from './keys.ts';
import { oauthError, oauthJson, readBody, send } from './http.ts';
import type { EmulatorState } from './state.ts';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const OIDC_TYPES = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];
const BAD_AUDIENCE =
  'Invalid value for "audience". This value should be the full resource name of the Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token for the list of possible formats.';
const BAD_TARGET =
  'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.';

export async function stsEndpoint(state: EmulatorState, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  if (url.pathname !== '/v1/token') return oauthError(res, 404, 'invalid_request', 'Not Found');
  if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'Method Not Allowed');
  const form = new URLSearchParams(await readBody(req));
  if (form.get('grant_type') !== TOKEN_EXCHANGE) return oauthError(res, 400, 'unsupported_grant_type', `Invalid value for "grant_type".`);

  const audience = form.get('audience') ?? '';
  const parsed = /^\/\/iam\.googleapis\.com\/projects\/(\d+)\/locations\/global\/workloadIdentityPools\/([^/]+)\/providers\/([^/]+)$/.exec(audience);
  if (!parsed) return oauthError(res, 400, 'invalid_request', BAD_AUDIENCE);
  const [, projectNumber, poolId, providerId] = parsed as unknown as [string, string, string, string];
  const pool = state.scenario.pools.find((p) => p.id === poolId);
  const provider = pool?.providers.find((p) => p.id === providerId);
  if (projectNumber !== state.scenario.project.number || !pool || pool.disabled || !provider || provider.disabled) {
    return oauthError(res, 400, 'invalid_target', BAD_TARGET);
  }
  if (form.get('requested_token_type') !== ACCESS_TOKEN_TYPE) {
    return oauthError(res, 400, 'invalid_request', 'Invalid value for "requested_token_type". The only supported value is urn:ietf:params:oauth:token-type:access_token.');
  }
  if (!OIDC_TYPES.includes(form.get('subject_token_type') ?? '')) {
    return oauthError(res, 400, 'invalid_request', 'Invalid value for "subject_token_type". This provider accepts OIDC tokens only.');
  }

  const jwt = decodeJwt(form.get('subject_token') ?? '');
  if (!jwt || typeof jwt.header.kid !== 'string') return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: the token must be a well-formed JWT with a kid.');
  const claims = jwt.claims as { iss?: unknown; aud?: unknown; sub?: unknown; exp?: unknown; iat?: unknown };
  if (claims.iss !== (provider.issuer ?? state.externalIssuer())) return oauthError(res, 400, 'invalid_grant', 'The issuer in JWT does not match the expected issuer.');
  if (jwt.header.kid !== state.externalIdpKey.kid || !verifyJwtSignature(jwt, state.externalIdpKey.publicKey)) {
    return oauthError(res, 400, 'invalid_grant', 'Invalid JWT signature.');
  }
  const resource = state.providerResource(poolId, providerId);
  const allowed = provider.allowedAudiences ?? [resource, `https:${resource}`];
  const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!auds.some((a) => allowed.includes(String(a)))) return oauthError(res, 400, 'invalid_grant', 'The audience in JWT does not match the expected values.');
  const now = state.now();
  if (typeof claims.exp !== 'number' || claims.exp < now) return oauthError(res, 400, 'invalid_grant', 'The token has expired.');
  if (typeof claims.iat !== 'number' || claims.iat > now + 300 || claims.exp - claims.iat > 48 * 3600) {
    return oauthError(res, 400, 'invalid_grant', 'The token has an invalid iat or exp: it must be issued in the past and expire less than 48 hours after issue.');
  }
  if (typeof claims.sub !== 'string' || claims.sub === '') return oauthError(res, 400, 'invalid_grant', 'The JWT must have a "sub" claim.');

  const member = `principal://iam.googleapis.com/projects/${projectNumber}/locations/global/workloadIdentityPools/${poolId}/subject/${claims.sub}`;
  const scopes = (form.get('scope') ?? 'https://www.googleapis.com/auth/cloud-platform').split(' ').filter(Boolean);
  const { token, expiresIn } = state.issueAccessToken({ member, scopes }, 'ya29.d.');
  return oauthJson(res, { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: expiresIn - 1 });
}

/** The external IdP a workload would get its subject token from (a CI's OIDC endpoint, another cloud's metadata). */
export function externalIdpEndpoint(state: EmulatorState, _req: IncomingMessage, res: ServerResponse, url: URL): void {
  if (url.pathname === '/external/.well-known/openid-configuration') {
    return send(res, 200, JSON.stringify({ issuer: state.externalIssuer(), jwks_uri: `${state.externalIssuer()}/jwks` }), { 'content-type': 'application/json' });
  }
  if (url.pathname === '/external/jwks') return send(res, 200, JSON.stringify({ keys: [publicJwk(state.externalIdpKey)] }), { 'content-type': 'application/json' });
  if (url.pathname === '/external/token') {
    const pool = state.scenario.pools[0];
    const defaultAudience = pool?.providers[0] ? `https:${state.providerResource(pool.id, pool.providers[0].id)}` : 'https://example.invalid';
    const token = state.externalSubjectToken(url.searchParams.get('audience') ?? defaultAudience, url.searchParams.get('subject') ?? undefined);
    if (url.searchParams.get('format') === 'text') return send(res, 200, token, { 'content-type': 'text/plain' });
    return send(res, 200, JSON.stringify({ id_token: token }), { 'content-type': 'application/json' });
  }
  return send(res, 404, 'Not Found', { 'content-type': 'text/plain' });
}
