// core/google/classify.ts: a failed exchange with Google becomes one cause code and the fix for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyFailure, memberOf, type Phase } from '../../../src/core/google/classify.ts';
import type { Exchange } from '../../../src/core/net/transport.ts';

const exchange = (status: number, code = '', message = '', extra: Partial<Exchange> = {}): Exchange => ({ method: 'POST', url: 'https://oauth2.googleapis.com/token', status, durationMs: 1, ...(code ? { googleError: { code, message } } : {}), ...extra });
const SA = 'target@p.iam.gserviceaccount.com';

const cases: [string, Phase, Exchange | undefined, string, RegExp][] = [
  ['a key whose account is gone', 'token', exchange(400, 'invalid_grant', 'Invalid grant: account not found'), 'KEY_REJECTED', /service-accounts enable/],
  ['a deleted key', 'token', exchange(400, 'invalid_grant', 'Invalid JWT Signature.'), 'KEY_REJECTED', /keys create/],
  ['an assertion outside its time window is the clock', 'token', exchange(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token'), 'CLOCK_SKEW', /timedatectl/],
  ['a revoked refresh token', 'refresh', exchange(400, 'invalid_grant', 'Token has been expired or revoked.'), 'REFRESH_TOKEN_REJECTED', /application-default login/],
  ['reauthentication', 'refresh', { ...exchange(400), googleError: { code: 'invalid_grant', message: 'reauth', subtype: 'invalid_rapt' } }, 'REAUTH_REQUIRED', /application-default login/],
  ['IAM denies the caller', 'iam', exchange(403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.getOpenIdToken' denied"), 'IMPERSONATION_DENIED', /--role=roles\/iam\.serviceAccountTokenCreator/],
  ['STS rejects the exchange', 'sts', exchange(400, 'invalid_grant', 'The audience in ID Token does not match'), 'FEDERATION_FAILED', /allowed audiences/],
  ['an instance without a service account', 'metadata', exchange(404, 'not_found', 'service account not enabled'), 'METADATA_ERROR', /Attach a service account/],
  ['a 503 is Google\'s side, after retries', 'token', exchange(503), 'TOKEN_ENDPOINT_ERROR', /status\.cloud\.google\.com/],
  ['a 200 that is not a token is a portal or proxy', 'token', exchange(200), 'TOKEN_ENDPOINT_ERROR', /HTTPS_PROXY/],
  ['no answer at all', 'token', exchange(0, '', '', { status: undefined, error: 'connection refused' }), 'TOKEN_ENDPOINT_ERROR', /network access/],
  ['nothing sent (a subject token that cannot be read)', 'sts', undefined, 'FEDERATION_FAILED', /credential_source/],
];
for (const [name, phase, ex, code, fix] of cases) {
  test(`classify: ${name} → ${code}`, () => {
    const err = classifyFailure(new Error('boom'), phase, ex, { sa: SA, caller: 'me@example.com', permission: 'getOpenIdToken' });
    assert.equal(err.code, code);
    assert.match(err.fix, fix);
  });
}

test('classify: a federated caller is granted workloadIdentityUser on its IAM member URI, not tokenCreator on a made-up user', () => {
  const caller = 'principalSet://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/*';
  const err = classifyFailure(new Error('x'), 'iam', exchange(403, 'PERMISSION_DENIED', 'denied'), { sa: SA, caller, permission: 'getOpenIdToken' });
  assert.match(err.fix, new RegExp(`--member=${caller.replace(/[*/.]/g, '\\$&')} --role=roles/iam\\.workloadIdentityUser`));
  assert.equal(memberOf(SA), `serviceAccount:${SA}`);
  assert.equal(memberOf('alice@example.com'), 'user:alice@example.com');
});
