// An impersonated_service_account file (gcloud auth application-default login --impersonate-service-account): the
// source credential's access token authorises IAM Credentials to mint for the target, through the file's delegates.
import type { LoadedCredential } from '../../load.ts';
import { generateAccessToken, generateIdToken, iamBase } from '../iam-credentials.ts';
import type { CredentialMinter } from './types.ts';

/** The file's source_credentials as a credential of their own. */
function nestedSource(credential: LoadedCredential): LoadedCredential {
  const json = credential.json.source_credentials as Record<string, any>;
  return { type: json.type, path: credential.path, json, principal: ((json.client_email as string) ?? (json.account as string)) || null, details: [], warnings: [] };
}

const delegatesOf = (credential: LoadedCredential) => (credential.json.delegates ?? []) as string[];

export const impersonatedServiceAccount: CredentialMinter = {
  async idToken(s, credential) {
    const caller = await s.accessTokenOf(nestedSource(credential));
    const target = credential.principal!;
    const token = await generateIdToken(s, caller.token, target, delegatesOf(credential), caller.principal, iamBase(credential.json.service_account_impersonation_url));
    return { token, method: `generateIdToken for ${target}, authorised by ${caller.principal ?? 'the source credential'}`, principal: target, caller: caller.principal, userToken: false };
  },
  async accessToken(s, credential) {
    const caller = await s.accessTokenOf(nestedSource(credential));
    const token = await generateAccessToken(s, caller.token, credential.principal!, delegatesOf(credential), caller.principal, iamBase(credential.json.service_account_impersonation_url));
    return { token, principal: credential.principal };
  },
};
