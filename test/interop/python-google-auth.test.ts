// Google's Python auth library (google-auth, as bundled with gcloud), a client nobody here wrote, with nothing but the
// emulator's google-env.sh: every credential file loads and refreshes, fetch_id_token mints, verify_oauth2_token
// checks against Google's certificates, and the token opens a run.app service. Skipped, with the reason, where gcloud
// (and so its bundled library) or python3 is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { emulatorFixture } from '../helpers/cli.ts';

const run = promisify(execFile);
const gcloudBin = await run('sh', ['-c', 'command -v gcloud'], { timeout: 5000 }).then((r) => r.stdout.trim(), () => '');
const thirdParty = gcloudBin ? join(dirname(realpathSync(gcloudBin)), '..', 'lib', 'third_party') : '';
const hasLibrary = thirdParty !== '' && existsSync(join(thirdParty, 'google', 'auth', '__init__.py'));
const hasPython = await run('python3', ['--version'], { timeout: 5000 }).then(() => true, () => false);
const skip = !hasPython ? 'python3 is not installed' : !hasLibrary ? 'gcloud (whose bundled google-auth this uses) is not installed' : false;
const fx = emulatorFixture();

const SCRIPT = `
import json, sys
import google.auth, google.auth.transport.requests as tr, requests
from google.oauth2 import id_token
req = tr.Request()
out = {}
for name in sys.argv[2:]:
    try:
        creds, project = google.auth.load_credentials_from_file(sys.argv[1] + "/" + name, scopes=["https://www.googleapis.com/auth/cloud-platform"])
        creds.refresh(req)
        out[name] = {"ok": creds.token is not None, "project": project, "type": type(creds).__module__}
    except Exception as e:
        out[name] = {"error": type(e).__name__ + ": " + str(e)[:300]}
aud = "https://hello-123456789012.us-central1.run.app"
token = id_token.fetch_id_token(req, aud)
out["verified"] = id_token.verify_oauth2_token(token, req, audience=aud)["email"]
out["status"] = requests.get(aud + "/from-python", headers={"Authorization": "Bearer " + token}).status_code
print(json.dumps(out))
`;

test('google-auth (Python) with only google-env.sh: key, impersonation, user and external-account files refresh; fetch_id_token, verify_oauth2_token and the call work offline', { skip, timeout: 60_000 }, async () => {
  const env = { PATH: process.env.PATH!, HOME: fx.dir.path, PYTHONPATH: thirdParty, ...fx.creds.googleEnv! };
  const files = ['service-account.json', 'impersonated.json', 'authorized-user.json', 'external-account.json'];
  const { stdout } = await run('python3', ['-c', SCRIPT, fx.creds.files.google!, ...files], { env, timeout: 50_000 });
  const out = JSON.parse(stdout) as Record<string, { ok?: boolean; project?: string | null; error?: string }> & { verified: string; status: number };
  for (const name of files) assert.equal(out[name]!.ok, true, `${name}: ${out[name]!.error}`);
  // Loading an external-account file asks Cloud Resource Manager for the project id behind the audience's number.
  assert.equal(out['external-account.json']!.project, 'demo-project');
  assert.equal(out.verified, 'caller@demo-project.iam.gserviceaccount.com');
  assert.equal(out.status, 200);
});
