"""The SDK against a live mgpass: sign-in, profile, a partner event and its balance, offline token verification,
typed errors."""

import asyncio
import base64
import json
import os
import pathlib
import subprocess
import sys
import uuid

import grpc
import pytest

import mgpass
from google.protobuf import timestamp_pb2

from mgpass.identity.v1 import profile_service_pb2, user_pb2, user_service_pb2
from mgpass.loyalty.v1 import (event_pb2, event_service_pb2, ledger_service_pb2, partner_pb2, partner_service_pb2,
                               rule_pb2, rule_service_pb2)


def test_sign_in_and_read_my_profile(server, admin_login):
    assert admin_login.token_type == "Bearer" and admin_login.expires_in > 0
    with mgpass.Client(server["url"], credential=mgpass.Credential.access_token(admin_login.access_token)) as client:
        user = client.identity.profile.GetMyProfile(profile_service_pb2.GetMyProfileRequest()).user
    assert user.email == server["admin_email"]
    assert user.id == admin_login.user_id


def test_asyncio_client_reads_profile_and_raises_typed_errors(server, admin_login):
    async def scenario():
        credential = mgpass.Credential.access_token(admin_login.access_token)
        async with mgpass.AsyncClient(server["url"], credential=lambda: credential) as client:
            profile = await client.identity.profile.GetMyProfile(profile_service_pb2.GetMyProfileRequest())
            with pytest.raises(mgpass.MgpassError) as raised:
                await client.identity.user.GetUser(user_service_pb2.GetUserRequest(user_id=str(uuid.uuid4())))
            return profile.user, raised.value

    user, error = asyncio.run(scenario())
    assert user.id == admin_login.user_id
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")


def test_verifies_the_access_token_offline(server, admin_login):
    verifier = mgpass.TokenVerifier(server["url"], "mgpass", required_scopes=["mgpass:admin"])
    claims = verifier.verify("Bearer " + admin_login.access_token)
    assert claims["sub"] == admin_login.user_id
    assert "mgpass:admin" in claims["scopes"]

    def refused(verifier, token, reason):
        with pytest.raises(mgpass.TokenVerificationError) as raised:
            verifier.verify(token)
        assert raised.value.reason == reason

    refused(mgpass.TokenVerifier(server["url"], "billing"), admin_login.access_token, "WRONG_AUDIENCE")
    refused(mgpass.TokenVerifier("https://elsewhere.example", "mgpass", jwks_url=server["url"] + "/.well-known/jwks.json"),
            admin_login.access_token, "WRONG_ISSUER")
    refused(mgpass.TokenVerifier(server["url"], "mgpass", required_scopes=["loyalty:write"]),
            admin_login.access_token, "INSUFFICIENT_SCOPE")
    header, payload, signature = admin_login.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused(verifier, f"{header}.{forged}.{signature}", "TOKEN_SIGNATURE_INVALID")
    refused(verifier, "not-a-jwt", "TOKEN_MALFORMED")


def test_missing_user_is_a_typed_not_found(server, admin_login):
    with mgpass.Client(server["url"], credential=mgpass.Credential.access_token(admin_login.access_token)) as client:
        with pytest.raises(mgpass.MgpassError) as raised:
            client.identity.user.GetUser(user_service_pb2.GetUserRequest(user_id=str(uuid.uuid4())))
    assert (raised.value.code, raised.value.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    assert isinstance(raised.value, grpc.RpcError)


def test_plain_user_listing_users_is_a_typed_permission_denied(server, plain_login):
    with mgpass.Client(server["url"], credential=mgpass.Credential.access_token(plain_login.access_token)) as client:
        with pytest.raises(mgpass.MgpassError) as raised:
            client.identity.user.ListUsers(user_service_pb2.ListUsersRequest())
    assert (raised.value.code, raised.value.reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")


def test_partner_event_with_a_partner_key_and_the_balance_read_back(server, admin_login):
    suffix = uuid.uuid4().hex[:8]
    event_type = f"py.purchase.{suffix}"
    with mgpass.Client(server["url"], credential=mgpass.Credential.access_token(admin_login.access_token)) as admin:
        partner = admin.loyalty.partner.CreatePartner(partner_service_pb2.CreatePartnerRequest(
            partner=partner_pb2.Partner(name=f"py-shop-{suffix}", event_types=[event_type]))).partner
        created = admin.loyalty.partner.CreatePartnerApiKey(partner_service_pb2.CreatePartnerApiKeyRequest(
            partner_id=partner.id, api_key=partner_pb2.PartnerApiKey(name="pos")))
        assert created.key.startswith("mgpp_") and created.api_key.partner_id == partner.id
        admin.loyalty.rule.CreateRule(rule_service_pb2.CreateRuleRequest(rule=rule_pb2.Rule(
            name=f"py-fixed-{suffix}", partner_id=partner.id, event_type=event_type, fixed_points=25)))
        user = admin.identity.user.CreateUser(user_service_pb2.CreateUserRequest(
            user=user_pb2.User(email=f"py-member-{suffix}@example.com", given_name="Loyal", family_name="Member"),
            password=f"pw-{uuid.uuid4()}")).user

        def balance() -> int:
            return admin.loyalty.ledger.GetBalance(ledger_service_pb2.GetBalanceRequest(user_id=user.id)).balance.points

        occur_time = timestamp_pb2.Timestamp()
        occur_time.GetCurrentTime()
        event = event_pb2.Event(partner_event_id=f"order-{suffix}", event_type=event_type, user_id=user.id,
                                occur_time=occur_time)
        with mgpass.Client(server["url"], credential=mgpass.Credential.partner_key(created.key)) as partner_client:
            first = partner_client.loyalty.event.IngestEvent(event_service_pb2.IngestEventRequest(event=event))
            assert not first.replayed
            assert (first.event.points, first.event.resolved_user_id) == (25, user.id)
            assert balance() == 25

            # The same event again is a replay of the original: nothing more is awarded.
            again = partner_client.loyalty.event.IngestEvent(event_service_pb2.IngestEventRequest(event=event))
            assert again.replayed and again.event.id == first.event.id
            assert balance() == 25


def test_the_readme_quickstart_runs(server, admin_login):
    root = pathlib.Path(__file__).resolve().parent.parent
    env = {**os.environ, "MGPASS_URL": server["url"], "MGPASS_EMAIL": server["admin_email"],
           "MGPASS_PASSWORD": server["admin_password"], "PYTHONPATH": str(root / "src")}
    out = subprocess.run([sys.executable, str(root / "examples/quickstart.py")], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert f"signed in as {server['admin_email']} ({admin_login.user_id})" in out
    assert f"token verified offline: sub={admin_login.user_id}" in out
