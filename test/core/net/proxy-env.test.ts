// Which requests go through HTTPS_PROXY / HTTP_PROXY, under NO_PROXY: one table, as curl and Google's libraries read them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayProxy, proxyFor } from '../../../src/core/net/proxy-env.ts';

const P = 'http://proxy.corp:3128';
const cases: [string, string, Record<string, string>, string | undefined][] = [
  ['no proxy variables', 'https://oauth2.googleapis.com/token', {}, undefined],
  ['HTTPS_PROXY for https', 'https://oauth2.googleapis.com/token', { HTTPS_PROXY: P }, P],
  ['lowercase wins over uppercase', 'https://oauth2.googleapis.com/token', { HTTPS_PROXY: 'http://upper:1', https_proxy: P }, P],
  ['https falls back to HTTP_PROXY', 'https://hello-abc-uc.a.run.app/', { HTTP_PROXY: P }, P],
  ['http uses HTTP_PROXY only', 'http://metadata.google.internal/', { HTTPS_PROXY: P }, undefined],
  ['HTTP_PROXY for http', 'http://svc.example/', { HTTP_PROXY: P }, P],
  ['loopback is never proxied', 'http://127.0.0.1:8080/', { HTTP_PROXY: P }, undefined],
  ['localhost is never proxied', 'https://localhost/', { HTTPS_PROXY: P }, undefined],
  ['a link-local metadata address is never proxied (Google, AWS, Azure)', 'http://169.254.169.254/latest/meta-data/', { HTTP_PROXY: P }, undefined],
  ['AWS IMDS over IPv6 is never proxied', 'http://[fd00:ec2::254]/latest/api/token', { HTTP_PROXY: P }, undefined],
  ['metadata.google.internal is never proxied', 'http://metadata.google.internal/computeMetadata/v1/', { HTTP_PROXY: P }, undefined],
  ['NO_PROXY=* exempts everything', 'https://oauth2.googleapis.com/', { HTTPS_PROXY: P, NO_PROXY: '*' }, undefined],
  ['NO_PROXY host matches itself', 'https://oauth2.googleapis.com/', { HTTPS_PROXY: P, NO_PROXY: 'oauth2.googleapis.com' }, undefined],
  ['NO_PROXY domain matches subdomains', 'https://oauth2.googleapis.com/', { HTTPS_PROXY: P, NO_PROXY: 'googleapis.com' }, undefined],
  ['NO_PROXY .domain matches subdomains', 'https://oauth2.googleapis.com/', { HTTPS_PROXY: P, no_proxy: '.googleapis.com' }, undefined],
  ['NO_PROXY *.domain matches subdomains', 'https://sts.googleapis.com/', { HTTPS_PROXY: P, NO_PROXY: 'x.example, *.googleapis.com' }, undefined],
  ['NO_PROXY is not a substring match', 'https://notgoogleapis.com/', { HTTPS_PROXY: P, NO_PROXY: 'googleapis.com' }, P],
  ['NO_PROXY with the right port', 'https://svc.internal:8443/', { HTTPS_PROXY: P, NO_PROXY: 'svc.internal:8443' }, undefined],
  ['NO_PROXY with another port', 'https://svc.internal/', { HTTPS_PROXY: P, NO_PROXY: 'svc.internal:8443' }, P],
  ['NO_PROXY IP address', 'http://169.254.169.254/', { HTTP_PROXY: P, NO_PROXY: '169.254.169.254' }, undefined],
  ['NO_PROXY IPv6 without brackets', 'http://[fd00::1]/', { HTTP_PROXY: P, NO_PROXY: 'fd00::1' }, undefined],
  ['NO_PROXY IPv6 with brackets and port', 'http://[fd00::1]:80/', { HTTP_PROXY: P, NO_PROXY: '[fd00::1]:80' }, undefined],
];

for (const [name, url, env, expected] of cases) {
  test(`proxy for a request: ${name}`, () => assert.equal(proxyFor(new URL(url), env), expected));
}

test('a proxy in a report shows no user name or password', () => {
  assert.equal(displayProxy('http://user:s3cret@proxy.corp:3128/'), 'http://proxy.corp:3128');
  assert.equal(displayProxy('not a url'), '(unparseable proxy URL)');
});
