// Google's addresses and well-known identifiers, written once: every default URL, the metadata server's default
// address and gcloud's OAuth client. Overrides (flags, IDCALL_*_URL, GCE_METADATA_*) are applied where they are read.

/** Where requests for Google's endpoints go instead (Private Service Connect, the emulator). */
export interface Endpoints {
  /** Full OAuth 2.0 token URL, e.g. https://oauth2.googleapis.com/token. */
  token?: string;
  /** IAM Credentials base URL, e.g. https://iamcredentials.googleapis.com. */
  iam?: string;
  /** Full STS token URL, e.g. https://sts.googleapis.com/v1/token. */
  sts?: string;
}

export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** The older token URL some key files and libraries still name; routed like GOOGLE_TOKEN_URL. */
export const GOOGLE_LEGACY_TOKEN_URL = 'https://www.googleapis.com/oauth2/v4/token';
export const GOOGLE_IAM_URL = 'https://iamcredentials.googleapis.com';
export const GOOGLE_STS_URL = 'https://sts.googleapis.com/v1/token';
export const GOOGLE_CERTS_URL = 'https://www.googleapis.com/oauth2/v3/certs';
export const GOOGLE_UNIVERSE = 'googleapis.com';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

/** The metadata server's address when neither GCE_METADATA_IP nor GCE_METADATA_HOST is set. */
export const METADATA_DEFAULT_HOST = '169.254.169.254';
/** Names the metadata server also answers to, which NO_PROXY must exempt. */
export const METADATA_URLS = ['http://169.254.169.254/', 'http://metadata.google.internal/'] as const;

/** gcloud's own OAuth client: the audience of a user's ID token, and gcloud print-identity-token's default. */
export const GCLOUD_CLIENT_ID = '32555940559.apps.googleusercontent.com';
