// `npm run demo`: the story the Cloud Run tutorials tell, run for real against the in-process emulator.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../cli/main.ts';
import { processIO } from '../cli/io.ts';
import { defaultScenario, startEmulator } from '../emulator/index.ts';

const scenario = defaultScenario();
// A strict target: it accepts only tokens minted for its own URL, so a user's own token is turned away.
scenario.switches = { acceptAdcClientIdAudience: false, acceptGcloudClientIdAudience: false };
const emu = await startEmulator(scenario);
const dir = await mkdtemp(join(tmpdir(), 'idcall-demo-'));
const home = await mkdtemp(join(tmpdir(), 'idcall-demo-home-'));
const failures: string[] = [];

try {
  const creds = await emu.writeCredentials(dir);
  const SA = (name: string) => `${name}@${scenario.project.id}.iam.gserviceaccount.com`;
  const service = (name: string) => ({ url: `${emu.urls.services[name]}/api`, audience: emu.serviceRunUrls[name]![0]! });
  const base = { HOME: home, PATH: process.env.PATH, IDCALL_CERTS_URL: emu.urls.jwks, IDCALL_IAM_URL: emu.urls.iam, NO_COLOR: process.env.NO_COLOR, TERM: process.env.TERM };
  const bobFile = join(dir, 'bob.json');
  await (await import('node:fs/promises')).writeFile(bobFile, JSON.stringify(emu.userCredentials('bob@example.com')), { mode: 0o600 });

  const scene = async (title: string, story: string, env: Record<string, string | undefined>, name: string, extra: string[], expectExit: number) => {
    const { url, audience } = service(name);
    await show(title, story, env, ['call', url, '--audience', audience, ...extra], expectExit);
  };
  const show = async (title: string, story: string, env: Record<string, string | undefined>, args: string[], expectExit: number) => {
    const shownEnv = Object.entries(env)
      .filter(([k]) => !(k in base))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    process.stdout.write(`\n━━━ ${title}\n${story}\n$ ${shownEnv ? shownEnv + ' ' : ''}idcall ${args.join(' ')}\n\n`);
    const code = await run(args, { ...processIO(), env: { ...base, ...env } });
    process.stdout.write(`(exit status ${code})\n`);
    if (code !== expectExit) failures.push(`${title}: exit ${code}, expected ${expectExit}`);
  };

  process.stdout.write(`idcall demo — a local Google (project ${scenario.project.id}) with two private Cloud Run services:\n`);
  process.stdout.write(`  hello   ${emu.serviceRunUrls.hello![0]}  (served at ${emu.urls.services.hello})\n  private ${emu.serviceRunUrls.private![0]}  (served at ${emu.urls.services.private})\n`);
  process.stdout.write(`and a Cloud Function, an app behind IAP and an API Gateway (scenes 8–12).\n`);

  const keyEnv = { GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount };
  await scene('1. Service to service, no IAM binding', `The caller's service-account key mints a valid token, but ${SA('caller')} has no roles/run.invoker on "private".`, keyEnv, 'private', [], 4);
  emu.grant({ kind: 'service', name: 'private' }, 'roles/run.invoker', `serviceAccount:${SA('caller')}`);
  await scene('2. The binding granted', 'After `gcloud run services add-iam-policy-binding private … --role=roles/run.invoker`, the same call succeeds.', keyEnv, 'private', [], 0);
  await scene('3. A developer\'s own token', 'After `gcloud auth application-default login`, ADC holds user credentials. A user\'s ID token is for the OAuth client, not the service.', { GOOGLE_APPLICATION_CREDENTIALS: creds.files.authorizedUser }, 'hello', [], 4);
  await scene('4. Impersonation without the token-creator role', `bob@example.com tries to act as ${SA('invoker')} but holds no roles/iam.serviceAccountTokenCreator on it.`, { GOOGLE_APPLICATION_CREDENTIALS: bobFile }, 'hello', ['--impersonate-service-account', SA('invoker')], 3);
  await scene('5. Impersonation with it', `alice@example.com holds the role, so she mints a token as ${SA('invoker')}, which may invoke "hello".`, { GOOGLE_APPLICATION_CREDENTIALS: creds.files.authorizedUser }, 'hello', ['--impersonate-service-account', SA('invoker')], 0);
  await scene('6. A federated workload (another cloud, a CI job)', 'An external OIDC token is exchanged at STS, then a service account bound to the pool mints the ID token.', { GOOGLE_APPLICATION_CREDENTIALS: creds.files.externalAccount }, 'hello', [], 0);
  await scene('7. On Google Cloud: the metadata server', 'No files at all: the attached service account mints through the metadata server.', { GCE_METADATA_HOST: emu.urls.metadataHost }, 'hello', [], 0);

  // Other front ends (google-wire.md §11–§13), served on local ports: the host says nothing, the answer does.
  const fn1 = emu.urls.services.fn1!;
  await show('8. A Cloud Function (1st gen) called with the host as audience', 'Libraries that mint for the origin get 401 from a 1st-gen function: it accepts only its full URL.', keyEnv, ['call', `${fn1}/fn1`, '--target-kind', 'cloud_functions', '--audience', fn1], 4);
  await show('9. The same function, idcall\'s default audience', 'For a Cloud Functions target idcall mints for the function URL, name included.', keyEnv, ['call', `${fn1}/fn1`, '--target-kind', 'cloud_functions'], 0);
  const iap = scenario.services.find((s) => s.name === 'iap-app')!.iap!;
  await show('10. An app behind Identity-Aware Proxy, the URL as audience', 'IAP wants its OAuth client ID as audience; idcall asks IAP once, without a token, which client its sign-in uses.', keyEnv, ['call', `${emu.urls.services['iap-app']}/`], 4);
  await show('11. The same app with the client ID', 'With --audience CLIENT_ID the token passes IAP (idcall always asks for the email claim IAP requires).', keyEnv, ['call', `${emu.urls.services['iap-app']}/`, '--audience', iap.clientId], 0);
  const gateway = scenario.services.find((s) => s.name === 'gateway')!.gateway!;
  gateway.issuers = [`https://securetoken.google.com/${scenario.project.id}`];
  await show('12. An API Gateway that accepts only Firebase tokens', 'The API config names another issuer, so ESPv2 refuses Google\'s ID token whatever its audience.', keyEnv, ['call', `${emu.urls.services.gateway}/`, '--audience', `https://${gateway.serviceName}`], 4);

  process.stdout.write(failures.length ? `\nDemo finished with surprises:\n  ${failures.join('\n  ')}\n` : '\nDemo finished: every step behaved as Google\'s documentation describes.\n');
} finally {
  await emu.close();
  await rm(dir, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
}
process.exitCode = failures.length ? 1 : 0;
