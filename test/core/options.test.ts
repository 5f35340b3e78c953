// core/options.ts: the one place flags, IDCALL_* and defaults become the options the core takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, resolveCallSettings, resolveProxySettings, resolveSourceOptions, withEnvironment, type OptionTable } from '../../src/core/options.ts';
import { IdcallError } from '../../src/core/errors.ts';

const TABLE: OptionTable = { boolean: ['allow-insecure'], array: ['delegates'], key: { timeout: 1, 'allow-insecure': 1, delegates: 1, 'iam-url': 1, method: 1 } };

test('options: with nothing given, every field is the documented default', () => {
  assert.deepEqual(resolveSourceOptions({}), { source: 'adc', metadataTimeoutMs: DEFAULTS.metadataTimeoutMs, authTimeoutMs: DEFAULTS.authTimeoutMs, endpoints: {}, certsUrl: DEFAULTS.certsUrl, includeEmail: true, format: 'full' });
  assert.deepEqual(resolveCallSettings({ url: 'https://a.run.app' }, false), { url: 'https://a.run.app', method: 'GET', headerName: 'Authorization', timeoutMs: 30_000, bodyLimit: 200, allowInsecure: false, routing: { resolve: [], connectTo: [] } });
  assert.equal(resolveCallSettings({ url: 'x' }, true).method, 'POST', 'a body without a method is a POST (curl)');
  assert.deepEqual(resolveProxySettings({}, false), { listen: '127.0.0.1:8080', headerName: 'Authorization', upstreamTimeoutMs: 60_000, shutdownTimeoutMs: 10_000, logFormat: 'text' });
  assert.equal(resolveProxySettings({}, true).listen, '127.0.0.1:8000');
});

const order: [string, Record<string, unknown>, Record<string, string>, Record<string, unknown>][] = [
  ['the flag wins over IDCALL_*', { timeout: '5s' }, { IDCALL_TIMEOUT: '9s' }, { timeout: '5s' }],
  ['IDCALL_* fills an absent flag', {}, { IDCALL_TIMEOUT: '9s' }, { timeout: '9s' }],
  ['an empty IDCALL_* is unset', {}, { IDCALL_TIMEOUT: '' }, {}],
  ['booleans from the environment', {}, { IDCALL_ALLOW_INSECURE: 'yes' }, { 'allow-insecure': true }],
  ['lists from the environment, comma-separated', {}, { IDCALL_DELEGATES: 'a@x, b@x' }, { delegates: ['a@x', 'b@x'] }],
  ['a variable for an option this command lacks is ignored', {}, { IDCALL_LISTEN: '0.0.0.0:1' }, {}],
];
for (const [name, flags, env, expected] of order) {
  test(`options: ${name}`, () => assert.deepEqual(withEnvironment({ ...flags }, env, TABLE), expected));
}

const refused: [string, () => unknown, RegExp][] = [
  ['a boolean variable that is not one', () => withEnvironment({}, { IDCALL_ALLOW_INSECURE: 'maybe' }, TABLE), /IDCALL_ALLOW_INSECURE="maybe" is not a boolean/],
  ['a duration that is not one', () => resolveCallSettings({ timeout: 'soon' }, false), /--timeout "soon" is not a duration/],
  ['a duration out of range', () => resolveSourceOptions({ 'auth-timeout': '11m' }), /out of range/],
  ['a header the token cannot go in', () => resolveCallSettings({ 'header-name': 'Cookie' }, false), /--header-name "Cookie"/],
  ['an endpoint that is not http(s)', () => resolveSourceOptions({ 'iam-url': 'ftp://x' }), /--iam-url \(or IDCALL_IAM_URL\)/],
  ['--source gcloud with --credentials', () => resolveSourceOptions({ source: 'gcloud', credentials: 'k.json' }), /cannot be combined/],
  ['an impersonation target that is not an email', () => resolveSourceOptions({ 'impersonate-service-account': 'invoker' }), /not a service-account email/],
  ['--body that is not a count', () => resolveCallSettings({ body: 'lots' }, false), /--body lots/],
];
for (const [name, resolve, message] of refused) {
  test(`options: refused with USAGE_ERROR: ${name}`, () => {
    assert.throws(resolve, (err: unknown) => err instanceof IdcallError && err.code === 'USAGE_ERROR' && message.test(err.message));
  });
}

test('options: durations in ms, s and m; header names in any case; methods upper-cased; --body full', () => {
  assert.equal(resolveCallSettings({ timeout: '1500' }, false).timeoutMs, 1500);
  assert.equal(resolveCallSettings({ timeout: '2s' }, false).timeoutMs, 2000);
  assert.equal(resolveCallSettings({ 'max-time': '1m' }, false).maxTimeMs, 60_000);
  assert.equal(resolveCallSettings({ 'header-name': 'x-serverless-authorization' }, false).headerName, 'X-Serverless-Authorization');
  assert.equal(resolveCallSettings({ method: 'patch' }, false).method, 'PATCH');
  assert.equal(resolveCallSettings({ body: 'full' }, false).bodyLimit, Infinity);
  assert.deepEqual(resolveSourceOptions({ delegates: ['a@x,b@x', 'c@x'] }).delegates, ['a@x', 'b@x', 'c@x']);
});
