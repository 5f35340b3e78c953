// core/diagnosis/doctor/: each check is a function of what was found before it, so each is driven here on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultContext } from '../../../src/core/context.ts';
import { adcSources } from '../../../src/core/diagnosis/doctor/adc.ts';
import type { Found } from '../../../src/core/diagnosis/doctor/check.ts';
import { environment } from '../../../src/core/diagnosis/doctor/environment.ts';
import { resolveDoctorOptions } from '../../../src/core/options.ts';
import type { Discovery } from '../../../src/core/google/discover.ts';

const ctx = defaultContext({ HOME: '/nonexistent' });
const options = resolveDoctorOptions({});
const metadata: Discovery['metadata'] = { base: 'http://169.254.169.254', via: 'default' } as Discovery['metadata'];
const found = (over: Partial<Found>): Found => ({ discovery: null, gcloud: { configDir: '/x', activeConfig: 'default', account: null, project: null, problems: [] } as unknown as Found['gcloud'], resolved: null, source: null, shadowed: [], exchanges: [], ...over });

test('doctor check adc: the named file is missing: CREDENTIALS_FILE_ERROR, and ADC does not fall back', async () => {
  const winner = { origin: 'GOOGLE_APPLICATION_CREDENTIALS' as const, path: '/nonexistent/key.json', via: 'GOOGLE_APPLICATION_CREDENTIALS', present: true };
  const { checks } = await adcSources(ctx, options, found({ discovery: { winner, candidates: [winner], metadata, exchanges: [] } }));
  assert.equal(checks[0]!.status, 'fail');
  assert.equal(checks[0]!.code, 'CREDENTIALS_FILE_ERROR');
  assert.match(checks[0]!.summary, /does not fall back/);
});

test('doctor check adc: nothing anywhere: NO_CREDENTIALS with the login command', async () => {
  const { checks } = await adcSources(ctx, options, found({ discovery: { winner: null, candidates: [], metadata, exchanges: [] } }));
  assert.equal(checks.at(-1)!.code, 'NO_CREDENTIALS');
  assert.match(checks.at(-1)!.fix, /gcloud auth application-default login/);
});

const skews: [string, number, string][] = [
  ['in step', 0, 'ok'],
  ['five minutes ahead', 300, 'warn'],
  ['five minutes behind', -300, 'warn'],
];
for (const [name, seconds, status] of skews) {
  test(`doctor check environment: a clock ${name} of Google's Date header is ${status} (injected clock)`, async () => {
    const google = Date.parse('2026-12-01T10:00:00Z');
    const exchanges = [{ method: 'POST', url: 'https://oauth2.googleapis.com/token', status: 200, durationMs: 1, date: new Date(google).toUTCString() }];
    const { checks } = await environment({ ...ctx, now: () => google + seconds * 1000 }, options, found({ exchanges }));
    const clock = checks.find((c) => c.id === 'clock')!;
    assert.equal(clock.status, status);
    if (status === 'warn') assert.equal(clock.code, 'CLOCK_SKEW');
  });
}
