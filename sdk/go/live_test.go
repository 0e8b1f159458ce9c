package mgpass_test

// The SDK against a live mgpass: scripts/sdk-test.sh starts it and sets MGPASS_SDK_TEST_*.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"crypto/rand"

	mgpass "github.com/mgpass/mgpass/sdk/go"
	identityv1 "github.com/mgpass/mgpass/sdk/go/gen/mgpass/identity/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type live struct {
	url, email, password string
}

func server(t *testing.T) live {
	t.Helper()
	get := func(name string) string {
		value := os.Getenv(name)
		if value == "" {
			t.Fatalf("%s is not set: run scripts/sdk-test.sh", name)
		}
		return value
	}
	return live{get("MGPASS_SDK_TEST_URL"), get("MGPASS_SDK_TEST_ADMIN_EMAIL"), get("MGPASS_SDK_TEST_ADMIN_PASSWORD")}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func dial(t *testing.T, url string, opts ...mgpass.Option) *mgpass.Client {
	t.Helper()
	c, err := mgpass.Dial(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func signIn(t *testing.T, url, identifier, password string) *identityv1.LoginResponse {
	t.Helper()
	login, err := dial(t, url).Identity.Authentication.Login(ctx(t), &identityv1.LoginRequest{Identifier: identifier, Password: password})
	if err != nil {
		t.Fatalf("login of %s: %v", identifier, err)
	}
	return login
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func TestSignInAndReadMyProfile(t *testing.T) {
	s := server(t)
	login := signIn(t, s.url, s.email, s.password)
	if login.GetTokenType() != "Bearer" || login.GetExpiresIn() <= 0 {
		t.Fatalf("unexpected login response %v", login)
	}
	me := dial(t, s.url, mgpass.WithCredential(mgpass.AccessToken(login.GetAccessToken())))
	profile, err := me.Identity.Profile.GetMyProfile(ctx(t), &identityv1.GetMyProfileRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if profile.GetUser().GetEmail() != s.email || profile.GetUser().GetId() != login.GetUserId() {
		t.Fatalf("profile %v is not the admin's (%s)", profile.GetUser(), login.GetUserId())
	}
}

func TestVerifiesTheAccessTokenOffline(t *testing.T) {
	s := server(t)
	login := signIn(t, s.url, s.email, s.password)
	verifier := mgpass.NewTokenVerifier(mgpass.VerifierConfig{Issuer: s.url, Audience: "mgpass", RequiredScopes: []string{"mgpass:admin"}})
	claims, err := verifier.Verify(ctx(t), "Bearer "+login.GetAccessToken())
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != login.GetUserId() || !slices.Contains(claims.Scopes(), "mgpass:admin") {
		t.Fatalf("claims %+v", claims)
	}

	refused := func(cfg mgpass.VerifierConfig, token, reason string) {
		t.Helper()
		_, err := mgpass.NewTokenVerifier(cfg).Verify(ctx(t), token)
		var tokenErr *mgpass.TokenError
		if !errors.As(err, &tokenErr) || tokenErr.Reason != reason {
			t.Fatalf("want %s, got %v", reason, err)
		}
	}
	token := login.GetAccessToken()
	refused(mgpass.VerifierConfig{Issuer: s.url, Audience: "billing"}, token, mgpass.ReasonWrongAudience)
	refused(mgpass.VerifierConfig{Issuer: "https://elsewhere.example", Audience: "mgpass", JWKSURL: s.url + "/.well-known/jwks.json"}, token, mgpass.ReasonWrongIssuer)
	refused(mgpass.VerifierConfig{Issuer: s.url, Audience: "mgpass", RequiredScopes: []string{"loyalty:write"}}, token, mgpass.ReasonInsufficientScope)
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var body map[string]any
	_ = json.Unmarshal(payload, &body)
	body["sub"] = randomID()
	forged, _ := json.Marshal(body)
	refused(mgpass.VerifierConfig{Issuer: s.url, Audience: "mgpass"}, parts[0]+"."+base64.RawURLEncoding.EncodeToString(forged)+"."+parts[2], mgpass.ReasonTokenSignatureInvalid)
	refused(mgpass.VerifierConfig{Issuer: s.url, Audience: "mgpass"}, "not-a-jwt", mgpass.ReasonTokenMalformed)
}

func TestMissingUserIsATypedNotFound(t *testing.T) {
	s := server(t)
	admin := dial(t, s.url, mgpass.WithCredential(mgpass.AccessToken(signIn(t, s.url, s.email, s.password).GetAccessToken())))
	_, err := admin.Identity.User.GetUser(ctx(t), &identityv1.GetUserRequest{UserId: randomID()})
	var typed *mgpass.Error
	if !errors.As(err, &typed) || typed.Code != codes.NotFound || typed.Reason != "USER_NOT_FOUND" {
		t.Fatalf("want NOT_FOUND USER_NOT_FOUND, got %v", err)
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("status.Code sees %v", status.Code(err))
	}
}

func TestPlainUserListingUsersIsATypedPermissionDenied(t *testing.T) {
	s := server(t)
	admin := dial(t, s.url, mgpass.WithCredential(mgpass.AccessToken(signIn(t, s.url, s.email, s.password).GetAccessToken())))
	email, password := "go-"+randomID()+"@example.com", "pw-"+randomID()
	_, err := admin.Identity.User.CreateUser(ctx(t), &identityv1.CreateUserRequest{
		User:     &identityv1.User{Email: email, GivenName: "Plain", FamilyName: "User"},
		Password: password,
	})
	if err != nil {
		t.Fatal(err)
	}
	token := signIn(t, s.url, email, password).GetAccessToken()
	plain := dial(t, s.url, mgpass.WithCredentialFunc(func() (mgpass.Credential, bool) { return mgpass.AccessToken(token), true }))
	_, err = plain.Identity.User.ListUsers(ctx(t), &identityv1.ListUsersRequest{})
	var typed *mgpass.Error
	if !errors.As(err, &typed) || typed.Code != codes.PermissionDenied || typed.Reason != "PERMISSION_DENIED" {
		t.Fatalf("want PERMISSION_DENIED, got %v", err)
	}
}

func TestTheReadmeQuickstartRuns(t *testing.T) {
	s := server(t)
	login := signIn(t, s.url, s.email, s.password)
	cmd := exec.CommandContext(ctx(t), "go", "run", "./examples/quickstart")
	cmd.Env = append(os.Environ(), "MGPASS_URL="+s.url, "MGPASS_EMAIL="+s.email, "MGPASS_PASSWORD="+s.password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	for _, want := range []string{fmt.Sprintf("signed in as %s (%s)", s.email, login.GetUserId()), "token verified offline: sub=" + login.GetUserId()} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
