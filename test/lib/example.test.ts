// examples/caller-service.ts, a service calling another private service, run against the emulator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../src/index.ts';
import { startCaller } from '../../examples/caller-service.ts';
import { tempDir } from '../helpers/cli.ts';

test('the example caller service reaches the private service with a token', async () => {
  const emu = await startEmulator();
  const dir = await tempDir();
  try {
    const creds = await emu.writeCredentials(dir.path);
    const env = { HOME: dir.path, GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none' };
    const caller = await startCaller(emu.urls.services.hello!, 0, { env });
    const port = (caller.address() as { port: number }).port;
    const body = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { upstreamStatus: number; upstream: { caller: string; path: string } };
    assert.equal(body.upstreamStatus, 200);
    assert.equal(body.upstream.caller, 'caller@demo-project.iam.gserviceaccount.com');
    assert.equal(body.upstream.path, '/greeting');
    const denied = await startCaller(emu.urls.services.private!, 0, { env });
    const deniedBody = (await (await fetch(`http://127.0.0.1:${(denied.address() as { port: number }).port}/`)).json()) as { upstreamStatus: number };
    assert.equal(deniedBody.upstreamStatus, 403);
    caller.close();
    denied.close();
  } finally {
    await emu.close();
    await dir.remove();
  }
});
