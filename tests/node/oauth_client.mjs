// An OAuth 2.1 / OpenID Connect client that nobody here wrote: openid-client (v6, on
// oauth4webapi), driven by tests/tests/oauth_clients.rs against a running mgpass.
//
//   node oauth_client.mjs m2m      client credentials (client_secret_basic and client_secret_post)
//                                  with a resource, introspection, revocation, introspection again
//   node oauth_client.mjs device   the device grant (RFC 8628): prints the device authorization
//                                  as one JSON line, polls until someone approves it (the Rust
//                                  test does, through the API), validates the ID token (signature
//                                  against the JWKS too), reads userinfo, refreshes
//
// Input comes from the environment: MGPASS_URL (the issuer), CLIENT_ID, CLIENT_SECRET (m2m),
// RESOURCE and SCOPE. Output is JSON lines on stdout; the last line is the result. Any error
// (a protocol answer openid-client refuses, an HTTP error, a failed check) exits non-zero with
// the error on stderr.
import * as client from 'openid-client';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
};
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');
// mgpass runs on plain http on loopback in the tests; openid-client refuses that unless told.
const insecure = { execute: [client.allowInsecureRequests] };

async function discover(clientId, metadata, auth) {
  return client.discovery(new URL(env('MGPASS_URL')), clientId, metadata, auth, insecure);
}

function discoverySummary(config) {
  const m = config.serverMetadata();
  return {
    issuer: m.issuer,
    token_endpoint: m.token_endpoint,
    introspection_endpoint: m.introspection_endpoint,
    revocation_endpoint: m.revocation_endpoint,
    device_authorization_endpoint: m.device_authorization_endpoint,
    userinfo_endpoint: m.userinfo_endpoint,
    jwks_uri: m.jwks_uri,
    supportsPKCE: config.serverMetadata().supportsPKCE(),
  };
}

const tokenSummary = (t) => ({
  token_type: t.token_type,
  scope: t.scope,
  expires_in: t.expiresIn(),
  has_refresh_token: typeof t.refresh_token === 'string',
  has_id_token: typeof t.id_token === 'string',
});

async function m2m() {
  const clientId = env('CLIENT_ID');
  const secret = env('CLIENT_SECRET');
  const resource = env('RESOURCE');
  const scope = env('SCOPE');
  const basic = await discover(clientId, secret, client.ClientSecretBasic(secret));
  const post = await discover(clientId, secret, client.ClientSecretPost(secret));

  const viaBasic = await client.clientCredentialsGrant(basic, { resource });
  const viaPost = await client.clientCredentialsGrant(post, { resource, scope });

  // The app acts as the resource server too: introspect with one method, revoke with the other.
  const before = await client.tokenIntrospection(post, viaBasic.access_token);
  await client.tokenRevocation(basic, viaBasic.access_token);
  const after = await client.tokenIntrospection(basic, viaBasic.access_token);
  const otherStillActive = await client.tokenIntrospection(basic, viaPost.access_token);

  // A wrong secret: the RFC 6749 error as openid-client reads it.
  const wrong = await discover(clientId, 'mgs_wrong', client.ClientSecretBasic('mgs_wrong'));
  const refused = await client.clientCredentialsGrant(wrong, { resource }).then(
    () => null,
    async (err) => ({
      name: err.name,
      status: err.status,
      // A 401 with `WWW-Authenticate: Basic`: openid-client reports the challenge; the RFC
      // error is in the body.
      challenge_schemes: Array.isArray(err.cause) ? err.cause.map((c) => c.scheme) : null,
      error: err.error ?? (await err.response?.json().catch(() => null))?.error ?? null,
    }),
  );

  print({
    refused_wrong_secret: refused,
    discovery: discoverySummary(basic),
    basic: tokenSummary(viaBasic),
    post: tokenSummary(viaPost),
    introspection_before_revocation: before,
    introspection_after_revocation: after,
    introspection_of_the_other_token: otherStillActive,
  });
}

async function device() {
  const clientId = env('CLIENT_ID');
  const config = await discover(clientId, { token_endpoint_auth_method: 'none' }, client.None());
  // Validate the ID token's signature against the JWKS as well, not only its claims.
  client.enableNonRepudiationChecks(config);

  const authorization = await client.initiateDeviceAuthorization(config, { scope: env('SCOPE') });
  print({
    user_code: authorization.user_code,
    verification_uri: authorization.verification_uri,
    verification_uri_complete: authorization.verification_uri_complete,
    expires_in: authorization.expires_in,
    interval: authorization.interval,
  });

  // Polls (authorization_pending, slow_down) until approved; at most a minute.
  const tokens = await client.pollDeviceAuthorizationGrant(config, authorization, undefined, {
    signal: AbortSignal.timeout(60_000),
  });
  const claims = tokens.claims();
  if (!claims) throw new Error('the device grant returned no ID token');
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const refreshedClaims = refreshed.claims();
  // The rotated refresh token works; the old one is spent.
  const userinfoAfterRefresh = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);

  print({
    discovery: discoverySummary(config),
    tokens: tokenSummary(tokens),
    id_token_claims: claims,
    userinfo,
    refreshed: tokenSummary(refreshed),
    refresh_rotated: refreshed.refresh_token !== tokens.refresh_token,
    refreshed_id_token_sub: refreshedClaims?.sub ?? null,
    userinfo_after_refresh_sub: userinfoAfterRefresh.sub,
  });
}

const modes = { m2m, device };
const mode = modes[process.argv[2]];
if (!mode) {
  console.error(`usage: node oauth_client.mjs ${Object.keys(modes).join('|')}`);
  process.exit(2);
}
try {
  await mode();
} catch (err) {
  console.error(`oauth_client ${process.argv[2]} failed: ${err?.stack ?? err}`);
  if (err?.cause) console.error('cause:', JSON.stringify(err.cause, null, 2));
  if (err?.error) console.error('error:', err.error, err.error_description ?? '');
  process.exit(1);
}
