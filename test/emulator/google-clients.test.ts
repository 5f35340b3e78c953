// The emulator is only useful if clients nobody here wrote get tokens from it: google-auth-library's own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, verify } from 'node:crypto';
import { Compute, IdentityPoolClient, Impersonated, JWT, OAuth2Client, UserRefreshClient } from 'google-auth-library';
import { gaxios } from 'google-auth-library';
import { startEmulator, type Emulator, type WrittenCredentials } from '../../src/emulator/index.ts';

let emu: Emulator;
let creds: WrittenCredentials;
let dir: string;

before(async () => {
  emu = await startEmulator();
  dir = await mkdtemp(join(tmpdir(), 'idcall-creds-'));
  creds = await emu.writeCredentials(dir);
});
after(async () => {
  await emu.close();
  await rm(dir, { recursive: true, force: true });
});

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

/** Standard JOSE verification against the emulator's JWKS, independent of google-auth-library. */
async function verifyWithJwks(jwt: string): Promise<boolean> {
  const [h, p, s] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h!, 'base64url').toString());
  const { keys } = (await (await fetch(emu.urls.jwks)).json()) as { keys: { kid: string }[] };
  const jwk = keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, 'kid is published in the JWKS');
  return verify('sha256', Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk as never, format: 'jwk' }), Buffer.from(s!, 'base64url'));
}

async function verifyWithLibrary(jwt: string, audience: string): Promise<void> {
  const client = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: emu.urls.pemCerts } });
  const ticket = await client.verifyIdToken({ idToken: jwt, audience });
  assert.equal(ticket.getPayload()?.aud, audience);
}

test('JWT client: key file + target_audience → ID token for that audience', async () => {
  const key = JSON.parse(await readFile(creds.files.serviceAccount!, 'utf8'));
  // google-auth-library hard-codes https://oauth2.googleapis.com/token; the transport routes it, as it would for Private Service Connect.
  const transporter = new gaxios.Gaxios({ fetchImplementation: toTokenEndpoint(emu.urls.token!) });
  const client = new JWT({ email: key.client_email, key: key.private_key, keyId: key.private_key_id, transporter });
  const audience = emu.urls.services.hello!;
  const token = await client.fetchIdToken(audience);
  const claims = claimsOf(token);
  assert.equal(claims.aud, audience);
  assert.equal(claims.email, key.client_email);
  assert.equal(claims.iss, 'https://accounts.google.com');
  assert.equal(claims.email_verified, true);
  assert.match(claims.sub, /^\d{21}$/);
  assert.ok(await verifyWithJwks(token));
  await verifyWithLibrary(token, audience);
});

test('UserRefreshClient: refresh grant → access token, and an ID token whose audience is the OAuth client', async () => {
  const file = JSON.parse(await readFile(creds.files.authorizedUser!, 'utf8'));
  const client = new UserRefreshClient({ clientId: file.client_id, clientSecret: file.client_secret, refreshToken: file.refresh_token, endpoints: { oauth2TokenUrl: emu.urls.token } });
  const { token } = await client.getAccessToken();
  assert.match(token!, /^ya29\./);
  const idToken = await client.fetchIdToken('https://ignored.example');
  assert.equal(claimsOf(idToken).aud, file.client_id, 'a user cannot choose the audience');
  assert.ok(await verifyWithJwks(idToken));
});

test('Impersonated: user source → generateIdToken with includeEmail', async () => {
  const file = JSON.parse(await readFile(creds.files.impersonated!, 'utf8'));
  const src = file.source_credentials;
  const sourceClient = new UserRefreshClient({ clientId: src.client_id, clientSecret: src.client_secret, refreshToken: src.refresh_token, endpoints: { oauth2TokenUrl: emu.urls.token } });
  const target = /serviceAccounts\/([^:]+):/.exec(file.service_account_impersonation_url)![1]!;
  const client = new Impersonated({ sourceClient, targetPrincipal: target, targetScopes: ['https://www.googleapis.com/auth/cloud-platform'], endpoint: emu.urls.iam });
  const audience = emu.urls.services.hello!;
  const token = await client.fetchIdToken(audience, { includeEmail: true });
  assert.equal(claimsOf(token).email, target);
  assert.equal(claimsOf(token).aud, audience);
  const access = await client.getAccessToken();
  assert.match(access.token!, /^ya29\./);
  await verifyWithLibrary(token, audience);
});

test('Compute: gcp-metadata through GCE_METADATA_HOST', async () => {
  process.env.GCE_METADATA_HOST = emu.urls.metadataHost;
  try {
    const client = new Compute();
    const token = await client.fetchIdToken('https://svc.example');
    const claims = claimsOf(token);
    assert.equal(claims.aud, 'https://svc.example');
    assert.equal(claims.email, 'runtime@demo-project.iam.gserviceaccount.com');
    assert.equal(claims.google.compute_engine.project_id, 'demo-project');
    const access = await client.getAccessToken();
    assert.match(access.token!, /^ya29\./);
    assert.ok(await verifyWithJwks(token));
  } finally {
    delete process.env.GCE_METADATA_HOST;
  }
});

test('IdentityPoolClient: file subject token → STS → service-account impersonation', async () => {
  const file = JSON.parse(await readFile(creds.files.externalAccount!, 'utf8'));
  const client = new IdentityPoolClient(file);
  const { token } = await client.getAccessToken();
  assert.match(token!, /^ya29\./);
  const stsCalls = emu.requests.filter((r) => r.endpoint === 'sts');
  const iamCalls = emu.requests.filter((r) => r.endpoint === 'iam' && r.path.endsWith(':generateAccessToken'));
  assert.ok(stsCalls.some((r) => r.status === 200));
  assert.ok(iamCalls.some((r) => r.status === 200));
});

/** google-auth-library posts JWT grants to Google's own token URL whatever the key says: send them to the emulator. */
function toTokenEndpoint(tokenUrl: string): typeof fetch {
  return (input, init) => fetch(String(input instanceof Request ? input.url : input) === 'https://oauth2.googleapis.com/token' ? tokenUrl : input, init);
}
