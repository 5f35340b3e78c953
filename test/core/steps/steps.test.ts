// core/steps/steps.ts: each step on its own, driven with an injected Context (environment, clocks) against a local emulator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultContext, type Context } from '../../../src/core/context.ts';
import { resolveSourceOptions } from '../../../src/core/options.ts';
import { runCall, runDiscover, runLoad, runMint, runVerify, StepFailure } from '../../../src/core/steps/steps.ts';
import { emulatorFixture } from '../../helpers/cli.ts';

const fx = emulatorFixture();
const context = (env: Record<string, string | undefined>, over: Partial<Context> = {}): Context => ({ ...defaultContext({ HOME: fx.dir.path, METADATA_SERVER_DETECTION: 'none', ...env }), ...over });
const options = () => resolveSourceOptions({ 'certs-url': fx.emu.urls.jwks, 'iam-url': fx.emu.urls.iam });

async function minted(env: Record<string, string | undefined>, audience: string, over: Partial<Context> = {}) {
  const ctx = context(env, over);
  const d = await runDiscover(ctx, options());
  const l = await runLoad(ctx, d.discovery, options());
  return { ctx, d, l, m: await runMint(ctx, l.resolved, audience, options()) };
}

test('steps: discover names the winner and why; load says who; mint says how; nothing is changed in the inputs', async () => {
  const hello = fx.emu.urls.services.hello!;
  const { d, l, m } = await minted({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }, hello);
  assert.equal(d.discovery?.winner?.origin, 'GOOGLE_APPLICATION_CREDENTIALS');
  assert.equal(d.step.status, 'ok');
  assert.equal(l.resolved.source?.type, 'service_account');
  const before = structuredClone(l.resolved.source);
  assert.equal(m.step.status, 'ok');
  assert.match(m.step.details[0]!, /JWT-bearer grant/);
  assert.deepEqual(l.resolved.source, before, 'the mint step does not write into what load returned');
});

test('steps: verify reads expiry from the injected clock: the same token is expired two hours later', async () => {
  const hello = fx.emu.urls.services.hello!;
  const { ctx, m } = await minted({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }, hello);
  const now = await runVerify(ctx, m.minted, hello, options());
  assert.equal(now.verify.findings.find((f) => f.check === 'expiry')?.status, 'ok');
  const later = await runVerify({ ...ctx, now: () => Date.now() + 2 * 3600_000 }, m.minted, hello, options());
  assert.equal(later.step.status, 'fail');
  assert.equal(later.verify.findings.find((f) => f.check === 'expiry')?.code, 'TOKEN_EXPIRED');
});

test('steps: a failed step is a StepFailure with its row and a cause code (a user token through an impersonation it may not do)', async () => {
  const ctx = context({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser });
  const d = await runDiscover(ctx, options());
  const l = await runLoad(ctx, d.discovery, options());
  const denied = { ...options(), impersonate: 'no-access@demo-project.iam.gserviceaccount.com' };
  await assert.rejects(runMint(ctx, l.resolved, fx.emu.urls.services.hello!, denied), (err: unknown) => err instanceof StepFailure && err.step.id === 'mint' && err.step.status === 'fail' && err.error.code === 'IMPERSONATION_DENIED');
});

test('steps: call sends the token where the settings say and reports the answer; an unreachable target is a failed row', async () => {
  const hello = new URL(fx.emu.urls.services.hello!);
  const { ctx, m } = await minted({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }, hello.origin);
  const settings = { url: hello.toString(), method: 'GET', headerName: 'X-Serverless-Authorization' as const, timeoutMs: 5000, bodyLimit: 4096, allowInsecure: false, routing: { resolve: [], connectTo: [] } };
  const called = await runCall(ctx, hello, m.minted.token, settings, { headers: [] });
  assert.equal(called.step.status, 'ok');
  assert.equal(called.result?.status, 200);
  assert.equal(JSON.parse(called.result!.body.toString()).via, 'X-Serverless-Authorization');
  const refused = await runCall(ctx, new URL('http://127.0.0.1:9/'), m.minted.token, settings, { headers: [] });
  assert.equal(refused.step.status, 'fail');
  assert.equal(refused.error?.code, 'TARGET_UNREACHABLE');
});
