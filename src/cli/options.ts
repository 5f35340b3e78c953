// The yargs declarations of the options shared by the commands that obtain a token. What they resolve to, and every
// default, is core/options.ts.
import type { Argv } from 'yargs';
import { DEFAULTS } from '../core/options.ts';
import { TARGET_KINDS } from '../core/target-kind.ts';
import { GOOGLE_CERTS_URL } from '../core/endpoints.ts';

export function withGlobalOptions<T>(y: Argv<T>) {
  return y
    .option('json', { type: 'boolean', describe: 'Print the report as one JSON document on stdout' })
    .option('debug', { type: 'boolean', describe: 'Show stack traces for unexpected errors' })
    .option('color', { type: 'boolean', describe: 'Colour output on a terminal (--no-color turns it off; NO_COLOR is honoured)' });
}

export function withSourceOptions<T>(y: Argv<T>) {
  return y
    .option('credentials', { type: 'string', describe: 'Credential file to use instead of Application Default Credentials discovery', group: 'Credentials:' })
    .option('impersonate-service-account', { type: 'string', describe: 'Mint the token as this service account, authorised by whatever credential is found', group: 'Credentials:' })
    .option('delegates', { type: 'string', array: true, describe: 'Delegation chain for impersonation (service-account emails)', group: 'Credentials:' })
    .option('source', { choices: ['adc', 'gcloud'] as const, describe: 'adc (default): Application Default Credentials; gcloud: ask the gcloud CLI for its own identity token', group: 'Credentials:' })
    .option('metadata-timeout', { type: 'string', describe: `Bound for the metadata-server check (default ${DEFAULTS.metadataTimeoutMs} ms; IDCALL_METADATA_TIMEOUT)`, group: 'Endpoints and limits:' })
    .option('auth-timeout', { type: 'string', describe: `Bound for each request to a Google auth endpoint (default ${DEFAULTS.authTimeoutMs} ms; IDCALL_AUTH_TIMEOUT)`, group: 'Endpoints and limits:' })
    .option('token-url', { type: 'string', describe: 'OAuth token URL, e.g. https://oauth2.googleapis.com/token (IDCALL_TOKEN_URL)', group: 'Endpoints and limits:' })
    .option('iam-url', { type: 'string', describe: 'IAM Credentials base URL, e.g. https://iamcredentials.googleapis.com (IDCALL_IAM_URL)', group: 'Endpoints and limits:' })
    .option('sts-url', { type: 'string', describe: 'STS token URL, e.g. https://sts.googleapis.com/v1/token (IDCALL_STS_URL)', group: 'Endpoints and limits:' })
    .option('certs-url', { type: 'string', describe: `Google's signing certificates (default ${GOOGLE_CERTS_URL}; IDCALL_CERTS_URL)`, group: 'Endpoints and limits:' });
}


/** --target-kind: what kind of front end the target is, when its host name does not say (a custom domain, a local port). */
export function withTargetKind<T>(y: Argv<T>) {
  return y.option('target-kind', { choices: TARGET_KINDS, describe: 'Kind of target (default: from the host name, then from its answer): cloud_run, cloud_functions, iap, api_gateway or other' });
}

/** curl's --resolve, --connect-to and --cacert: a real host name reached at another address, and whom to trust there. */
export function withRouting<T>(y: Argv<T>) {
  return y
    .option('resolve', { type: 'string', array: true, describe: 'HOST:PORT:ADDRESS: connect to ADDRESS for HOST:PORT; URL, Host, SNI and audience stay HOST (repeatable; IDCALL_RESOLVE, space-separated)', group: 'Endpoints and limits:' })
    .option('connect-to', { type: 'string', array: true, describe: 'HOST:PORT:CONNECT_HOST:CONNECT_PORT, as curl: connect elsewhere for HOST:PORT (repeatable; IDCALL_CONNECT_TO, space-separated)', group: 'Endpoints and limits:' })
    .option('cacert', { type: 'string', describe: 'PEM file of CA certificates to trust besides the system\'s and NODE_EXTRA_CA_CERTS (IDCALL_CACERT)', group: 'Endpoints and limits:' });
}
