// Credential types that hold an identity Google will not sign an ID token for: workforce users
// (external_account_authorized_user) can still authorise an impersonation; GDCH service accounts cannot do either here.
import { IdcallError } from '../../../errors.ts';
import type { LoadedCredential } from '../../load.ts';
import { guard, requireToken, transporter } from '../session.ts';
import type { CredentialMinter } from './types.ts';

const noIdToken = (credential: LoadedCredential) =>
  new IdcallError(
    'UNSUPPORTED_CREDENTIAL_TYPE',
    `${credential.type} credentials cannot mint Google-signed ID tokens for Cloud Run.`,
    'Impersonate a service account: pass --impersonate-service-account SA_EMAIL (the principal needs roles/iam.serviceAccountTokenCreator on it).',
  );

const noSource = (credential: LoadedCredential) =>
  new IdcallError('UNSUPPORTED_CREDENTIAL_TYPE', `${credential.type} credentials cannot be used as an impersonation source.`, 'Use a service-account key, user credentials or the metadata server as the source.');

export const externalAccountAuthorizedUser: CredentialMinter = {
  idToken: async (_s, credential) => Promise.reject(noIdToken(credential)),
  async accessToken(s, credential) {
    const { ExternalAccountAuthorizedUserClient } = await import('../../auth-library.ts');
    const client = new ExternalAccountAuthorizedUserClient({ ...(credential.json as any), transporter: transporter(s) });
    const { token } = await guard(s, 'refresh', () => client.getAccessToken());
    return { token: requireToken(token), principal: credential.principal };
  },
};

export const gdchServiceAccount: CredentialMinter = {
  idToken: async (_s, credential) => Promise.reject(noIdToken(credential)),
  accessToken: async (_s, credential) => Promise.reject(noSource(credential)),
};
