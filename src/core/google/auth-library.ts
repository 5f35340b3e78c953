// The google-auth-library clients idcall uses, imported on first need through this one module. (A dynamic
// import of the CommonJS package itself would give the bundled CLI only a default export.)
export { AwsClient, ExternalAccountAuthorizedUserClient, IdentityPoolClient, JWT, PluggableAuthClient, UserRefreshClient } from 'google-auth-library';
