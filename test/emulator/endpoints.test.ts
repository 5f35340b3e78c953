// Every emulator endpoint answers with Google's status, headers and body shape (google-wire.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { defaultScenario, startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { signJwt, generateSigningKey } from '../../src/emulator/keys.ts';

let emu: Emulator;
const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;
const MD = { 'Metadata-Flavor': 'Google' };
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

before(async () => {
  const scenario = defaultScenario();
  scenario.users.push({ email: 'revoked@example.com', revoked: true }, { email: 'reauth@example.com', reauthRequired: true });
  scenario.serviceAccounts[0]!.keys = [{}, { deleted: true }];
  scenario.services[0]!.customAudiences = ['https://api.example.com'];
  emu = await startEmulator(scenario);
});
after(() => emu.close());

const md = (path: string, headers: Record<string, string> = MD) => fetch(`${emu.urls.metadata}/computeMetadata/v1/${path}`, { headers });
const form = (url: string, body: Record<string, string>) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });

function assertion(email: string, keyIndex: number, extra: Record<string, unknown>, kid = true): string {
  const key = emu.state.serviceAccounts.get(email)!.keys[keyIndex]!.key;
  const iat = Math.floor(Date.now() / 1000);
  return signJwt(kid ? key : { privateKey: key.privateKey }, { iss: email, aud: 'https://oauth2.googleapis.com/token', iat, exp: iat + 3600, ...extra }, kid ? {} : { typ: undefined });
}
async function accessTokenFor(email: string): Promise<string> {
  const res = await form(emu.urls.token, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: assertion(email, 0, { scope: 'https://www.googleapis.com/auth/cloud-platform' }) });
  return ((await res.json()) as { access_token: string }).access_token;
}
async function userAccessToken(email: string): Promise<string> {
  const u = emu.userCredentials(email);
  const res = await form(emu.urls.token, { grant_type: 'refresh_token', client_id: u.client_id!, client_secret: u.client_secret!, refresh_token: u.refresh_token! });
  return ((await res.json()) as { access_token: string }).access_token;
}

// ---- metadata server -------------------------------------------------------------------------

const metadataCases: { path: string; headers?: Record<string, string>; status: number; body?: RegExp; type?: RegExp }[] = [
  { path: 'project/project-id', status: 200, body: /^demo-project$/, type: /application\/text/ },
  { path: 'project/numeric-project-id', status: 200, body: /^123456789012$/ },
  { path: 'universe/universe-domain', status: 200, body: /^googleapis\.com$/ },
  { path: 'instance/service-accounts/default/email', status: 200, body: /^runtime@demo-project\.iam\.gserviceaccount\.com$/ },
  { path: 'instance/service-accounts/', status: 200, body: /^default\/\nruntime@/ },
  { path: 'instance/service-accounts/default/?recursive=true', status: 200, body: /"aliases":\["default"\]/, type: /application\/json/ },
  { path: 'instance/zone', status: 200, body: /^projects\/123456789012\/zones\/us-central1-c$/ },
  { path: 'instance/service-accounts/default/identity', status: 400, body: /^non-empty audience parameter required$/ },
  { path: 'instance/nothing-here', status: 404, body: /Error 404 \(Not Found\)!!1[\s\S]*<code>\/computeMetadata\/v1\/instance\/nothing-here<\/code> was not found/, type: /text\/html/ },
  { path: 'project/project-id', headers: {}, status: 403, body: /Error 403 \(Forbidden\)!!1[\s\S]*Metadata-Flavor/, type: /text\/html/ },
  { path: 'project/project-id', headers: { ...MD, 'X-Forwarded-For': '1.2.3.4' }, status: 403 },
];
for (const c of metadataCases) {
  test(`metadata: GET ${c.path}${c.headers ? ` with headers ${JSON.stringify(c.headers)}` : ''} → ${c.status}`, async () => {
    const res = await md(c.path, c.headers);
    assert.equal(res.status, c.status);
    assert.equal(res.headers.get('metadata-flavor'), 'Google', 'Metadata-Flavor on every response, errors too');
    const text = await res.text();
    if (c.body) assert.match(text, c.body);
    if (c.type) assert.match(res.headers.get('content-type')!, c.type);
  });
}

test('metadata: identity with an audience holding ? and &, format standard and full', async () => {
  const audience = 'https://svc.example/path?x=1&y=2';
  const full = await (await md(`instance/service-accounts/default/identity?audience=${encodeURIComponent(audience)}&format=full&licenses=TRUE`)).text();
  const c = claims(full);
  assert.equal(c.aud, audience);
  assert.equal(c.email, SA('runtime'));
  assert.equal(c.google.compute_engine.project_id, 'demo-project');
  assert.equal(typeof c.google.compute_engine.project_number, 'number');
  assert.deepEqual(c.google.compute_engine.license_id, ['1000010']);
  assert.equal(c.exp - c.iat, 3600);
  const standard = claims(await (await md(`instance/service-accounts/default/identity?audience=x&format=standard`)).text());
  assert.equal(standard.google, undefined);
  assert.equal(standard.sub, standard.azp);
  assert.equal(standard.email, undefined, 'GCE leaves email out of format=standard tokens (§14.2)');
  assert.equal(standard.email_verified, undefined);
});

test('metadata: token is {access_token, expires_in, token_type}', async () => {
  const res = await md('instance/service-accounts/default/token');
  const body = (await res.json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'token_type']);
  assert.match(String(body.access_token), /^ya29\./);
  assert.equal(body.token_type, 'Bearer');
  assert.ok(Number(body.expires_in) <= 3600);
});

test('metadata: root answers 200 with the header', async () => {
  const res = await fetch(`${emu.urls.metadata}/`, { headers: MD });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('metadata-flavor'), 'Google');
});

// ---- OAuth token endpoint ----------------------------------------------------------------------

test('token: JWT-bearer with target_audience → {id_token} only, with Google\'s claims', async () => {
  for (const kid of [true, false]) {
    const res = await form(emu.urls.token, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: assertion(SA('caller'), 0, { target_audience: 'https://svc.example' }, kid) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /application\/json; charset=utf-8/);
    const body = (await res.json()) as { id_token: string };
    assert.deepEqual(Object.keys(body), ['id_token']);
    const c = claims(body.id_token);
    assert.deepEqual(Object.keys(c).sort(), ['aud', 'azp', 'email', 'email_verified', 'exp', 'iat', 'iss', 'sub']);
    assert.equal(c.aud, 'https://svc.example');
    assert.equal(c.iss, 'https://accounts.google.com');
    const header = JSON.parse(Buffer.from(body.id_token.split('.')[0]!, 'base64url').toString());
    assert.deepEqual(Object.keys(header).sort(), ['alg', 'kid', 'typ']);
    assert.match(header.kid, /^[0-9a-f]{40}$/);
  }
});

test('token: JWT-bearer with scope → access token', async () => {
  const res = await form(emu.urls.token, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: assertion(SA('caller'), 0, { scope: 'https://www.googleapis.com/auth/cloud-platform' }) });
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(res.status, 200);
  assert.match(String(body.access_token), /^ya29\.c\./);
  assert.equal(body.token_type, 'Bearer');
});

const oauthErrors: { name: string; body: () => Record<string, string>; status: number; error: string; description: RegExp; extra?: Record<string, string> }[] = [
  { name: 'deleted key', body: () => ({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: assertion(SA('caller'), 1, { target_audience: 'x' }) }), status: 400, error: 'invalid_grant', description: /^Invalid JWT Signature\.$/ },
  {
    name: 'unknown key (signed by a stranger)',
    body: () => {
      const iat = Math.floor(Date.now() / 1000);
      return { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: signJwt(generateSigningKey('x'), { iss: SA('caller'), aud: 'https://oauth2.googleapis.com/token', iat, exp: iat + 3600, target_audience: 'x' }) };
    },
    status: 400,
    error: 'invalid_grant',
    description: /^Invalid JWT Signature\.$/,
  },
  { name: 'assertion longer than an hour', body: () => ({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: assertion(SA('caller'), 0, { target_audience: 'x', exp: Math.floor(Date.now() / 1000) + 7200 }) }), status: 400, error: 'invalid_grant', description: /short-lived token \(60 minutes\)/ },
  { name: 'neither scope nor target_audience', body: () => ({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: assertion(SA('caller'), 0, {}) }), status: 400, error: 'invalid_scope', description: /Invalid OAuth scope or ID token audience provided\./ },
  { name: 'revoked refresh token', body: () => ({ grant_type: 'refresh_token', ...pick(emu.userCredentials('revoked@example.com')) }), status: 400, error: 'invalid_grant', description: /^Token has been expired or revoked\.$/ },
  { name: 'reauth required', body: () => ({ grant_type: 'refresh_token', ...pick(emu.userCredentials('reauth@example.com')) }), status: 400, error: 'invalid_grant', description: /invalid_rapt/, extra: { error_subtype: 'invalid_rapt', error_uri: 'https://support.google.com/a/answer/9368756' } },
  { name: 'unknown refresh token', body: () => ({ grant_type: 'refresh_token', ...pick(emu.userCredentials('alice@example.com')), refresh_token: '1//0nope' }), status: 400, error: 'invalid_grant', description: /^Bad Request$/ },
  { name: 'unknown client', body: () => ({ grant_type: 'refresh_token', ...pick(emu.userCredentials('alice@example.com')), client_id: 'nobody.apps.googleusercontent.com' }), status: 401, error: 'invalid_client', description: /The OAuth client was not found\./ },
];
function pick(u: Record<string, string>) {
  return { client_id: u.client_id!, client_secret: u.client_secret!, refresh_token: u.refresh_token! };
}
for (const c of oauthErrors) {
  test(`token: ${c.name} → ${c.status} ${c.error}`, async () => {
    const res = await form(emu.urls.token, c.body());
    assert.equal(res.status, c.status);
    assert.match(res.headers.get('content-type')!, /application\/json; charset=utf-8/);
    assert.equal(res.headers.get('cache-control'), 'no-cache, no-store, max-age=0, must-revalidate');
    const body = (await res.json()) as Record<string, string>;
    assert.equal(body.error, c.error);
    assert.match(body.error_description!, c.description);
    for (const [k, v] of Object.entries(c.extra ?? {})) assert.equal(body[k], v);
  });
}

test('token: refresh grant → access token, scope, and an id_token for the OAuth client', async () => {
  const u = emu.userCredentials('alice@example.com');
  const res = await form(emu.urls.token, { grant_type: 'refresh_token', ...pick(u), target_audience: 'https://svc.example' });
  const body = (await res.json()) as Record<string, string>;
  assert.equal(res.status, 200);
  assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'id_token', 'scope', 'token_type']);
  assert.equal(claims(body.id_token!).aud, u.client_id);
  assert.equal(claims(body.id_token!).email, 'alice@example.com');
});

test('tokeninfo: id_token claims are strings; bad tokens get Invalid Value', async () => {
  const idToken = await (await md('instance/service-accounts/default/identity?audience=x&format=full')).text();
  const good = (await (await fetch(`${emu.urls.tokeninfo}?id_token=${idToken}`)).json()) as Record<string, unknown>;
  assert.equal(good.email_verified, 'true');
  assert.equal(typeof good.exp, 'string');
  const bad = await fetch(`${emu.urls.tokeninfo}?id_token=garbage`);
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), { error_description: 'Invalid Value' });
});

// ---- IAM Credentials -----------------------------------------------------------------------------

const iam = (sa: string, method: string, bearer: string | null, body: object) =>
  fetch(`${emu.urls.iam}/v1/projects/-/serviceAccounts/${sa}:${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });

test('iam: generateIdToken with token creator → {token}; includeEmail adds email', async () => {
  const bearer = await userAccessToken('alice@example.com');
  for (const includeEmail of [false, true]) {
    const res = await iam(SA('invoker'), 'generateIdToken', bearer, { audience: 'https://svc.example', includeEmail, delegates: [], useEmailAzp: true });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { token: string };
    assert.deepEqual(Object.keys(body), ['token']);
    const c = claims(body.token);
    assert.equal(c.aud, 'https://svc.example');
    assert.equal(c.email, includeEmail ? SA('invoker') : undefined);
  }
});

test('iam: generateAccessToken → {accessToken, expireTime} without fractional seconds', async () => {
  const res = await iam(SA('invoker'), 'generateAccessToken', await userAccessToken('alice@example.com'), { scope: ['https://www.googleapis.com/auth/cloud-platform'], lifetime: '3600s', delegates: null });
  const body = (await res.json()) as Record<string, string>;
  assert.equal(res.status, 200);
  assert.match(body.expireTime!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(body.accessToken!, /^ya29\./);
});

test('iam: generateAccessToken accepts the scopes gcloud sends when impersonating (openid, userinfo.email, …; §15.2)', async () => {
  const gcloudScopes = ['openid', 'https://www.googleapis.com/auth/userinfo.email', 'https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/appengine.admin', 'https://www.googleapis.com/auth/sqlservice.login', 'https://www.googleapis.com/auth/compute'];
  const res = await iam(SA('invoker'), 'generateAccessToken', await userAccessToken('alice@example.com'), { delegates: [], scope: gcloudScopes, lifetime: '3600s' });
  assert.equal(res.status, 200, await res.clone().text());
  const short = await iam(SA('invoker'), 'generateAccessToken', await userAccessToken('alice@example.com'), { scope: ['email', 'profile', 'https://www.googleapis.com/auth/cloud-platform'] });
  assert.equal(short.status, 200);
});

test('iam: a caller token without cloud-platform or iam scope → 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT (§15.1)', async () => {
  const { token } = emu.state.issueAccessToken({ member: `user:alice@example.com`, email: 'alice@example.com', scopes: ['https://www.googleapis.com/auth/devstorage.read_only'] });
  const res = await iam(SA('invoker'), 'generateIdToken', token, { audience: 'https://svc.example' });
  assert.equal(res.status, 403);
  const body = (await res.json()) as { error: { message: string; status: string; details: { reason: string; metadata: { method: string } }[] } };
  assert.equal(body.error.message, 'Request had insufficient authentication scopes.');
  assert.equal(body.error.status, 'PERMISSION_DENIED');
  assert.equal(body.error.details[0]!.reason, 'ACCESS_TOKEN_SCOPE_INSUFFICIENT');
  assert.equal(body.error.details[0]!.metadata.method, 'google.iam.credentials.v1.IAMCredentials.GenerateIdToken');
});

const iamErrors: { name: string; sa: string; method: string; bearer: () => Promise<string | null>; body: object; status: number; apiStatus: string; message: RegExp; reason?: string }[] = [
  { name: 'caller without token creator (id token)', sa: SA('no-access'), method: 'generateIdToken', bearer: () => userAccessToken('alice@example.com'), body: { audience: 'x' }, status: 403, apiStatus: 'PERMISSION_DENIED', message: /^Permission 'iam\.serviceAccounts\.getOpenIdToken' denied on resource \(or it may not exist\)\.$/, reason: 'IAM_PERMISSION_DENIED' },
  { name: 'caller without token creator (access token)', sa: SA('no-access'), method: 'generateAccessToken', bearer: () => userAccessToken('alice@example.com'), body: { scope: ['https://www.googleapis.com/auth/cloud-platform'] }, status: 403, apiStatus: 'PERMISSION_DENIED', message: /getAccessToken' denied/ },
  { name: 'unknown service account', sa: SA('ghost'), method: 'generateIdToken', bearer: () => userAccessToken('alice@example.com'), body: { audience: 'x' }, status: 403, apiStatus: 'PERMISSION_DENIED', message: /or it may not exist/ },
  { name: 'delegation without implicitDelegation', sa: SA('invoker'), method: 'generateIdToken', bearer: () => userAccessToken('bob@example.com'), body: { audience: 'x', delegates: [`projects/-/serviceAccounts/${SA('no-access')}`] }, status: 403, apiStatus: 'PERMISSION_DENIED', message: /implicitDelegation/ },
  { name: 'no Authorization header', sa: SA('invoker'), method: 'generateIdToken', bearer: async () => null, body: { audience: 'x' }, status: 401, apiStatus: 'UNAUTHENTICATED', message: /missing required authentication credential/, reason: 'CREDENTIALS_MISSING' },
  { name: 'an ID token as bearer', sa: SA('invoker'), method: 'generateIdToken', bearer: async () => (await md('instance/service-accounts/default/identity?audience=x')).text(), body: { audience: 'x' }, status: 401, apiStatus: 'UNAUTHENTICATED', message: /invalid authentication credentials/, reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED' },
  { name: 'a non-scope in scope', sa: SA('invoker'), method: 'generateAccessToken', bearer: () => userAccessToken('alice@example.com'), body: { scope: ['https://svc.example'] }, status: 400, apiStatus: 'INVALID_ARGUMENT', message: /Request contains an invalid argument\./ },
];
for (const c of iamErrors) {
  test(`iam: ${c.name} → ${c.status} ${c.apiStatus}`, async () => {
    const res = await iam(c.sa, c.method, await c.bearer(), c.body);
    assert.equal(res.status, c.status);
    assert.match(res.headers.get('content-type')!, /application\/json; charset=UTF-8/);
    const { error } = (await res.json()) as { error: { code: number; status: string; message: string; details?: { reason: string }[] } };
    assert.equal(error.code, c.status);
    assert.equal(error.status, c.apiStatus);
    assert.match(error.message, c.message);
    if (c.reason) assert.equal(error.details?.[0]?.reason, c.reason);
  });
}

// ---- STS --------------------------------------------------------------------------------------------

const provider = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/ci-pool/providers/ci-provider';
const exchange = (extra: Record<string, string>) =>
  form(emu.urls.sts, {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    audience: provider,
    scope: 'https://www.googleapis.com/auth/cloud-platform',
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    subject_token: emu.state.externalSubjectToken(`https:${provider}`),
    ...extra,
  });

test('sts: token exchange → federated access token that may impersonate its bound service account', async () => {
  const res = await exchange({});
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(res.status, 200);
  assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'issued_token_type', 'token_type']);
  assert.equal(body.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
  const id = await iam(SA('invoker'), 'generateIdToken', String(body.access_token), { audience: 'x' });
  assert.equal(id.status, 200);
  const denied = await iam(SA('no-access'), 'generateIdToken', String(body.access_token), { audience: 'x' });
  assert.equal(denied.status, 403);
});

const stsErrors: { name: string; extra: () => Record<string, string>; error: string; description: RegExp }[] = [
  { name: 'malformed audience', extra: () => ({ audience: 'ci-pool' }), error: 'invalid_request', description: /Invalid value for "audience"/ },
  { name: 'unknown provider', extra: () => ({ audience: provider.replace('ci-provider', 'nope') }), error: 'invalid_target', description: /The target service indicated by the "audience" parameters is invalid/ },
  { name: 'subject token for another audience', extra: () => ({ subject_token: emu.state.externalSubjectToken('https://elsewhere') }), error: 'invalid_grant', description: /^The audience in JWT does not match the expected values\.$/ },
  { name: 'wrong subject token type', extra: () => ({ subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }), error: 'invalid_request', description: /subject_token_type/ },
];
for (const c of stsErrors) {
  test(`sts: ${c.name} → 400 ${c.error}`, async () => {
    const res = await exchange(c.extra());
    assert.equal(res.status, 400);
    const body = (await res.json()) as Record<string, string>;
    assert.equal(body.error, c.error);
    assert.match(body.error_description!, c.description);
  });
}

// ---- certificates -----------------------------------------------------------------------------------

test('certs: JWKS and PEM map publish the same kids, with caching headers; rotation keeps the old key', async () => {
  const jwks = await fetch(emu.urls.jwks);
  assert.match(jwks.headers.get('cache-control')!, /^public, max-age=\d+, must-revalidate, no-transform$/);
  const { keys } = (await jwks.json()) as { keys: Record<string, string>[] };
  assert.ok(keys.length >= 2);
  for (const k of keys) assert.deepEqual(Object.keys(k).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use']);
  const pems = (await (await fetch(emu.urls.pemCerts)).json()) as Record<string, string>;
  assert.deepEqual(Object.keys(pems).sort(), keys.map((k) => k.kid).sort());
  for (const pem of Object.values(pems)) assert.ok(new X509Certificate(pem).publicKey);
  const before = keys[0]!.kid;
  emu.rotateKeys();
  const after = ((await (await fetch(emu.urls.jwks)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
  assert.notEqual(after[0], before);
  assert.ok(after.includes(before!), 'the previous key stays published');
});

// ---- private Cloud Run services ---------------------------------------------------------------------

async function idToken(aud: string, email = SA('caller')): Promise<string> {
  const res = await form(emu.urls.token, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: assertion(email, 0, { target_audience: aud }) });
  return ((await res.json()) as { id_token: string }).id_token;
}
const hello = () => emu.urls.services.hello!;
const serviceCases: { name: string; headers: () => Promise<Record<string, string>>; service?: string; status: number; page?: RegExp }[] = [
  { name: 'no token', headers: async () => ({}), status: 403, page: /<h1>Error: Forbidden<\/h1>\n<h2>Your client does not have permission to get URL <code>\/x<\/code> from this server\.<\/h2>/ },
  { name: 'token for another audience', headers: async () => ({ authorization: `Bearer ${await idToken('https://other.example')}` }), status: 401, page: /<h1>Error: Unauthorized<\/h1>/ },
  { name: 'bad signature', headers: async () => ({ authorization: `Bearer ${(await idToken(hello())).slice(0, -6)}AAAAAA` }), status: 401 },
  { name: 'an access token', headers: async () => ({ authorization: `Bearer ${await accessTokenFor(SA('caller'))}` }), status: 401 },
  { name: 'valid token, caller lacks run.invoker', service: 'private', headers: async () => ({ authorization: `Bearer ${await idToken(emu.urls.services.private!)}` }), status: 403 },
  { name: 'valid token for the local URL', headers: async () => ({ authorization: `Bearer ${await idToken(hello())}` }), status: 200 },
  { name: 'valid token for the run.app URL', headers: async () => ({ authorization: `Bearer ${await idToken(emu.serviceRunUrls.hello![0]!)}` }), status: 200 },
  { name: 'valid token for a custom audience', headers: async () => ({ authorization: `Bearer ${await idToken('https://api.example.com')}` }), status: 200 },
  { name: 'valid token in X-Serverless-Authorization', headers: async () => ({ 'x-serverless-authorization': `Bearer ${await idToken(hello())}`, authorization: 'Basic abc' }), status: 200 },
  { name: 'trailing slash on aud (rejected unless the switch allows it)', headers: async () => ({ authorization: `Bearer ${await idToken(hello() + '/')}` }), status: 401 },
];
for (const c of serviceCases) {
  test(`service: ${c.name} → ${c.status}`, async () => {
    const res = await fetch(`${emu.urls.services[c.service ?? 'hello']}/x`, { headers: await c.headers() });
    assert.equal(res.status, c.status);
    assert.equal(res.headers.get('server'), 'Google Frontend');
    assert.match(res.headers.get('x-cloud-trace-context')!, /^[0-9a-f]{32}\/\d+;o=1$/);
    const text = await res.text();
    if (c.status === 401) assert.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token" error_description="The access token could not be verified"');
    if (c.status !== 200) assert.match(res.headers.get('content-type')!, /text\/html/);
    if (c.page) assert.match(text, c.page);
    if (c.status === 200) assert.equal(JSON.parse(text).service, 'hello');
  });
}

test('service: a request body is counted as it streams up to Cloud Run\'s 32 MiB (HTTP/1); one over it gets Google\'s 413 page', async () => {
  const authorization = `Bearer ${await idToken(hello())}`;
  const put = (bytes: number) => fetch(`${hello()}/upload`, { method: 'PUT', headers: { authorization }, body: Buffer.alloc(bytes, 1) });
  const ok = await put(3 * 1024 * 1024);
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as { bodyBytes: number }).bodyBytes, 3 * 1024 * 1024);
  const big = await put((32 << 20) + 1).catch((err: Error) => err);
  // The front end answers once the limit is crossed and closes; a client still sending may see the reset instead.
  if (big instanceof Error) return void assert.match(String((big.cause as Error | undefined)?.message ?? big.message), /reset|closed|socket|fetch failed/i);
  assert.equal(big.status, 413);
  assert.match(await big.text(), /<title>Error 413 \(Request Entity Too Large\)!!1<\/title>[\s\S]*Your client issued a request that was too large\./);
});

test('service: granting run.invoker at run time lets the caller in', async () => {
  const token = await idToken(emu.urls.services.private!, SA('no-access'));
  const call = () => fetch(`${emu.urls.services.private}/`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
  assert.equal(await call(), 403);
  emu.grant({ kind: 'service', name: 'private' }, 'roles/run.invoker', `serviceAccount:${SA('no-access')}`);
  assert.equal(await call(), 200);
  emu.revoke({ kind: 'service', name: 'private' }, 'roles/run.invoker', `serviceAccount:${SA('no-access')}`);
  assert.equal(await call(), 403);
});

test('resource manager: projects.get by number or id with an access token (what Python\'s google-auth asks when it loads an external-account file); 401 without one, 403 for another project', async () => {
  const get = async (project: string, bearer?: string) => fetch(`${emu.urls.token.replace(/\/token$/, '')}/v1/projects/${project}`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  const token = await accessTokenFor(SA('caller'));
  for (const project of ['123456789012', 'demo-project']) {
    const res = await get(project, token);
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { projectId: string; projectNumber: string; lifecycleState: string }), { projectNumber: '123456789012', projectId: 'demo-project', lifecycleState: 'ACTIVE', name: 'demo-project', createTime: '2024-01-01T00:00:00.000Z' });
  }
  const none = await get('123456789012');
  assert.equal(none.status, 401);
  assert.equal(((await none.json()) as { error: { status: string } }).error.status, 'UNAUTHENTICATED');
  const other = await get('someone-elses', token);
  assert.equal(other.status, 403);
  assert.deepEqual(((await other.json()) as { error: object }).error, { code: 403, message: 'The caller does not have permission', status: 'PERMISSION_DENIED' });
});
