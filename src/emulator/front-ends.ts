// The front ends that are not plain Cloud Run, as google-wire.md describes their answers: a 1st-gen Cloud Function
// (§12.1), Identity-Aware Proxy (§11.3, §11.6) and API Gateway / ESPv2 (§13.2). Each echoes what it let through as
// JSON, so tests see which token, header and identity arrived.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BODY_LIMITS, countBody, readBodyBytes, send } from './http.ts';
import { checkGoogleIdToken, developmentAudienceAccepted, forbiddenPage, gfeHeaders, principalOf, unauthorizedPage, type ServiceIdentity } from './service.ts';
import type { EmulatorState } from './state.ts';
import { sign } from 'node:crypto';
import { numericId } from './keys.ts';

const bearerOf = (header: string | undefined) => (header ? (/^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? '') : undefined);

async function echo(req: IncomingMessage, res: ServerResponse, url: URL, service: ServiceIdentity, member: string, claims: Record<string, unknown>, extra: Record<string, unknown>, headers: Record<string, string>): Promise<void> {
  const bodyBytes = await countBody(req, service.spec.kind === 'function' && service.spec.generation === 1 ? BODY_LIMITS.functionGen1 : BODY_LIMITS.cloudRun);
  send(
    res,
    200,
    JSON.stringify({ service: service.spec.name, kind: service.spec.kind, method: req.method, path: url.pathname + url.search, caller: member.replace(/^[a-zA-Z]+:/, ''), member, audience: claims.aud, ...extra, bodyBytes }),
    { ...headers, 'content-type': 'application/json' },
  );
}

/** 1st gen: the function URL with its name is the only audience, and roles/cloudfunctions.invoker is the grant. */
export function functionGen1Handler(state: EmulatorState, service: ServiceIdentity) {
  const FUNCTION_INVOKERS = ['roles/cloudfunctions.invoker', 'roles/cloudfunctions.admin', 'roles/owner', 'roles/editor'];
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const gfe = gfeHeaders();
    const page = (status: 401 | 403) =>
      send(res, status, status === 403 ? forbiddenPage(url.pathname) : unauthorizedPage(url.pathname), {
        ...gfe,
        'content-type': 'text/html; charset=UTF-8',
        ...(status === 401 ? { 'www-authenticate': 'Bearer error="invalid_token" error_description="The access token could not be verified"' } : {}),
      });
    // Anonymous callers get 403 whatever the path, even for a function that does not exist (§12.1).
    const bearer = bearerOf(req.headers.authorization);
    if (bearer === undefined) return page(403);
    if (!url.pathname.startsWith(`/${service.spec.name}`)) return page(403);
    const checked = checkGoogleIdToken(state, bearer);
    if (!('claims' in checked)) return page(401);
    const member = principalOf(state, checked.claims);
    // Only the URL with the function's name: the bare host (what a library that sends the origin mints for) is 401.
    const accepted = [`${service.localUrl}/${service.spec.name}`, ...service.runUrls];
    if (!accepted.includes(String(checked.claims.aud)) && !developmentAudienceAccepted(state, String(checked.claims.aud), member)) return page(401);
    if (!state.hasRole(service.spec.bindings, FUNCTION_INVOKERS, member)) return page(403);
    return echo(req, res, url, service, member, checked.claims, { generation: 1 }, gfe);
  };
}

/** IAP (§11.6): Proxy-Authorization first, then Authorization; the OAuth client ID as audience; an email claim. */
export function iapHandler(state: EmulatorState, service: ServiceIdentity) {
  const ACCESSORS = ['roles/iap.httpsResourceAccessor', 'roles/owner'];
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const iap = service.spec.iap!;
    const headers = { 'x-goog-iap-generated-response': 'true', server: 'Google Frontend', 'content-type': 'text/html; charset=UTF-8' };
    const refuse = (status: number, text: string, more: Record<string, string> = {}) => send(res, status, text, { ...headers, ...more });
    const fromProxy = bearerOf(req.headers['proxy-authorization'] as string | undefined);
    const fromAuthorization = bearerOf(req.headers.authorization);
    const bearer = fromProxy && 'claims' in checkGoogleIdToken(state, fromProxy) ? fromProxy : (fromAuthorization ?? fromProxy);
    if (!bearer) {
      if (req.headers['x-requested-with'] === 'XMLHttpRequest') return refuse(401, 'Invalid IAP credentials: empty token');
      const nonce = Buffer.from(String(Math.random())).toString('base64url').slice(0, 22).padEnd(22, 'A');
      const location = `https://accounts.google.com/o/oauth2/v2/auth?client_id=${iap.clientId}&response_type=code&scope=openid+email&redirect_uri=https://iap.googleapis.com/v1/oauth/clientIds/${iap.clientId}:handleRedirect&code_challenge=${'A'.repeat(43)}&code_challenge_method=S256&cred_ref=true&state=emulated`;
      return refuse(302, 'Invalid IAP credentials: empty token', { location, 'set-cookie': `GCP_IAP_XSRF_NONCE_${nonce}=1; path=/; Secure; HttpOnly` });
    }
    const checked = checkGoogleIdToken(state, bearer);
    if (!('claims' in checked)) {
      const text = checked.problem === 'not_jwt' || checked.problem === 'access_token' ? 'Unable to parse JWT' : checked.problem === 'expired' ? 'Expired JWT' : 'JWT signature is invalid';
      return refuse(401, `Invalid IAP credentials: ${text}`);
    }
    const { claims } = checked;
    // A Google-managed client is blocked for programmatic use until allowlisted (§11.2).
    const accepted = [...(iap.googleManagedClient ? [] : [iap.clientId]), ...(iap.programmaticClients ?? [])];
    if (!accepted.includes(String(claims.aud))) return refuse(401, 'Invalid IAP credentials: Invalid bearer token. Invalid JWT audience.');
    if (typeof claims.email !== 'string') return refuse(401, "Invalid IAP credentials: JWT 'email' claim isn't a string");
    const member = principalOf(state, claims);
    if (!state.hasRole(service.spec.bindings, ACCESSORS, member)) {
      const requested = `${service.runUrls[0] ?? service.localUrl}${url.pathname}`;
      return refuse(403, `IAP_App: Access denied for user ${claims.email} requesting ${requested}. If you should have access, contact admin@example.com and include the full text of this message.`);
    }
    state.iapAssertions.set(service.spec.name, iapAssertion(state, service, claims));
    return echo(req, res, url, service, member, claims, { iapJwtAssertion: 'present', via: fromProxy === bearer ? 'Proxy-Authorization' : 'Authorization', authenticatedUserEmail: `accounts.google.com:${claims.email}`, ...(fromProxy === bearer && fromAuthorization !== undefined ? { applicationAuthorization: 'present' } : {}) }, { server: 'Google Frontend' });
  };
}

/** The ES256 assertion IAP passes to the app (§11.4): iss cloud.google.com/iap, the resource as aud, 10 minutes. */
function iapAssertion(state: EmulatorState, service: ServiceIdentity, claims: Record<string, unknown>): string {
  const iap = service.spec.iap!;
  const { number, id } = state.scenario.project;
  const aud =
    iap.frontEnd === 'app-engine' ? `/projects/${number}/apps/${id}` : iap.frontEnd === 'cloud-run' ? `/projects/${number}/locations/${service.spec.region ?? 'us-central1'}/services/${service.spec.name}` : `/projects/${number}/global/backendServices/${numericId(iap.backendService ?? service.spec.name, 19)}`;
  const iat = state.now();
  const header = { alg: 'ES256', kid: state.iapKey.kid, typ: 'JWT' };
  const payload = { aud, azp: aud, email: claims.email, exp: iat + 600, iat, identity_source: 'GOOGLE', iss: 'https://cloud.google.com/iap', sub: `accounts.google.com:${String(claims.sub)}` };
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  // JWS ES256 signatures are r || s (IEEE P1363), not DER.
  return `${input}.${sign('sha256', Buffer.from(input), { key: state.iapKey.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/** ESPv2 (§13): a JSON envelope for every refusal, 403 only for the audience, the JWT from Authorization or ?access_token. */
export function gatewayHandler(state: EmulatorState, service: ServiceIdentity) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const gw = service.spec.gateway ?? {};
    const realm = `${service.runUrls[0] ?? service.localUrl}${url.pathname}`.slice(0, 256);
    const refuse = (status: number, message: string) =>
      send(res, status, JSON.stringify({ code: status, message }), { 'content-type': 'application/json', 'www-authenticate': message === 'Jwt is missing' ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="invalid_token"` });
    const bearer = bearerOf(req.headers.authorization) ?? (req.headers['x-goog-iap-jwt-assertion'] as string | undefined) ?? url.searchParams.get('access_token') ?? undefined;
    if (!bearer) return refuse(401, 'Jwt is missing');
    if (bearer.split('.').length !== 3) return refuse(401, 'Jwt is not in the form of Header.Payload.Signature');
    const checked = checkGoogleIdToken(state, bearer);
    if (!('claims' in checked)) {
      const message = checked.problem === 'expired' ? 'Jwt is expired' : checked.problem === 'issuer' ? 'Jwt issuer is not configured' : checked.problem === 'not_jwt' ? 'Jwt header is an invalid Base64url input or an invalid JSON' : 'Jwt verification fails';
      return refuse(401, message);
    }
    const { claims } = checked;
    const issuers = gw.issuers ?? ['https://accounts.google.com'];
    if (!issuers.includes(String(claims.iss))) return refuse(401, 'Jwt issuer is not configured');
    const audiences = gw.audiences ?? [`https://${gw.serviceName ?? service.spec.name}`];
    if (!audiences.includes(String(claims.aud))) return refuse(403, 'Audiences in Jwt are not allowed');
    const member = principalOf(state, claims);
    const userinfo = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const backend = gw.backend ? state.backends.get(gw.backend) : undefined;
    if (!backend) return echo(req, res, url, service, member, claims, { forwardedAuthorization: 'present', userinfoHeader: 'X-Apigateway-Api-Userinfo', userinfoBytes: userinfo.length }, {});
    // Backend auth (§13.4): the gateway's own ID token for the backend in Authorization, the caller's moved to
    // X-Forwarded-Authorization, the verified claims in X-Apigateway-Api-Userinfo.
    const account = state.findServiceAccount(gw.serviceAccount ?? '');
    if (!account) return refuse(500, `Token not found for audience: ${backend.runUrls[0]}`);
    const backendToken = state.signIdToken({ aud: backend.runUrls[0], azp: account.uniqueId, email: account.spec.email, email_verified: true, sub: account.uniqueId });
    const body = await readBodyBytes(req, BODY_LIMITS.cloudRun);
    const answer = await fetch(new URL(url.pathname + url.search, backend.localUrl), {
      method: req.method ?? 'GET',
      headers: { authorization: `Bearer ${backendToken}`, 'x-forwarded-authorization': String(req.headers.authorization ?? ''), 'x-apigateway-api-userinfo': userinfo, ...(req.headers['content-type'] ? { 'content-type': String(req.headers['content-type']) } : {}) },
      ...(body.length && req.method !== 'GET' && req.method !== 'HEAD' ? { body } : {}),
    });
    return send(res, answer.status, await answer.text(), { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
  };
}
