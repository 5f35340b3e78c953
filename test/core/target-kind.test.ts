// core/target-kind.ts: the kind a host names, and the audience that follows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeTarget, kindFromAnswer, kindFromHost } from '../../src/core/target-kind.ts';

const hosts: [string, string][] = [
  ['hello-123.us-central1.run.app', 'cloud_run'],
  ['us-central1-proj.cloudfunctions.net', 'cloud_functions'],
  ['proj.uc.r.appspot.com', 'iap'],
  ['gw-abc.uc.gateway.dev', 'api_gateway'],
  ['my-api.endpoints.proj.cloud.goog', 'api_gateway'],
  ['api.example.com', 'other'],
  ['run.app.example.com', 'other'],
];
for (const [host, kind] of hosts) test(`target kind: ${host} → ${kind}`, () => assert.equal(kindFromHost(host), kind));

test('target: the audience rule per kind; --audience exactly as given (trimmed); --target-kind wins', () => {
  const fn = new URL('https://us-central1-proj.cloudfunctions.net/hello/sub/path?x=1');
  assert.deepEqual(describeTarget(fn, {}), { kind: 'cloud_functions', kindSource: 'host', audience: 'https://us-central1-proj.cloudfunctions.net/hello', audienceSource: 'function_url' });
  assert.deepEqual(describeTarget(new URL('https://hello-1.us-central1.run.app/api'), {}), { kind: 'cloud_run', kindSource: 'host', audience: 'https://hello-1.us-central1.run.app', audienceSource: 'origin' });
  assert.equal(describeTarget(fn, { audience: '  https://api.example.com/v1/  ' }).audience, 'https://api.example.com/v1/');
  assert.equal(describeTarget(new URL('http://127.0.0.1:8080/fn'), { kind: 'cloud_functions' }).audience, 'http://127.0.0.1:8080/fn');
  assert.equal(describeTarget(new URL('https://us-central1-proj.cloudfunctions.net/'), {}).audienceSource, 'origin', 'no function name: the origin');
});

test('target: the answer names IAP and ESPv2', () => {
  assert.equal(kindFromAnswer(401, { 'x-goog-iap-generated-response': 'true' }, ''), 'iap');
  assert.equal(kindFromAnswer(401, { 'content-type': 'application/json' }, '{"code":401,"message":"Jwt is missing"}'), 'api_gateway');
  assert.equal(kindFromAnswer(401, { 'content-type': 'text/html' }, '<html>'), null);
  assert.equal(kindFromAnswer(200, { 'content-type': 'application/json' }, '{"code":1,"message":"ok"}'), null, 'an app\'s own 200 is not ESPv2');
});
