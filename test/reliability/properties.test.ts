// Property tests, 10,000 generated inputs each: no crash, only typed errors, and the invariants hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeJwt, JwtDecodeError } from '../../src/core/google/jwt.ts';
import { parseCredential } from '../../src/core/google/load.ts';
import { IdcallError } from '../../src/core/errors.ts';
import { normaliseAudience, parseTargetUrl } from '../../src/core/audience.ts';
import { extractToken } from '../../src/core/diagnosis/inspect.ts';
import { endToEnd, hopByHop } from '../../src/proxy/headers.ts';
import { placeToken } from '../../src/core/net/token-header.ts';
import { hostAllowed } from '../../src/proxy/guards.ts';

const RUNS = { numRuns: 10_000 };
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

test('JWT decoder: any input decodes or throws JwtDecodeError, never anything else', () => {
  const segment = fc.oneof(fc.string(), fc.base64String().map((s) => s.replace(/=+$/, '')), fc.jsonValue().map(b64));
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.tuple(segment, segment, segment).map((p) => p.join('.'))), (input) => {
      try {
        const decoded = decodeJwt(input);
        assert.equal(typeof decoded.header, 'object');
        assert.equal(typeof decoded.claims, 'object');
      } catch (err) {
        assert.ok(err instanceof JwtDecodeError, `untyped error: ${String(err)}`);
      }
    }),
    RUNS,
  );
});

test('JWT decoder: what is encoded is decoded', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.dictionary(fc.string(), fc.jsonValue()), (header, claims) => {
      const decoded = decodeJwt(`${b64(header)}.${b64(claims)}.sig`);
      assert.deepEqual(decoded.claims, JSON.parse(JSON.stringify(claims)));
      assert.deepEqual(decoded.header, JSON.parse(JSON.stringify(header)));
    }),
    RUNS,
  );
});

test('credential loader: any JSON object is accepted or refused with one clear, one-line IdcallError', () => {
  const types = fc.constantFrom('service_account', 'authorized_user', 'impersonated_service_account', 'external_account', 'external_account_authorized_user', 'gdch_service_account', 'bogus');
  const field = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.webUrl(), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }));
  const names = fc.constantFrom('client_email', 'private_key', 'token_uri', 'client_id', 'client_secret', 'refresh_token', 'service_account_impersonation_url', 'source_credentials', 'delegates', 'audience', 'subject_token_type', 'credential_source', 'token_url');
  const credential = fc.record({ type: types, fields: fc.dictionary(names, field) }).map(({ type, fields }) => ({ type, ...fields }));
  fc.assert(
    fc.property(fc.oneof(credential, fc.dictionary(fc.string(), fc.jsonValue()) as fc.Arbitrary<Record<string, unknown>>), (json) => {
      try {
        const loaded = parseCredential(json as Record<string, any>, '/tmp/key.json', 'GOOGLE_APPLICATION_CREDENTIALS');
        assert.ok(loaded.type);
      } catch (err) {
        assert.ok(err instanceof IdcallError, `untyped error: ${String(err)}`);
        assert.ok(['CREDENTIALS_FILE_ERROR', 'UNSUPPORTED_CREDENTIAL_TYPE'].includes(err.code), err.code);
        assert.ok(!err.message.includes('\n'), 'one line');
        assert.ok(err.message.includes('/tmp/key.json'), 'names the file');
      }
    }),
    RUNS,
  );
});

test('audience normaliser: idempotent, and the origin of any http(s) URL', () => {
  fc.assert(
    fc.property(fc.oneof(fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.string()), (input) => {
      const once = normaliseAudience(input);
      assert.equal(normaliseAudience(once), once);
      if (/^https?:\/\//i.test(input.trim()) && URL.canParse(input.trim())) {
        assert.equal(once, new URL(input.trim()).origin);
        assert.ok(!once.endsWith('/'));
      }
    }),
    RUNS,
  );
});

test('URL parser and token extractor: any input is accepted or refused with a USAGE_ERROR', () => {
  fc.assert(
    fc.property(fc.oneof(fc.webUrl(), fc.string(), fc.string().map((s) => `https://${s}`)), (input) => {
      for (const parse of [() => parseTargetUrl(input), () => extractToken(input)]) {
        try {
          parse();
        } catch (err) {
          assert.ok(err instanceof IdcallError && err.code === 'USAGE_ERROR', `untyped error: ${String(err)}`);
        }
      }
    }),
    RUNS,
  );
});

const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/);
test('proxy headers: nothing hop-by-hop, nor named by Connection, is forwarded; end-to-end headers all are', () => {
  fc.assert(
    fc.property(fc.dictionary(headerName, fc.string({ maxLength: 20 })), fc.array(headerName, { maxLength: 4 }), (headers, named) => {
      const input: Record<string, string> = { ...headers, ...(named.length ? { connection: named.join(', ') } : {}) };
      const out = endToEnd(input);
      const drop = hopByHop(input);
      for (const name of Object.keys(out)) assert.ok(!drop.has(name), `${name} forwarded`);
      for (const [name, value] of Object.entries(input)) if (!drop.has(name)) assert.equal(out[name], value);
      for (const n of named) assert.equal(out[n], undefined);
    }),
    RUNS,
  );
});

test('proxy headers: the token never overwrites a header the client sent', () => {
  fc.assert(
    fc.property(fc.option(fc.string()), fc.option(fc.string()), fc.constantFrom('authorization' as const, 'x-serverless-authorization' as const), (auth, serverless, preferred) => {
      const headers: Record<string, string> = {};
      if (auth !== null) headers.authorization = auth;
      if (serverless !== null) headers['x-serverless-authorization'] = serverless;
      const before = { ...headers };
      const placed = placeToken(headers, preferred, 'T');
      for (const [k, v] of Object.entries(before)) assert.equal(headers[k], v, `${k} overwritten`);
      if (placed) assert.equal(headers[placed], 'Bearer T');
    }),
    RUNS,
  );
});

test('proxy allowlist: *.run.app matches exactly the subdomains of run.app, on any port', () => {
  fc.assert(
    fc.property(fc.domain(), fc.option(fc.integer({ min: 1, max: 65535 })), (domain, port) => {
      const host = port === null ? domain : `${domain}:${port}`;
      assert.equal(hostAllowed(['*.run.app'], host), domain.toLowerCase().endsWith('.run.app'));
      assert.equal(hostAllowed([domain], host), true);
    }),
    RUNS,
  );
});
