// A private Cloud Run service with authentication required (google-wire.md §7), and the other front ends that sit
// where one would: Cloud Functions (§12), IAP (§11) and API Gateway (§13), in front-ends.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeJwt, verifyJwtSignature } from './keys.ts';
import { BODY_LIMITS, countBody, send } from './http.ts';
import { ADC_CLIENT_ID, GCLOUD_CLIENT_ID, type ServiceSpec } from './scenario.ts';
import type { EmulatorState } from './state.ts';
import { functionGen1Handler, gatewayHandler, iapHandler } from './front-ends.ts';

const INVOKER_ROLES = ['roles/run.invoker', 'roles/run.admin', 'roles/run.developer', 'roles/owner', 'roles/editor'];

export interface ServiceIdentity {
  spec: ServiceSpec;
  /** The local URL the emulator serves it on (http://127.0.0.1:PORT). */
  localUrl: string;
  /** The run.app URLs it stands for: deterministic and hash form. */
  runUrls: string[];
}

/** The URLs a service stands for in production: its run.app URLs, a function's URL, an IAP or gateway host. */
export function runUrls(state: EmulatorState, spec: ServiceSpec): string[] {
  const region = spec.region ?? 'us-central1';
  const run = [`https://${spec.name}-${state.scenario.project.number}.${region}.run.app`, `https://${spec.name}-emu${state.scenario.project.number.slice(-6)}-uc.a.run.app`];
  switch (spec.kind ?? 'cloud_run') {
    case 'function': {
      const fn = `https://${region}-${state.scenario.project.id}.cloudfunctions.net/${spec.name}`;
      return spec.generation === 1 ? [fn] : [fn, ...run];
    }
    case 'iap':
      return spec.iap?.frontEnd === 'cloud-run' ? run : [`https://${spec.iap?.host ?? `${state.scenario.project.id}.uc.r.appspot.com`}`];
    case 'api_gateway':
      return [`https://${spec.gateway?.host ?? `${spec.name}-gateway.uc.gateway.dev`}`];
    default:
      return run;
  }
}

export function serviceHandler(state: EmulatorState, service: ServiceIdentity) {
  switch (service.spec.kind ?? 'cloud_run') {
    case 'function':
      return service.spec.generation === 1 ? functionGen1Handler(state, service) : cloudRunHandler(state, service);
    case 'iap':
      return iapHandler(state, service);
    case 'api_gateway':
      return gatewayHandler(state, service);
    default:
      return cloudRunHandler(state, service);
  }
}

/** Google's front end's marks on every answer. */
export const gfeHeaders = () => ({
  server: 'Google Frontend',
  // A 32-hex trace id, then the span, then o=1 when sampled (§7.3).
  'x-cloud-trace-context': `${Math.random().toString(16).slice(2).padEnd(32, '0').slice(0, 32)}/${Math.floor(Math.random() * 1e15)};o=1`,
  'alt-svc': 'h3=":443"; ma=2592000,h3-29=":443"; ma=2592000',
});

/** The claims of a Google-signed, unexpired ID token, or why there are none (what each front end words its own way). */
export function checkGoogleIdToken(state: EmulatorState, bearer: string): { claims: Record<string, unknown> } | { problem: 'not_jwt' | 'signature' | 'expired' | 'issuer' | 'access_token' } {
  if (state.accessTokens.has(bearer)) return { problem: 'access_token' };
  const jwt = decodeJwt(bearer);
  if (!jwt) return { problem: 'not_jwt' };
  const key = state.googleKeys.find((k) => k.kid === jwt.header.kid);
  if (!key || !verifyJwtSignature(jwt, key.publicKey)) return { problem: 'signature' };
  const claims = jwt.claims as Record<string, unknown>;
  if (claims.iss !== 'https://accounts.google.com' && claims.iss !== 'accounts.google.com') return { problem: 'issuer' };
  if (typeof claims.exp !== 'number' || claims.exp < state.now()) return { problem: 'expired' };
  return { claims };
}

function cloudRunHandler(state: EmulatorState, service: ServiceIdentity) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const gfe = gfeHeaders();
    const page = (status: 401 | 403) => {
      const body = status === 403 ? forbiddenPage(url.pathname) : unauthorizedPage(url.pathname);
      const headers: Record<string, string> = { ...gfe, 'content-type': 'text/html; charset=UTF-8' };
      if (status === 401) headers['www-authenticate'] = 'Bearer error="invalid_token" error_description="The access token could not be verified"';
      send(res, status, body, headers);
    };
    // X-Serverless-Authorization wins when both are present, so the application keeps its own Authorization.
    const header = (req.headers['x-serverless-authorization'] as string | undefined) ?? req.headers.authorization;
    if (!header) return page(403);
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    if (!bearer) return page(401);
    const checked = checkGoogleIdToken(state, bearer);
    if (!('claims' in checked)) return page(checked.problem === 'access_token' ? state.switches.accessTokenStatus : 401);
    const { claims } = checked;

    const member = principalOf(state, claims);
    if (!audienceAccepted(state, service, String(claims.aud), member)) return page(401);
    const spec = service.spec;
    if (spec.invokerIamCheck !== false && !state.hasRole(spec.bindings, INVOKER_ROLES, member)) return page(403);

    const bodyBytes = await countBody(req, BODY_LIMITS.cloudRun);
    send(
      res,
      200,
      JSON.stringify({
        service: spec.name,
        method: req.method,
        path: url.pathname + url.search,
        caller: member.replace(/^[a-zA-Z]+:/, ''),
        member,
        audience: claims.aud,
        via: req.headers['x-serverless-authorization'] ? 'X-Serverless-Authorization' : 'Authorization',
        ...(req.headers['x-serverless-authorization'] && req.headers.authorization ? { applicationAuthorization: 'present' } : {}),
        // What the container receives in place of the token Cloud Run verified: its signature removed (§16.2).
        forwardedToken: `${bearer.split('.').slice(0, 2).join('.')}.SIGNATURE_REMOVED_BY_GOOGLE`,
        ...(req.headers['x-forwarded-authorization'] ? { forwardedAuthorization: 'present' } : {}),
        bodyBytes,
      }),
      { ...gfe, 'content-type': 'application/json' },
    );
  };
}

/** IAM member behind an ID token: user tokens carry an OAuth client id as azp, service-account tokens a numeric id. */
export function principalOf(state: EmulatorState, claims: { email?: unknown; sub?: unknown }): string {
  const account = state.findServiceAccount(String(claims.email ?? claims.sub ?? ''));
  if (account) return `serviceAccount:${account.spec.email}`;
  const user = typeof claims.email === 'string' ? state.findUserByEmail(claims.email) : undefined;
  return user ? `user:${user.spec.email}` : `unknown:${String(claims.sub)}`;
}

export function audienceAccepted(state: EmulatorState, service: ServiceIdentity, aud: string, member: string): boolean {
  // A function's local URL carries its name, like its cloudfunctions.net URL.
  const own = [service.localUrl, ...(service.spec.kind === 'function' ? [`${service.localUrl}/${service.spec.name}`] : []), ...service.runUrls, ...(service.spec.customAudiences ?? [])];
  if (own.includes(aud)) return true;
  if (state.switches.acceptTrailingSlashAudience && aud.endsWith('/') && own.includes(aud.slice(0, -1))) return true;
  return developmentAudienceAccepted(state, aud, member);
}

/** The development leniencies of Cloud Run's front end (and Functions'), whatever the service's own URLs. */
export function developmentAudienceAccepted(state: EmulatorState, aud: string, member: string): boolean {
  // gcloud's own client id: what `gcloud auth print-identity-token` uses without --audiences. Google's evidence is for
  // user tokens (§7.1); a service account's such token passing is a tutorial's claim, so it has its own switch, off.
  if (aud === GCLOUD_CLIENT_ID && (member.startsWith('user:') ? state.switches.acceptGcloudClientIdAudience : state.switches.acceptGcloudClientIdAudienceFromServiceAccounts)) return true;
  if (member.startsWith('user:') && aud === ADC_CLIENT_ID && state.switches.acceptAdcClientIdAudience) return true;
  return false;
}

function gfePage(code: number, reason: string, heading: string, sentence: string): string {
  return (
    `<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n<title>${code} ${reason}</title>\n</head>\n` +
    `<body text=#000000 bgcolor=#ffffff>\n<h1>Error: ${heading}</h1>\n<h2>${sentence}</h2>\n<h2></h2>\n</body></html>\n`
  );
}

const escape = (path: string) => path.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export const forbiddenPage = (path: string) => gfePage(403, 'Forbidden', 'Forbidden', `Your client does not have permission to get URL <code>${escape(path)}</code> from this server.`);
export const unauthorizedPage = (path: string) => gfePage(401, 'Unauthorized', 'Unauthorized', `Your client does not have permission to the requested URL <code>${escape(path)}</code>.`);
