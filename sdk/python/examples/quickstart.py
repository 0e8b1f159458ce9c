"""Sign in, read my profile, and verify the access token offline.

MGPASS_URL=http://127.0.0.1:8080 MGPASS_EMAIL=admin@admin.com MGPASS_PASSWORD=... python examples/quickstart.py
"""

import os

import mgpass
from mgpass.identity.v1 import authentication_service_pb2 as auth
from mgpass.identity.v1 import profile_service_pb2 as profile

url = os.environ.get("MGPASS_URL", "http://127.0.0.1:8080")
with mgpass.Client(url) as anonymous:
    login = anonymous.identity.authentication.Login(
        auth.LoginRequest(identifier=os.environ["MGPASS_EMAIL"], password=os.environ["MGPASS_PASSWORD"])
    )

with mgpass.Client(url, credential=mgpass.Credential.access_token(login.access_token)) as me:
    user = me.identity.profile.GetMyProfile(profile.GetMyProfileRequest()).user
    print(f"signed in as {user.email} ({user.id})")

claims = mgpass.TokenVerifier(issuer=url, audience="mgpass").verify(login.access_token)
print(f"token verified offline: sub={claims['sub']} scope=\"{claims['scope']}\"")
