// gcloud's own state, read from its config directory without running it: account, stored credentials, session.
import { isDirectory } from '../../files.ts';
import { readGcloudCredentialAccounts, readGcloudSession } from '../../google/gcloud.ts';
import { humanDuration } from '../../google/verify.ts';
import { check, type DoctorCheck } from './check.ts';

export const gcloudCli: DoctorCheck = async (ctx, _options, { discovery, gcloud }) => {
  const checks = [];
  const adcPath = discovery?.candidates.find((c) => c.origin === 'well_known_file');
  const details = [`config directory ${gcloud.configDir}`, `active configuration ${gcloud.activeConfig}`, `account ${gcloud.account ?? '(none)'}`, `project ${gcloud.project ?? '(none)'}`];
  if (gcloud.account && adcPath && !adcPath.present) {
    checks.push(
      check('gcloud', 'warn', `gcloud CLI is logged in as ${gcloud.account}, but there is no application-default login: Google's libraries and idcall do not use the CLI's login`, {
        details,
        fix: 'Run `gcloud auth application-default login` (or use --source gcloud to borrow the CLI\'s token).',
      }),
    );
  } else if (ctx.env.CLOUDSDK_CONFIG && !(await isDirectory(gcloud.configDir))) {
    checks.push(check('gcloud', 'warn', `CLOUDSDK_CONFIG names ${gcloud.configDir}, which does not exist: gcloud and the gcloud-login ADC source find nothing there`, { details, fix: 'Unset CLOUDSDK_CONFIG, or point it at your gcloud configuration directory (gcloud info --format="value(config.paths.global_config_dir)").' }));
  } else if (gcloud.problems.length) {
    checks.push(check('gcloud', 'warn', gcloud.problems[0]!, { details: [...details, ...gcloud.problems.slice(1)], fix: `Replace it with gcloud's own file (gcloud config configurations activate default), or point CLOUDSDK_CONFIG elsewhere.` }));
  } else {
    checks.push(check('gcloud', 'ok', gcloud.account ? `gcloud CLI account ${gcloud.account}, project ${gcloud.project ?? '(none)'}` : 'gcloud CLI: no account configured', { details }));
  }
  if (!gcloud.account) return { checks };
  const stored = await readGcloudCredentialAccounts(gcloud.configDir);
  if (stored && !stored.includes(gcloud.account)) {
    checks.push(check('gcloud-credentials', 'warn', `gcloud CLI account ${gcloud.account} has no stored credentials (gcloud auth list shows ${stored.length ? stored.join(', ') : 'none'}): every gcloud command as it fails`, { fix: `gcloud auth login ${gcloud.account}` }));
  }
  const session = await readGcloudSession(gcloud.configDir, gcloud.account);
  if (session?.accessTokenExpiry) {
    const left = (session.accessTokenExpiry - ctx.now()) / 1000;
    const idLeft = session.idTokenExpiry ? (session.idTokenExpiry - ctx.now()) / 1000 : null;
    checks.push(
      check('gcloud-session', left < 300 ? 'warn' : 'ok', `gcloud CLI session of ${gcloud.account}: cached access token ${left > 0 ? `expires in ${humanDuration(left)}` : `expired ${humanDuration(-left)} ago`}${idLeft !== null ? `, last ID token ${idLeft > 0 ? `expires in ${humanDuration(idLeft)}` : `expired ${humanDuration(-idLeft)} ago`}` : ''}`, {
        ...(left < 300 ? { fix: 'gcloud refreshes it on next use; if that fails (revoked, reauthentication required), run `gcloud auth login`.' } : {}),
      }),
    );
  }
  return { checks };
};
