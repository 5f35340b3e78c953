// core/diagnosis/verdict.ts: from the target's status and what the verify step saw to one cause code and the right fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serviceFromUrl, verdictForResponse } from '../../../src/core/diagnosis/verdict.ts';
import type { Finding, VerifyResult } from '../../../src/core/google/verify.ts';

const HELLO = 'https://hello-123456789012.us-central1.run.app';
const SA = 'caller@demo-project.iam.gserviceaccount.com';

function verified(...findings: Finding[]): VerifyResult {
  return { status: 'ok', summary: '', claims: {}, header: {}, findings, signature: { status: 'valid' }, skewSeconds: null, kind: 'id_token', exchanges: [] };
}
const ok = verified({ check: 'audience', status: 'ok', text: `aud matches ${HELLO}` });

const cases: [string, number, VerifyResult | null, string, RegExp][] = [
  ['2xx is OK', 200, ok, 'OK', /^$/],
  ['403 names the service, region and member to grant', 403, ok, 'INVOKER_DENIED', /^gcloud run services add-iam-policy-binding hello --region=us-central1 --member=serviceAccount:caller@demo-project\.iam\.gserviceaccount\.com --role=roles\/run\.invoker$/],
  ['401 with an expired token', 401, verified({ check: 'expiry', status: 'fail', code: 'TOKEN_EXPIRED', text: 'expired 3 min ago' }), 'TOKEN_EXPIRED', /Mint a fresh token/],
  ['401 with a forged signature is SIGNATURE_INVALID, not an audience problem', 401, verified({ check: 'signature', status: 'fail', code: 'SIGNATURE_INVALID', text: 'signature: does not verify' }), 'SIGNATURE_INVALID', /altered, or signed by something else/],
  ['401 with a user token', 401, verified({ check: 'audience', status: 'warn', code: 'USER_TOKEN_AUDIENCE', text: 'aud is the OAuth client' }), 'USER_TOKEN_AUDIENCE', /--impersonate-service-account SA_EMAIL/],
  ['401 with a good-looking token: a custom domain, fix on the called service', 401, ok, 'AUDIENCE_MISMATCH', /gcloud run services update hello --region=us-central1 --add-custom-audiences=/],
  ['404', 404, ok, 'NOT_FOUND', /internal-only ingress/],
  ['a redirect is never followed', 302, ok, 'TARGET_ERROR', /Call the final URL directly/],
  ['5xx: the token was accepted', 503, ok, 'TARGET_ERROR', /logs/],
];
for (const [name, status, verify, code, fix] of cases) {
  test(`verdict: ${name}`, () => {
    const verdict = verdictForResponse({ status, host: new URL(HELLO).host, ...(status === 302 ? { redirect: 'https://elsewhere.example/' } : {}) }, verify, SA, serviceFromUrl(HELLO), HELLO);
    assert.equal(verdict.code, code);
    assert.match(verdict.fix, fix);
  });
}

test('verdict: a wrong --audience naming another service is fixed on the called one, never on the other', () => {
  const other = 'https://private-123456789012.us-central1.run.app';
  const v = verdictForResponse({ status: 401, host: new URL(HELLO).host }, verified({ check: 'audience', status: 'ok', text: 'aud matches' }), SA, serviceFromUrl(HELLO), other, { origin: HELLO, fromFlag: true, calledService: serviceFromUrl(HELLO) });
  assert.equal(v.code, 'AUDIENCE_MISMATCH');
  assert.match(v.fix, /drop --audience/);
  assert.doesNotMatch(v.fix, /services update private/);
});

test('verdict: service names and regions from both run.app URL forms and from function URLs', () => {
  assert.deepEqual(serviceFromUrl(HELLO), { kind: 'run', name: 'hello', region: 'us-central1' });
  assert.deepEqual(serviceFromUrl('https://hello-abc123xyz-uc.a.run.app/x'), { kind: 'run', name: 'hello', region: 'us-central1' });
  assert.deepEqual(serviceFromUrl('https://us-east1-proj.cloudfunctions.net/fn/path'), { kind: 'function', name: 'fn', region: 'us-east1' });
  assert.equal(serviceFromUrl('https://api.example.com/'), null);
});
