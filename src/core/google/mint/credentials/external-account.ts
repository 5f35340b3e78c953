// Workload identity federation (external_account): STS exchanges the subject token for a federated access token,
// and only an impersonated service account can then mint an ID token (federation alone cannot).
import { IdcallError } from '../../../errors.ts';
import type { LoadedCredential } from '../../load.ts';
import { impersonationTarget } from '../../load.ts';
import { generateAccessToken, generateIdToken, iamBase } from '../iam-credentials.ts';
import { federatedToken } from '../sts.ts';
import type { CredentialMinter } from './types.ts';

const targetOf = (credential: LoadedCredential) => (typeof credential.json.service_account_impersonation_url === 'string' ? impersonationTarget(credential.json.service_account_impersonation_url) : null);

export const externalAccount: CredentialMinter = {
  async idToken(s, credential) {
    const target = targetOf(credential);
    if (!target) {
      throw new IdcallError(
        'FEDERATION_FAILED',
        `Workload identity federation alone cannot mint an ID token: ${credential.path ?? 'the configuration'} has no service_account_impersonation_url.`,
        'Grant the pool roles/iam.workloadIdentityUser on a service account and recreate the file with `gcloud iam workload-identity-pools create-cred-config … --service-account=SA_EMAIL`, or pass --impersonate-service-account SA_EMAIL.',
      );
    }
    const federated = await federatedToken(s, credential);
    const token = await generateIdToken(s, federated.token, target, [], federated.principal, iamBase(credential.json.service_account_impersonation_url));
    return { token, method: `STS token exchange, then generateIdToken for ${target}`, principal: target, caller: federated.principal, userToken: false };
  },
  async accessToken(s, credential) {
    const federated = await federatedToken(s, credential);
    const target = targetOf(credential);
    if (!target) return federated;
    const token = await generateAccessToken(s, federated.token, target, [], federated.principal, iamBase(credential.json.service_account_impersonation_url));
    return { token, principal: target };
  },
};
