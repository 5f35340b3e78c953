// Every kind of Google-ID-token target the emulator serves (google-wire.md §11–§13): Cloud Functions of both
// generations, IAP in front of App Engine and of a load balancer, and an API Gateway. Per kind × failure: the cause
// code, the exit status, the fix, and that the token went to that target only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanEnv, emulatorFixture, idcall, json } from '../helpers/cli.ts';

const fx = emulatorFixture();
const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;
const key = () => fx.creds.files.serviceAccount!;
const env = (credentials = key()) => cleanEnv(fx.dir.path, { GOOGLE_APPLICATION_CREDENTIALS: credentials, METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_IAM_URL: fx.emu.urls.iam });
const local = (name: string) => fx.emu.urls.services[name]!;
const spec = (name: string) => fx.emu.state.scenario.services.find((s) => s.name === name)!;
let noAccessKey = '';

async function noAccess(): Promise<string> {
  noAccessKey ||= await fx.dir.file('no-access.json', fx.emu.serviceAccountKey(SA('no-access')));
  return noAccessKey;
}

/** Requests that carried a token, per emulated service: where the tokens went. */
function tokenRecipients(since: number): string[] {
  return [...new Set(fx.emu.requests.slice(since).filter((r) => r.endpoint.startsWith('service:') && r.authorization).map((r) => r.endpoint.slice('service:'.length)))];
}

interface Case {
  name: string;
  args: () => string[];
  credentials?: () => Promise<string> | string;
  code: string;
  exit: number;
  kind: string;
  audienceSource?: string;
  fix?: RegExp;
  service: string;
}

const cases: Case[] = [
  // Cloud Functions: the URL's host says nothing here (127.0.0.1), so --target-kind says what it is.
  { name: 'function (1st gen): the function URL is the default audience', args: () => ['call', `${local('fn1')}/fn1`, '--target-kind', 'cloud_functions'], code: 'OK', exit: 0, kind: 'cloud_functions', audienceSource: 'function_url', service: 'fn1' },
  { name: 'function (1st gen): the origin as audience is 401, fixed with the function URL', args: () => ['call', `${local('fn1')}/fn1`, '--target-kind', 'cloud_functions', '--audience', local('fn1')], code: 'AUDIENCE_MISMATCH', exit: 4, kind: 'cloud_functions', audienceSource: 'flag', fix: /--audience http:\/\/127\.0\.0\.1:\d+\/fn1/, service: 'fn1' },
  { name: 'function (1st gen): no invoker role is 403, granted for either generation', args: () => ['call', `${local('fn1')}/fn1`, '--target-kind', 'cloud_functions'], credentials: noAccess, code: 'INVOKER_DENIED', exit: 4, kind: 'cloud_functions', fix: /^gcloud functions add-invoker-policy-binding fn1 --region=REGION --member=serviceAccount:no-access@demo-project\.iam\.gserviceaccount\.com$/, service: 'fn1' },
  { name: 'function (2nd gen): the function URL is a custom audience of its Cloud Run service', args: () => ['call', `${local('fn2')}/fn2`, '--target-kind', 'cloud_functions'], code: 'OK', exit: 0, kind: 'cloud_functions', audienceSource: 'function_url', service: 'fn2' },
  { name: 'function (2nd gen): no invoker role', args: () => ['call', `${local('fn2')}/fn2`, '--target-kind', 'cloud_functions'], credentials: noAccess, code: 'INVOKER_DENIED', exit: 4, kind: 'cloud_functions', fix: /gcloud functions add-invoker-policy-binding fn2/, service: 'fn2' },
  // IAP: recognised from its answer (x-goog-iap-generated-response), whatever the host.
  { name: 'IAP: the URL as audience is refused, and IAP\'s own client is offered', args: () => ['call', `${local('iap-app')}/`], code: 'AUDIENCE_MISMATCH', exit: 4, kind: 'iap', audienceSource: 'origin', fix: /OAuth client ID.*try --audience 123456789012-iapappengine0+\.apps\.googleusercontent\.com/s, service: 'iap-app' },
  { name: 'IAP: the OAuth client ID as audience, in Authorization', args: () => ['call', `${local('iap-app')}/`, '--audience', spec('iap-app').iap!.clientId], code: 'OK', exit: 0, kind: 'other', audienceSource: 'flag', service: 'iap-app' },
  { name: 'IAP: in Proxy-Authorization (the app keeps its own Authorization)', args: () => ['call', `${local('iap-app')}/`, '--audience', spec('iap-app').iap!.clientId, '--header-name', 'proxy-authorization', '-H', 'Authorization: Basic YXBwOmFwcA=='], code: 'OK', exit: 0, kind: 'other', service: 'iap-app' },
  { name: 'IAP: a token in X-Serverless-Authorization is not seen', args: () => ['call', `${local('iap-app')}/`, '--audience', spec('iap-app').iap!.clientId, '--header-name', 'X-Serverless-Authorization'], code: 'TOKEN_NOT_SEEN', exit: 4, kind: 'iap', fix: /--header-name Authorization/, service: 'iap-app' },
  { name: 'IAP: no httpsResourceAccessor is 403 with the IAP grant', args: () => ['call', `${local('iap-app')}/`, '--audience', spec('iap-app').iap!.clientId], credentials: noAccess, code: 'INVOKER_DENIED', exit: 4, kind: 'iap', fix: /gcloud iap web add-iam-policy-binding --resource-type=backend-services .*--member=serviceAccount:no-access@demo-project\.iam\.gserviceaccount\.com --role=roles\/iap\.httpsResourceAccessor/, service: 'iap-app' },
  { name: 'IAP with a Google-managed client: blocked for programmatic use until allowlisted', args: () => ['call', `${local('iap-lb')}/`, '--audience', spec('iap-lb').iap!.clientId, '--target-kind', 'iap'], code: 'AUDIENCE_MISMATCH', exit: 4, kind: 'iap', fix: /Google-managed client.*programmatic_clients/s, service: 'iap-lb' },
  // API Gateway / ESPv2: recognised from its JSON envelope.
  { name: 'API Gateway: the URL as audience is not allowed (403)', args: () => ['call', `${local('gateway')}/`], code: 'AUDIENCE_MISMATCH', exit: 4, kind: 'api_gateway', fix: /https:\/\/SERVICE_NAME/, service: 'gateway' },
  // The backend (hello) gets a token too: the gateway's own, minted for it (the fidelity test below checks whose).
  { name: 'API Gateway: the managed service name as audience', args: () => ['call', `${local('gateway')}/`, '--audience', `https://${spec('gateway').gateway!.serviceName}`], code: 'OK', exit: 0, kind: 'other', service: 'gateway,hello' },
  { name: 'API Gateway: a token in X-Serverless-Authorization is missing to ESPv2', args: () => ['call', `${local('gateway')}/`, '--audience', `https://${spec('gateway').gateway!.serviceName}`, '--header-name', 'X-Serverless-Authorization'], code: 'TOKEN_NOT_SEEN', exit: 4, kind: 'api_gateway', fix: /--header-name Authorization/, service: 'gateway' },
];

for (const c of cases) {
  test(`target kinds: ${c.name} → ${c.code}`, async () => {
    const since = fx.emu.requests.length;
    const credentials = c.credentials ? await c.credentials() : key();
    const result = await idcall([...c.args(), '--json'], env(credentials));
    const report = json(result);
    assert.equal(report.verdict.code, c.code, `${report.verdict.summary}\n${report.verdict.fix}`);
    assert.equal(result.code, c.exit);
    assert.equal(report.target.kind, c.kind);
    if (c.audienceSource) assert.equal(report.target.audienceSource, c.audienceSource);
    if (c.fix) assert.match(report.verdict.fix, c.fix);
    assert.deepEqual(tokenRecipients(since).sort(), c.service.split(',').sort(), 'the token went to the called target only');
  });
}

test('target kinds: API Gateway whose config names another issuer → ISSUER_NOT_ACCEPTED with the config fix', async () => {
  const gateway = spec('gateway').gateway!;
  const before = gateway.issuers;
  gateway.issuers = ['https://securetoken.google.com/demo-project'];
  try {
    const report = json(await idcall(['call', `${local('gateway')}/`, '--audience', `https://${gateway.serviceName}`, '--json'], env()));
    assert.equal(report.verdict.code, 'ISSUER_NOT_ACCEPTED');
    assert.equal(report.exitCode, 4);
    assert.match(report.verdict.fix, /x-google-issuer: "https:\/\/accounts\.google\.com"/);
    assert.match(report.verdict.fix, /--allow-unauthenticated/);
  } finally {
    if (before) gateway.issuers = before;
    else delete gateway.issuers;
  }
});

test('target kinds: IAP asked for its client once, and the probe carried no token', async () => {
  const since = fx.emu.requests.length;
  const report = json(await idcall(['call', `${local('iap-app')}/`, '--json'], env()));
  const toIap = fx.emu.requests.slice(since).filter((r) => r.endpoint === 'service:iap-app');
  assert.equal(toIap.length, 2, 'the call and one probe');
  assert.equal(toIap.filter((r) => r.authorization).length, 1, 'the probe sent no token');
  assert.match(report.steps.find((s: any) => s.id === 'call').details.join('\n'), /asked IAP once more, without a token, for its OAuth client: 123456789012-iapappengine/);
});

test('target kinds: a cloudfunctions.net URL needs no --target-kind: the function URL is the audience', async () => {
  const report = json(await idcall(['token', '--audience', 'https://us-central1-demo-project.cloudfunctions.net/fn1', '--json'], env(), {}, { tokenAllowedOn: 'stdout' }));
  assert.deepEqual(report.target, { kind: 'cloud_functions', audience: 'https://us-central1-demo-project.cloudfunctions.net/fn1', audienceSource: 'flag' });
  assert.equal(report.claims.aud, 'https://us-central1-demo-project.cloudfunctions.net/fn1');
});

test('target kinds: through Proxy-Authorization, IAP authorises with the token and the app gets its own Authorization', async () => {
  const report = json(await idcall(['call', `${local('iap-app')}/`, '--audience', spec('iap-app').iap!.clientId, '--header-name', 'Proxy-Authorization', '-H', 'Authorization: Basic YXBwOmFwcA==', '--body', 'full', '--json'], env()));
  const echo = JSON.parse(report.response.bodyExcerpt);
  assert.equal(echo.via, 'Proxy-Authorization');
  assert.equal(echo.applicationAuthorization, 'present');
  assert.equal(echo.authenticatedUserEmail, `accounts.google.com:${SA('caller')}`);
});

test('target kinds: inspect --target-kind iap: a token without the email claim is EMAIL_CLAIM_MISSING', async () => {
  const clientId = spec('iap-app').iap!.clientId;
  // Impersonation without --include-email: generateIdToken leaves the email claim out.
  const minted = await idcall(['token', '--audience', clientId, '--impersonate-service-account', SA('invoker')], env(fx.creds.files.authorizedUser!), {}, { tokenAllowedOn: 'stdout' });
  const token = minted.stdout.trim();
  assert.equal(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).email, undefined);
  const report = json(await idcall(['inspect', token, '--audience', clientId, '--target-kind', 'iap', '--json'], env()));
  assert.equal(report.verdict.code, 'EMAIL_CLAIM_MISSING');
  assert.equal(report.exitCode, 4);
  assert.match(report.verdict.fix, /--include-email/);
  // And idcall itself asks for the claim whenever the target is IAP.
  const withEmail = await idcall(['token', '--audience', clientId, '--impersonate-service-account', SA('invoker'), '--target-kind', 'iap'], env(fx.creds.files.authorizedUser!), {}, { tokenAllowedOn: 'stdout' });
  assert.equal(JSON.parse(Buffer.from(withEmail.stdout.trim().split('.')[1]!, 'base64url').toString()).email, SA('invoker'));
});

test('target kinds: inspect recognises the signature Cloud Run removed, and does not call the token forged', async () => {
  const minted = await idcall(['token', '--audience', 'https://svc.example'], env(), {}, { tokenAllowedOn: 'stdout' });
  const stripped = minted.stdout.trim().split('.').slice(0, 2).join('.') + '.SIGNATURE_REMOVED_BY_GOOGLE';
  const report = json(await idcall(['inspect', stripped, '--audience', 'https://svc.example', '--json'], env()));
  assert.notEqual(report.verdict.code, 'SIGNATURE_INVALID');
  assert.equal(report.verdict.code, 'SIGNATURE_UNVERIFIED');
  assert.match(report.verdict.summary, /Cloud Run already verified/);
});

// The same front ends under their production host names, over TLS, reached with --connect-to and trusted through
// --cacert (the emulator's env.sh sets both): the host name alone says the kind, and every fix names real things.
const tls = () => ({ ...env(), IDCALL_CACERT: fx.creds.files.ca!, IDCALL_CONNECT_TO: fx.emu.connectTo.join(' ') });
const real = (name: string) => fx.emu.serviceRunUrls[name]![0]!;
const tlsCases: { name: string; url: () => string; extra?: string[]; credentials?: () => Promise<string>; code: string; kind: string; audienceSource: string; fix?: RegExp }[] = [
  { name: 'Cloud Run, no invoker role: the fix names the service and its region', url: () => `${real('private')}/`, code: 'INVOKER_DENIED', kind: 'cloud_run', audienceSource: 'origin', fix: /^gcloud run services add-iam-policy-binding private --region=us-central1 --member=serviceAccount:caller@demo-project\.iam\.gserviceaccount\.com --role=roles\/run\.invoker$/ },
  { name: 'Cloud Functions (1st gen) by its URL alone: the function URL is the audience', url: () => `${real('fn1')}/sub/path`, code: 'OK', kind: 'cloud_functions', audienceSource: 'function_url' },
  { name: 'Cloud Functions (1st gen) with the host as audience', url: () => real('fn1'), extra: ['--audience', 'https://us-central1-demo-project.cloudfunctions.net'], code: 'AUDIENCE_MISMATCH', kind: 'cloud_functions', audienceSource: 'flag', fix: /--audience https:\/\/us-central1-demo-project\.cloudfunctions\.net\/fn1/ },
  { name: 'Cloud Functions: no invoker role, named with its region', url: () => real('fn1'), credentials: noAccess, code: 'INVOKER_DENIED', kind: 'cloud_functions', audienceSource: 'function_url', fix: /^gcloud functions add-invoker-policy-binding fn1 --region=us-central1 --member=serviceAccount:no-access@/ },
  { name: 'App Engine behind IAP: the kind from appspot.com, the App Engine grant', url: () => `${real('iap-app')}/`, extra: ['--audience', '123456789012-iapappengine0000000000000.apps.googleusercontent.com'], credentials: noAccess, code: 'INVOKER_DENIED', kind: 'iap', audienceSource: 'flag', fix: /^gcloud iap web add-iam-policy-binding --resource-type=app-engine --member=serviceAccount:no-access@demo-project\.iam\.gserviceaccount\.com --role=roles\/iap\.httpsResourceAccessor$/ },
  { name: 'App Engine behind IAP, the URL as audience: the probe for IAP\'s client goes the same way as the call', url: () => `${real('iap-app')}/`, code: 'AUDIENCE_MISMATCH', kind: 'iap', audienceSource: 'origin', fix: /try --audience 123456789012-iapappengine0+\.apps\.googleusercontent\.com/ },
  { name: 'API Gateway by its gateway.dev host', url: () => `${real('gateway')}/`, code: 'AUDIENCE_MISMATCH', kind: 'api_gateway', audienceSource: 'origin', fix: /x-google-audiences/ },
];
for (const c of tlsCases) {
  test(`target kinds over TLS: ${c.name} → ${c.code}`, async () => {
    const credentials = c.credentials ? await c.credentials() : key();
    const report = json(await idcall(['call', c.url(), ...(c.extra ?? []), '--json'], { ...tls(), GOOGLE_APPLICATION_CREDENTIALS: credentials }));
    assert.equal(report.verdict.code, c.code, `${report.verdict.summary}\n${report.verdict.fix}`);
    assert.equal(report.target.kind, c.kind);
    assert.equal(report.target.audienceSource, c.audienceSource);
    if (c.fix) assert.match(report.verdict.fix, c.fix);
    assert.match(report.steps.find((s: any) => s.id === 'call').details.join('\n'), /connected to 127\.0\.0\.1:\d+ for [\w.-]+:443 \(--connect-to/);
  });
}

test('over TLS: without --cacert the emulator\'s certificate is not trusted (TLS_ERROR), and --resolve applies to where --connect-to points, as in curl', async () => {
  const { IDCALL_CACERT: _drop, ...untrusted } = tls();
  const refused = json(await idcall(['call', `${real('hello')}/`, '--json'], untrusted));
  assert.equal(refused.verdict.code, 'TLS_ERROR');
  const port = /:(\d+)$/.exec(fx.emu.connectTo[0]!)![1];
  const resolved = json(await idcall(['call', `${real('hello')}/`, '--connect-to', `:443::${port}`, '--resolve', `hello-123456789012.us-central1.run.app:${port}:127.0.0.1`, '--cacert', fx.creds.files.ca!, '--json'], env()));
  assert.equal(resolved.verdict.code, 'OK');
});

test('emulator fidelity: the app behind IAP gets an ES256 assertion that verifies with IAP\'s published keys', async () => {
  const { createPublicKey, verify } = await import('node:crypto');
  json(await idcall(['call', `${local('iap-app')}/`, '--audience', spec('iap-app').iap!.clientId, '--json'], env()));
  const assertion = fx.emu.state.iapAssertions.get('iap-app')!;
  const [h, p, s] = assertion.split('.');
  const header = JSON.parse(Buffer.from(h!, 'base64url').toString());
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
  assert.equal(header.alg, 'ES256');
  assert.match(header.kid, /^[\w-]{6}$/);
  assert.equal(claims.iss, 'https://cloud.google.com/iap');
  assert.equal(claims.aud, '/projects/123456789012/apps/demo-project');
  assert.equal(claims.email, SA('caller'));
  assert.equal(claims.exp - claims.iat, 600);
  const jwks = await (await fetch(`${fx.emu.urls.google}/iap/verify/public_key-jwk`)).json() as { keys: { kid: string }[] };
  const jwk = jwks.keys.find((k) => k.kid === header.kid)!;
  assert.ok(verify('sha256', Buffer.from(`${h}.${p}`), { key: createPublicKey({ key: jwk as never, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(s!, 'base64url')));
});

test('emulator fidelity: API Gateway calls its private backend with its own token and X-Forwarded-Authorization', async () => {
  const report = json(await idcall(['call', `${local('gateway')}/v1/items`, '--audience', `https://${spec('gateway').gateway!.serviceName}`, '--body', 'full', '--json'], env()));
  assert.equal(report.verdict.code, 'OK');
  const echo = JSON.parse(report.response.bodyExcerpt);
  assert.equal(echo.service, 'hello', 'the backend answered');
  assert.equal(echo.caller, SA('runtime'), 'as the gateway\'s service account');
  assert.equal(echo.forwardedAuthorization, 'present', 'the caller\'s token moved to X-Forwarded-Authorization');
  assert.equal(echo.path, '/v1/items');
});

test('emulator fidelity: Cloud Run hands the container the token with its signature removed, and inspect says so', async () => {
  // Straight from the service: idcall's own output masks anything shaped like a JWT, this included.
  const token = (await idcall(['token', '--audience', local('hello')], env(), {}, { tokenAllowedOn: 'stdout' })).stdout.trim();
  const forwarded = ((await (await fetch(`${local('hello')}/`, { headers: { authorization: `Bearer ${token}` } })).json()) as { forwardedToken: string }).forwardedToken;
  assert.match(forwarded, /^eyJ[\w-]+\.eyJ[\w-]+\.SIGNATURE_REMOVED_BY_GOOGLE$/);
  const inspected = json(await idcall(['inspect', forwarded, '--json'], env()));
  assert.equal(inspected.verdict.code, 'SIGNATURE_UNVERIFIED');
  assert.match(inspected.verdict.summary, /Cloud Run already verified/);
});

test('emulator and inspect agree on gcloud\'s default audience from a service account: refused by both by default', async () => {
  const token = (await idcall(['token'], env(), {}, { tokenAllowedOn: 'stdout' })).stdout.trim();
  assert.equal(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).aud, '32555940559.apps.googleusercontent.com');
  const answer = await fetch(`${local('hello')}/`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(answer.status, 401, 'the emulated service refuses it');
  const inspected = json(await idcall(['inspect', token, '--audience', real('hello'), '--json'], env()));
  assert.equal(inspected.verdict.code, 'AUDIENCE_MISMATCH', 'and so does inspect');
});
