// core/diagnosis/front-ends.ts: each answer IAP and ESPv2 give (google-wire.md §11.3, §13.2) → its cause code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frontEndVerdict, type FrontEndAnswer } from '../../../src/core/diagnosis/front-ends.ts';
import type { TargetInfo } from '../../../src/core/target-kind.ts';

const iap = (status: number, body: string, more: Partial<FrontEndAnswer> = {}): FrontEndAnswer => ({
  status,
  url: new URL('https://demo-project.uc.r.appspot.com/'),
  headers: { 'x-goog-iap-generated-response': 'true', 'content-type': 'text/html; charset=UTF-8' },
  body,
  target: { kind: 'iap', kindSource: 'host', audience: 'https://demo-project.uc.r.appspot.com', audienceSource: 'origin' } satisfies TargetInfo,
  principal: 'caller@p.iam.gserviceaccount.com',
  sourceType: 'service_account',
  tokenHeader: 'Authorization',
  service: null,
  ...more,
});
const esp = (status: number, message: string): FrontEndAnswer => ({
  ...iap(status, JSON.stringify({ code: status, message })),
  url: new URL('https://gw-abc.uc.gateway.dev/v1/x'),
  headers: { 'content-type': 'application/json' },
  target: { kind: 'api_gateway', kindSource: 'answer', audience: 'https://gw-abc.uc.gateway.dev', audienceSource: 'origin' },
});

const cases: [string, FrontEndAnswer, string | null, RegExp?][] = [
  ['IAP 302 empty token', iap(302, 'Invalid IAP credentials: empty token', { tokenHeader: 'X-Serverless-Authorization' }), 'TOKEN_NOT_SEEN', /--header-name Authorization/],
  ['IAP audience (current wording)', iap(401, 'Invalid IAP credentials: Invalid bearer token. Invalid JWT audience.'), 'AUDIENCE_MISMATCH', /OAuth client ID/],
  ['IAP audience (older wording)', iap(401, "Invalid IAP credentials: JWT audience doesn't match this application"), 'AUDIENCE_MISMATCH'],
  ['IAP audience for a user credential explains impersonation', iap(401, 'Invalid IAP credentials: Invalid bearer token. Invalid JWT audience.', { sourceType: 'authorized_user' }), 'AUDIENCE_MISMATCH', /--impersonate-service-account/],
  ['IAP email claim', iap(401, "Invalid IAP credentials: JWT 'email' claim isn't a string"), 'EMAIL_CLAIM_MISSING'],
  ['IAP email claim from the metadata server', iap(401, "Invalid IAP credentials: JWT 'email' claim isn't a string", { sourceType: 'compute' }), 'EMAIL_CLAIM_MISSING', /format=full/],
  ['IAP expired (unconfirmed wording)', iap(401, 'Invalid IAP credentials: Expired JWT'), 'TOKEN_EXPIRED'],
  ['IAP bad signature', iap(401, 'Invalid IAP credentials: JWT signature is invalid'), 'SIGNATURE_INVALID'],
  ['IAP access token', iap(401, 'Invalid IAP credentials: Unable to parse JWT'), 'AUDIENCE_MISMATCH', /Google-signed ID token/],
  ['IAP 403 on App Engine', iap(403, 'IAP_App: Access denied for user x requesting y.'), 'INVOKER_DENIED', /--resource-type=app-engine --member=serviceAccount:caller@p\.iam\.gserviceaccount\.com --role=roles\/iap\.httpsResourceAccessor/],
  ['IAP 403 on Cloud Run directly', { ...iap(403, 'denied'), url: new URL('https://svc-123.us-east1.run.app/'), service: { kind: 'run', name: 'svc', region: 'us-east1' } }, 'INVOKER_DENIED', /gcloud beta iap web add-iam-policy-binding --resource-type=cloud-run --service=svc --region=us-east1/],
  ['not IAP\'s own answer (Cloud Run\'s check behind it)', { ...iap(403, 'Error: Forbidden'), headers: {} }, null],
  ['ESPv2 Jwt is missing', esp(401, 'Jwt is missing'), 'TOKEN_NOT_SEEN'],
  ['ESPv2 issuer', esp(401, 'Jwt issuer is not configured'), 'ISSUER_NOT_ACCEPTED', /x-google-issuer/],
  ['ESPv2 audience', esp(403, 'Audiences in Jwt are not allowed'), 'AUDIENCE_MISMATCH', /x-google-audiences/],
  ['ESPv2 expired', esp(401, 'Jwt is expired'), 'TOKEN_EXPIRED'],
  ['ESPv2 signature', esp(401, 'Jwt verification fails'), 'SIGNATURE_INVALID'],
  ['ESPv2 keys', esp(401, 'Jwks remote fetch is failed'), 'TARGET_ERROR', /x-google-jwks_uri/],
  ['a JSON body that is not ESPv2\'s envelope', { ...esp(401, 'x'), body: '{"error":"nope"}' }, null],
];
for (const [name, answer, code, fix] of cases) {
  test(`front ends: ${name} → ${code ?? 'not recognised'}`, () => {
    const verdict = frontEndVerdict(answer);
    assert.equal(verdict?.code ?? null, code);
    if (fix) assert.match(verdict!.fix, fix);
  });
}
