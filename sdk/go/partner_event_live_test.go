package mgpass_test

// A loyalty partner's integration through the SDK: its key sends an event, the admin reads the
// balance the event awarded, and a replay of the event awards nothing more.

import (
	"strings"
	"testing"

	mgpass "github.com/mgpass/mgpass/sdk/go"
	identityv1 "github.com/mgpass/mgpass/sdk/go/gen/mgpass/identity/v1"
	loyaltyv1 "github.com/mgpass/mgpass/sdk/go/gen/mgpass/loyalty/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestPartnerEventWithAPartnerKeyAndTheBalanceReadBack(t *testing.T) {
	s := server(t)
	admin := dial(t, s.url, mgpass.WithCredential(mgpass.AccessToken(signIn(t, s.url, s.email, s.password).GetAccessToken())))
	suffix := strings.ReplaceAll(randomID(), "-", "")[:8]
	eventType := "go.purchase." + suffix

	created, err := admin.Loyalty.Partner.CreatePartner(ctx(t), &loyaltyv1.CreatePartnerRequest{
		Partner: &loyaltyv1.Partner{Name: "go-shop-" + suffix, EventTypes: []string{eventType}},
	})
	if err != nil {
		t.Fatal(err)
	}
	partner := created.GetPartner()
	key, err := admin.Loyalty.Partner.CreatePartnerApiKey(ctx(t), &loyaltyv1.CreatePartnerApiKeyRequest{
		PartnerId: partner.GetId(), ApiKey: &loyaltyv1.PartnerApiKey{Name: "pos"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key.GetKey(), "mgpp_") || key.GetApiKey().GetPartnerId() != partner.GetId() {
		t.Fatalf("unexpected partner key %v", key)
	}
	if _, err := admin.Loyalty.Rule.CreateRule(ctx(t), &loyaltyv1.CreateRuleRequest{Rule: &loyaltyv1.Rule{
		Name: "go-fixed-" + suffix, PartnerId: partner.GetId(), EventType: eventType,
		Points: &loyaltyv1.Rule_FixedPoints{FixedPoints: 25},
	}}); err != nil {
		t.Fatal(err)
	}
	member, err := admin.Identity.User.CreateUser(ctx(t), &identityv1.CreateUserRequest{
		User:     &identityv1.User{Email: "go-member-" + suffix + "@example.com", GivenName: "Loyal", FamilyName: "Member"},
		Password: "pw-" + randomID(),
	})
	if err != nil {
		t.Fatal(err)
	}
	userID := member.GetUser().GetId()
	balance := func() int64 {
		t.Helper()
		got, err := admin.Loyalty.Ledger.GetBalance(ctx(t), &loyaltyv1.GetBalanceRequest{UserId: userID})
		if err != nil {
			t.Fatal(err)
		}
		return got.GetBalance().GetPoints()
	}

	shop := dial(t, s.url, mgpass.WithCredential(mgpass.PartnerKey(key.GetKey())))
	event := &loyaltyv1.Event{
		PartnerEventId: "order-" + suffix, EventType: eventType,
		User: &loyaltyv1.Event_UserId{UserId: userID}, OccurTime: timestamppb.Now(),
	}
	first, err := shop.Loyalty.Event.IngestEvent(ctx(t), &loyaltyv1.IngestEventRequest{Event: event})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetReplayed() || first.GetEvent().GetPoints() != 25 || first.GetEvent().GetResolvedUserId() != userID {
		t.Fatalf("want 25 points awarded to %s, got %v", userID, first)
	}
	if got := balance(); got != 25 {
		t.Fatalf("balance after the event: want 25, got %d", got)
	}

	// The same event again is a replay of the original: nothing more is awarded.
	again, err := shop.Loyalty.Event.IngestEvent(ctx(t), &loyaltyv1.IngestEventRequest{Event: event})
	if err != nil {
		t.Fatal(err)
	}
	if !again.GetReplayed() || again.GetEvent().GetId() != first.GetEvent().GetId() {
		t.Fatalf("want a replay of event %s, got %v", first.GetEvent().GetId(), again)
	}
	if got := balance(); got != 25 {
		t.Fatalf("balance after the replay: want 25, got %d", got)
	}
}
