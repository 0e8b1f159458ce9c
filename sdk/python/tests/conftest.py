"""The live server of scripts/sdk-test.sh (MGPASS_SDK_TEST_* environment) and signed-in sessions."""

import os
import uuid

import pytest

import mgpass
from mgpass.identity.v1 import authentication_service_pb2 as auth
from mgpass.identity.v1 import user_pb2, user_service_pb2


def _env(name: str) -> str:
    value = os.environ.get(name)
    assert value, f"{name} is not set: run scripts/sdk-test.sh"
    return value


@pytest.fixture(scope="session")
def server() -> dict[str, str]:
    return {name: _env(f"MGPASS_SDK_TEST_{name.upper()}") for name in ("url", "admin_email", "admin_password")}


def sign_in(url: str, identifier: str, password: str) -> auth.LoginResponse:
    with mgpass.Client(url) as client:
        return client.identity.authentication.Login(auth.LoginRequest(identifier=identifier, password=password))


@pytest.fixture(scope="session")
def admin_login(server: dict[str, str]) -> auth.LoginResponse:
    return sign_in(server["url"], server["admin_email"], server["admin_password"])


@pytest.fixture(scope="session")
def plain_login(server: dict[str, str], admin_login: auth.LoginResponse) -> auth.LoginResponse:
    """A user without any role, created by the admin."""
    email, password = f"py-{uuid.uuid4()}@example.com", f"pw-{uuid.uuid4()}"
    with mgpass.Client(server["url"], credential=mgpass.Credential.access_token(admin_login.access_token)) as admin:
        admin.identity.user.CreateUser(user_service_pb2.CreateUserRequest(
            user=user_pb2.User(email=email, given_name="Plain", family_name="User"), password=password))
    return sign_in(server["url"], email, password)
