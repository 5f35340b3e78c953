// What one credential type contributes: its ID-token path and its access-token path (the bearer for IAM Credentials
// when it is an impersonation source). A type that cannot do one throws UNSUPPORTED_CREDENTIAL_TYPE there.
import type { LoadedCredential } from '../../load.ts';
import type { AccessToken, Minted, Session } from '../session.ts';

export interface CredentialMinter {
  idToken(s: Session, credential: LoadedCredential): Promise<Minted>;
  accessToken(s: Session, credential: LoadedCredential): Promise<AccessToken>;
}
