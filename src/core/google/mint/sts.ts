// Security Token Service: exchange an external subject token (file, URL, executable, AWS) for a federated access
// token. google-auth-library reads the subject token; the exchange goes through our bounded transport, since the
// library's STS client has a transport of its own.
import { IdcallError } from '../../errors.ts';
import type { LoadedCredential } from '../load.ts';
import { federatedPrincipal } from '../load.ts';
import { CLOUD_PLATFORM_SCOPE, GOOGLE_STS_URL } from '../../endpoints.ts';
import { describeFileProblem, FileReadError, readBoundedFile, SUBJECT_TOKEN_MAX_BYTES } from '../../files.ts';
import { registerSecret } from '../../redact.ts';
import { guard, parseJsonObject, requireToken, transporter, type AccessToken, type Session } from './session.ts';

export async function federatedToken(s: Session, credential: LoadedCredential): Promise<AccessToken> {
  const lib = await import('../auth-library.ts');
  const { service_account_impersonation_url: _drop, service_account_impersonation: _drop2, ...json } = credential.json;
  const options = { ...(json as any), transporter: transporter(s) };
  const cs = json.credential_source ?? {};
  let client;
  try {
    client = cs.environment_id ? new lib.AwsClient(options) : cs.executable ? new lib.PluggableAuthClient(options) : new lib.IdentityPoolClient(options);
  } catch (err) {
    throw new IdcallError('FEDERATION_FAILED', `The federation configuration ${credential.path ?? ''} is not usable: ${(err as Error).message}`, 'Recreate it with `gcloud iam workload-identity-pools create-cred-config`.', { cause: err });
  }
  // The library reads the file with no bound: a FIFO would hang it and /dev/zero exhaust memory. Check it first.
  if (typeof cs.file === 'string') {
    try {
      await readBoundedFile(cs.file, SUBJECT_TOKEN_MAX_BYTES);
    } catch (err) {
      throw new IdcallError('FEDERATION_FAILED', `The subject token file ${cs.file} (credential_source.file) ${err instanceof FileReadError ? describeFileProblem(err.problem) : 'cannot be read'}.`, 'Check credential_source.file in the configuration and that the process writing it runs.', { cause: err });
    }
  }
  const subjectToken = await guard(s, 'subject', () => client.retrieveSubjectToken());
  registerSecret(subjectToken);
  const form = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    audience: String(json.audience),
    scope: CLOUD_PLATFORM_SCOPE,
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    subject_token: subjectToken,
    subject_token_type: String(json.subject_token_type),
  });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (json.client_id && json.client_secret) headers.authorization = `Basic ${Buffer.from(`${json.client_id}:${json.client_secret}`).toString('base64')}`;
  else if (json.workforce_pool_user_project) form.set('options', JSON.stringify({ userProject: json.workforce_pool_user_project }));
  const stsUrl = s.options.endpoints.sts ?? json.token_url ?? GOOGLE_STS_URL;
  const data = await guard(s, 'sts', async () => {
    const res = await s.http(stsUrl, { method: 'POST', headers, body: form.toString() });
    const text = res.text();
    if (!res.ok) throw Object.assign(new Error(`STS answered ${res.status}`), { status: res.status });
    return parseJsonObject(text, 'The Security Token Service');
  });
  return { token: requireToken(data.access_token), principal: federatedPrincipal(String(json.audience)) };
}
