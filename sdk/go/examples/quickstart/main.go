package main

import (
	"context"
	"fmt"
	"log"
	"os"

	mgpass "github.com/mgpass/mgpass/sdk/go"
	identityv1 "github.com/mgpass/mgpass/sdk/go/gen/mgpass/identity/v1"
)

func main() {
	ctx := context.Background()
	url := os.Getenv("MGPASS_URL") // e.g. http://127.0.0.1:8080
	anonymous, err := mgpass.Dial(url)
	if err != nil {
		log.Fatal(err)
	}
	defer anonymous.Close()
	login, err := anonymous.Identity.Authentication.Login(ctx, &identityv1.LoginRequest{
		Identifier: os.Getenv("MGPASS_EMAIL"), Password: os.Getenv("MGPASS_PASSWORD"),
	})
	if err != nil {
		log.Fatal(err)
	}

	me, err := mgpass.Dial(url, mgpass.WithCredential(mgpass.AccessToken(login.GetAccessToken())))
	if err != nil {
		log.Fatal(err)
	}
	defer me.Close()
	profile, err := me.Identity.Profile.GetMyProfile(ctx, &identityv1.GetMyProfileRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("signed in as %s (%s)\n", profile.GetUser().GetEmail(), profile.GetUser().GetId())

	verifier := mgpass.NewTokenVerifier(mgpass.VerifierConfig{Issuer: url, Audience: "mgpass"})
	claims, err := verifier.Verify(ctx, login.GetAccessToken())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("token verified offline: sub=%s scope=%q\n", claims.Subject, claims.Scope)
}
