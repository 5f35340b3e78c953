// Google's certificate and discovery endpoints (google-wire.md §6.1–6.3).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { publicJwk } from './keys.ts';
import { send } from './http.ts';
import type { EmulatorState } from './state.ts';

const MAX_AGE = 21_600;

export function certsEndpoint(state: EmulatorState, _req: IncomingMessage, res: ServerResponse, url: URL): void {
  const headers = {
    'content-type': 'application/json; charset=UTF-8',
    'cache-control': `public, max-age=${MAX_AGE}, must-revalidate, no-transform`,
    expires: new Date(state.nowMs() + MAX_AGE * 1000).toUTCString(),
    server: 'ESF',
  };
  if (url.pathname === '/oauth2/v3/certs') {
    return send(res, 200, JSON.stringify({ keys: state.googleKeys.map(publicJwk) }, null, 2), headers);
  }
  if (url.pathname === '/oauth2/v1/certs') {
    return send(res, 200, JSON.stringify(Object.fromEntries(state.googleKeys.map((k) => [k.kid, k.certificatePem])), null, 2), headers);
  }
  // IAP's keys for the assertion it passes to apps (§11.4): a PEM map and a JWKS.
  if (url.pathname === '/iap/verify/public_key') {
    return send(res, 200, JSON.stringify({ [state.iapKey.kid]: state.iapKey.publicKey.export({ type: 'spki', format: 'pem' }).toString() }, null, 2), headers);
  }
  if (url.pathname === '/iap/verify/public_key-jwk') {
    return send(res, 200, JSON.stringify({ keys: [{ ...state.iapKey.publicKey.export({ format: 'jwk' }), kid: state.iapKey.kid, alg: 'ES256', use: 'sig' }] }, null, 2), headers);
  }
  if (url.pathname === '/.well-known/openid-configuration') {
    return send(
      res,
      200,
      JSON.stringify({
        issuer: 'https://accounts.google.com',
        jwks_uri: `${state.googleUrl}/oauth2/v3/certs`,
        token_endpoint: `${state.googleUrl}/token`,
        id_token_signing_alg_values_supported: ['RS256'],
      }),
      headers,
    );
  }
  const robot = /^\/robot\/v1\/metadata\/(x509|jwk)\/(.+)$/.exec(url.pathname);
  const account = robot ? state.serviceAccounts.get(decodeURIComponent(robot[2]!)) : undefined;
  if (robot && account) {
    const live = account.keys.filter((k) => !k.deleted);
    const body = robot[1] === 'jwk' ? { keys: live.map((k) => publicJwk(k.key)) } : Object.fromEntries(live.map((k) => [k.key.kid, k.key.certificatePem]));
    return send(res, 200, JSON.stringify(body, null, 2), headers);
  }
  return send(res, 404, JSON.stringify({ error: { code: 404, message: 'Not Found', status: 'NOT_FOUND' } }), { 'content-type': 'application/json; charset=UTF-8' });
}
