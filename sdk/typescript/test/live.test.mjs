// The SDK against a live mgpass (scripts/sdk-test.sh starts it and sets the MGPASS_SDK_TEST_* env).
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, MgpassError, TokenVerifier, TokenVerificationError, call, createNodeClients } from "../dist/node.js";
import { createWebClients } from "../dist/web.js";
import { UserSchema } from "../dist/gen/mgpass/identity/v1/user_pb.js";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run scripts/sdk-test.sh`);
  return value;
};
const baseUrl = env("MGPASS_SDK_TEST_URL");
const adminEmail = env("MGPASS_SDK_TEST_ADMIN_EMAIL");
const adminPassword = env("MGPASS_SDK_TEST_ADMIN_PASSWORD");

const anonymous = createNodeClients({ baseUrl });
const signIn = (identifier, password) => anonymous.identity.authentication.login({ identifier, password });
const admin = await signIn(adminEmail, adminPassword);
const adminClients = createNodeClients({ baseUrl, credential: { accessToken: admin.accessToken } });

test("signs in with the Login RPC and reads my profile over gRPC", async () => {
  assert.equal(admin.tokenType, "Bearer");
  assert.ok(admin.expiresIn > 0);
  const { user } = await adminClients.identity.profile.getMyProfile({});
  assert.equal(user.email, adminEmail);
  assert.equal(user.id, admin.userId);
});

test("the same calls over grpc-web (the browser transport, and Node's grpc-web option)", async () => {
  const web = createWebClients({ baseUrl, credential: () => ({ accessToken: admin.accessToken }) });
  assert.equal((await web.identity.profile.getMyProfile({})).user.id, admin.userId);
  const nodeWeb = createNodeClients({ baseUrl, protocol: "grpc-web", credential: { accessToken: admin.accessToken } });
  assert.equal((await nodeWeb.identity.profile.getMyProfile({})).user.email, adminEmail);
});

test("verifies the access token offline: iss, aud, exp, scope and signature", async () => {
  const verifier = new TokenVerifier({ issuer: baseUrl, audience: "mgpass", requiredScopes: ["mgpass:admin"] });
  const claims = await verifier.verify(`Bearer ${admin.accessToken}`);
  assert.equal(claims.sub, admin.userId);
  assert.ok(claims.scopes.includes("mgpass:admin"));
  assert.ok(claims.exp > Date.now() / 1000);

  const refused = async (options, token, reason) => {
    const err = await new TokenVerifier(options).verify(token).catch((e) => e);
    assert.ok(err instanceof TokenVerificationError, String(err));
    assert.equal(err.reason, reason);
  };
  await refused({ issuer: baseUrl, audience: "billing" }, admin.accessToken, "WRONG_AUDIENCE");
  await refused({ issuer: "https://elsewhere.example", audience: "mgpass", jwksUrl: `${baseUrl}/.well-known/jwks.json` }, admin.accessToken, "WRONG_ISSUER");
  await refused({ issuer: baseUrl, audience: "mgpass", requiredScopes: ["loyalty:write"] }, admin.accessToken, "INSUFFICIENT_SCOPE");
  const [h, p, s] = admin.accessToken.split(".");
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url")), sub: randomUUID() })).toString("base64url");
  await refused({ issuer: baseUrl, audience: "mgpass" }, `${h}.${forged}.${s}`, "TOKEN_SIGNATURE_INVALID");
  await refused({ issuer: baseUrl, audience: "mgpass" }, "not-a-jwt", "TOKEN_MALFORMED");
});

test("a missing user is a typed NOT_FOUND with reason USER_NOT_FOUND", async () => {
  const err = await call(adminClients.identity.user.getUser({ userId: randomUUID() })).catch((e) => e);
  assert.ok(err instanceof MgpassError, String(err));
  assert.equal(err.code, Code.NotFound);
  assert.equal(err.codeName, "NOT_FOUND");
  assert.equal(err.reason, "USER_NOT_FOUND");
});

test("a plain user listing users is a typed PERMISSION_DENIED", async () => {
  const email = `ts-${randomUUID()}@example.com`;
  const password = `pw-${randomUUID()}`;
  await adminClients.identity.user.createUser({
    user: create(UserSchema, { email, givenName: "Plain", familyName: "User" }),
    password,
  });
  const plain = await signIn(email, password);
  const clients = createNodeClients({ baseUrl, credential: { accessToken: plain.accessToken } });
  const err = await call(clients.identity.user.listUsers({})).catch((e) => e);
  assert.ok(err instanceof MgpassError, String(err));
  assert.equal(err.code, Code.PermissionDenied);
  assert.equal(err.reason, "PERMISSION_DENIED");
});

test("sends a partner event with a partner key and reads the balance back", async () => {
  const suffix = randomUUID().slice(0, 8);
  const eventType = `ts.purchase.${suffix}`;
  const loyalty = adminClients.loyalty;
  const { partner } = await loyalty.partner.createPartner({ partner: { name: `ts-shop-${suffix}`, eventTypes: [eventType] } });
  const { apiKey, key } = await loyalty.partner.createPartnerApiKey({ partnerId: partner.id, apiKey: { name: "pos" } });
  assert.match(key, /^mgpp_/);
  assert.equal(apiKey.partnerId, partner.id);
  await loyalty.rule.createRule({
    rule: { name: `ts-fixed-${suffix}`, partnerId: partner.id, eventType, points: { case: "fixedPoints", value: 25n } },
  });
  const email = `ts-member-${suffix}@example.com`;
  const { user } = await adminClients.identity.user.createUser({
    user: create(UserSchema, { email, givenName: "Loyal", familyName: "Member" }),
    password: `pw-${randomUUID()}`,
  });

  const partnerClients = createNodeClients({ baseUrl, credential: { partnerKey: key } });
  const event = { partnerEventId: `order-${suffix}`, eventType, user: { case: "userId", value: user.id }, occurTime: timestampNow() };
  const first = await partnerClients.loyalty.event.ingestEvent({ event });
  assert.equal(first.replayed, false);
  assert.equal(first.event.points, 25n);
  assert.equal(first.event.resolvedUserId, user.id);
  const balance = async () => (await loyalty.ledger.getBalance({ userId: user.id })).balance.points;
  assert.equal(await balance(), 25n);

  // The same event again is a replay of the original: nothing more is awarded.
  const again = await partnerClients.loyalty.event.ingestEvent({ event });
  assert.equal(again.replayed, true);
  assert.equal(again.event.id, first.event.id);
  assert.equal(await balance(), 25n);
});

test("the README's quickstart example runs", async () => {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const { stdout } = await promisify(execFile)(process.execPath, ["examples/quickstart.mjs"], {
    env: { ...process.env, MGPASS_URL: baseUrl, MGPASS_EMAIL: adminEmail, MGPASS_PASSWORD: adminPassword },
  });
  assert.match(stdout, new RegExp(`signed in as ${adminEmail} \\(${admin.userId}\\)`));
  assert.match(stdout, new RegExp(`token verified offline: sub=${admin.userId}`));
});
