"""The authorization code flow of a confidential web app, with clients nobody here wrote: authlib
(OAuth2Session: PKCE S256, client_secret_basic, state; authlib.jose and authlib.oidc: the ID
token against the JWKS) and requests (a cookie-keeping session standing in for the browser,
driving the hosted sign-in and consent forms, parsed with the stdlib html.parser).

Run by tests/tests/oauth_clients.rs with the environment: MGPASS_URL (the issuer), CLIENT_ID,
CLIENT_SECRET, REDIRECT_URI (registered; nothing needs to listen there), USERNAME, PASSWORD,
SCOPE. Prints one JSON object on stdout; exits non-zero (with the reason on stderr) on any
failure: a refused form, a state or issuer mismatch, an ID token that does not validate.
"""

import json
import os
import sys
import urllib.parse
from html.parser import HTMLParser

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, JWTClaims, jwt
from authlib.oidc.core import CodeIDToken


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set")
    return value


class Forms(HTMLParser):
    """The forms of a page: action, method, inputs (name, type, value, autocomplete) and the
    named submit buttons."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self._form = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get").lower(), "inputs": [], "buttons": []}
            self.forms.append(self._form)
        elif self._form is not None and tag == "input":
            self._form["inputs"].append(a)
        elif self._form is not None and tag == "button" and a.get("name"):
            self._form["buttons"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def forms_of(html):
    parser = Forms()
    parser.feed(html)
    return parser.forms


def form_posting_to(forms, path, url):
    for f in forms:
        if urllib.parse.urlparse(f["action"]).path == path and f["method"] == "post":
            return f
    raise SystemExit(f"no form posting to {path} on {url}")


def hidden_fields(form):
    """The hidden inputs (the CSRF token, the interaction) as they are."""
    fields = {i["name"]: i.get("value", "") for i in form["inputs"] if i.get("type") == "hidden" and i.get("name")}
    if "csrf" not in fields:
        raise SystemExit(f"the form posting to {form['action']} carries no CSRF token")
    return fields


def main():
    issuer = env("MGPASS_URL")
    client_id = env("CLIENT_ID")
    redirect_uri = env("REDIRECT_URI")
    username = env("USERNAME")
    password = env("PASSWORD")

    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=30).json()
    if meta["issuer"] != issuer:
        raise SystemExit(f"discovery names issuer {meta['issuer']!r}, expected {issuer!r}")
    if "S256" not in meta.get("code_challenge_methods_supported", []):
        raise SystemExit("the server does not announce PKCE S256")

    client = OAuth2Session(
        client_id,
        env("CLIENT_SECRET"),
        scope=env("SCOPE"),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = generate_token(64)
    nonce = generate_token(24)
    auth_url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)

    # The "browser": cookies kept, redirects followed by hand so that the one to the client is
    # caught rather than followed.
    browser = requests.Session()
    pages = []
    callback = None
    resp = browser.get(auth_url, allow_redirects=False, timeout=30)
    for _ in range(20):
        if resp.is_redirect:
            location = urllib.parse.urljoin(resp.url, resp.headers["location"])
            if location.startswith(redirect_uri):
                callback = location
                break
            resp = browser.get(location, allow_redirects=False, timeout=30)
            continue
        if resp.status_code != 200:
            raise SystemExit(f"{resp.url} answered {resp.status_code}:\n{resp.text}")
        path = urllib.parse.urlparse(resp.url)
        pages.append(path.path + (f"?{path.query}" if path.query else ""))
        forms = forms_of(resp.text)
        if path.path == "/oauth2/signin":
            form = form_posting_to(forms, "/oauth2/signin", resp.url)
            fields = hidden_fields(form)
            if not any(i.get("type") == "password" for i in form["inputs"]):
                raise SystemExit("the sign-in form has no password field")
            for i in form["inputs"]:
                if i.get("autocomplete") == "username":
                    fields[i["name"]] = username
                elif i.get("type") == "password":
                    fields[i["name"]] = password
            if 'role="alert"' in resp.text:
                raise SystemExit(f"the sign-in page shows an error:\n{resp.text}")
        elif path.path == "/oauth2/consent":
            form = form_posting_to(forms, "/oauth2/consent", resp.url)
            fields = hidden_fields(form)
            allow = [b for b in form["buttons"] if b.get("value") == "allow"]
            if not allow:
                raise SystemExit("the consent form has no allow button")
            fields[allow[0]["name"]] = "allow"
        else:
            raise SystemExit(f"unexpected page {resp.url}:\n{resp.text}")
        target = urllib.parse.urljoin(resp.url, form["action"])
        resp = browser.post(target, data=fields, allow_redirects=False, timeout=30)
    if callback is None:
        raise SystemExit(f"never sent back to the client; pages: {pages}")

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(callback).query))
    if "error" in query:
        raise SystemExit(f"the authorization failed: {query}")
    # RFC 9207: the issuer identifies itself in the response, and must be the one we asked.
    if query.get("iss") != issuer:
        raise SystemExit(f"authorization response iss {query.get('iss')!r}, expected {issuer!r}")

    # authlib checks the state, sends the verifier and authenticates with HTTP Basic.
    token = client.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)

    jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=30).json())
    id_claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}},
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    id_claims.validate(leeway=5)  # iss, aud, exp, iat, nonce, azp, at_hash
    if id_claims.get("nonce") != nonce:
        raise SystemExit("the ID token lost the nonce")

    refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    refreshed_claims = jwt.decode(
        refreshed["id_token"],
        jwks,
        claims_cls=JWTClaims,
        claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True, "value": id_claims["sub"]},
        },
    )
    refreshed_claims.validate(leeway=5)

    # The session now holds the refreshed token.
    userinfo_resp = client.get(meta["userinfo_endpoint"], timeout=30)
    userinfo_resp.raise_for_status()

    print(
        json.dumps(
            {
                "pages": pages,
                "callback": {"iss": query.get("iss"), "state_matches": query.get("state") == state},
                "nonce": nonce,
                "token": {
                    "token_type": token["token_type"],
                    "scope": token.get("scope"),
                    "has_refresh_token": "refresh_token" in token,
                },
                "id_token_alg": id_claims.header["alg"],
                "id_token_claims": dict(id_claims),
                "refresh": {
                    "rotated": refreshed.get("refresh_token") not in (None, token["refresh_token"]),
                    "id_token_sub": refreshed_claims["sub"],
                },
                "userinfo": userinfo_resp.json(),
            }
        )
    )


if __name__ == "__main__":
    main()
