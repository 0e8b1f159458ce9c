// Sign in, read my profile, and verify the access token offline.
// MGPASS_URL=http://127.0.0.1:8080 MGPASS_EMAIL=admin@admin.com MGPASS_PASSWORD=... node examples/quickstart.mjs
import { TokenVerifier, createNodeClients } from "@mgpass/sdk/node";

const baseUrl = process.env.MGPASS_URL ?? "http://127.0.0.1:8080";
const anonymous = createNodeClients({ baseUrl });
const { accessToken } = await anonymous.identity.authentication.login({
  identifier: process.env.MGPASS_EMAIL,
  password: process.env.MGPASS_PASSWORD,
});

const me = createNodeClients({ baseUrl, credential: { accessToken } });
const { user } = await me.identity.profile.getMyProfile({});
console.log(`signed in as ${user.email} (${user.id})`);

const verifier = new TokenVerifier({ issuer: baseUrl, audience: "mgpass" });
const claims = await verifier.verify(accessToken);
console.log(`token verified offline: sub=${claims.sub} scope="${claims.scope}"`);
