//! Tiers: administration, the upgrade inside the award that crosses a threshold, tier
//! multipliers, downgrades only at re-evaluation, the history, and members' own view.

use mgpass_e2e::{authed, grpc_reason, proto::loyalty as pb, rest, rest_reason};
use serde_json::json;

use crate::loyalty_earning_support::{Loyalty, PW, int, purchase};

async fn tier(l: &Loyalty, name: &str, threshold: i64, multiplier_bps: i32) -> String {
    let (status, body) = l
        .admin(
            "POST",
            "/v1/loyalty/tiers",
            Some(
                json!({"name": name, "thresholdPoints": threshold.to_string(),
            "earningMultiplierBps": multiplier_bps, "perks": [format!("{name} lounge")]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["tier"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn crossing_a_threshold_upgrades_in_the_award_and_multiplies_later_awards() {
    let l = Loyalty::start().await;
    let bronze = tier(&l, "Bronze", 0, 0).await;
    let silver = tier(&l, "Silver", 50, 20_000).await;
    let gold = tier(&l, "Gold", 200, 30_000).await;
    l.rule(
        json!({"name": "thirty", "eventType": "purchase", "fixedPoints": "30",
        "tierMultipliers": [{"tierId": gold, "multiplierBps": 50000}]}),
    )
    .await;
    let user = l.user("ama@example.com").await;

    let (_, body) = l.ingest(purchase("t1", &user, 100)).await;
    assert_eq!(int(&body["event"]["points"]), 30);
    let (_, status) = l
        .admin("GET", &format!("/v1/loyalty/members/{user}/tier"), None)
        .await;
    assert_eq!(status["status"]["tier"]["id"], bronze.as_str(), "{status}");
    assert_eq!(int(&status["status"]["windowPoints"]), 30);
    assert_eq!(status["status"]["nextTier"]["id"], silver.as_str());
    assert_eq!(int(&status["status"]["pointsToNextTier"]), 20);

    // 60 crosses Silver's 50 in the award itself; the next award earns Silver's 2x.
    l.ingest(purchase("t2", &user, 100)).await;
    assert_eq!(
        l.sql(&format!(
            "SELECT tier_id FROM loyalty_user_tiers WHERE user_id = '{user}'"
        )),
        silver
    );
    let (_, body) = l.ingest(purchase("t3", &user, 100)).await;
    assert_eq!(
        (
            int(&body["event"]["points"]),
            body["event"]["awards"][0]["multiplierBps"].clone()
        ),
        (60, json!(20000))
    );
    // 120, then 180 (still Silver), then 240: Gold, whose multiplier this rule overrides to 5x.
    l.ingest(purchase("t4", &user, 100)).await;
    assert_eq!(
        l.sql(&format!(
            "SELECT tier_id FROM loyalty_user_tiers WHERE user_id = '{user}'"
        )),
        silver
    );
    l.ingest(purchase("t5", &user, 100)).await;
    assert_eq!(
        l.sql(&format!(
            "SELECT tier_id FROM loyalty_user_tiers WHERE user_id = '{user}'"
        )),
        gold,
        "180 + 60 = 240 reaches Gold"
    );
    let (_, body) = l.ingest(purchase("t6", &user, 100)).await;
    assert_eq!(int(&body["event"]["points"]), 150);

    // The member sees it, over REST and gRPC.
    let token = l.server.login("ama@example.com", PW).await;
    let (status, mine) = rest(&l.server, &token, "GET", "/v1/me/loyalty/tier", None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["status"]["tier"]["name"], "Gold");
    assert!(
        mine["status"].get("nextTier").is_none_or(|t| t.is_null()),
        "top tier"
    );
    let mut client = pb::tier_service_client::TierServiceClient::new(l.server.channel().await);
    let changes = client
        .list_my_tier_changes(authed(pb::ListMyTierChangesRequest::default(), &token))
        .await
        .unwrap()
        .into_inner()
        .tier_changes;
    let path: Vec<(String, String, i32)> = changes
        .iter()
        .map(|c| (c.from_tier_id.clone(), c.to_tier_id.clone(), c.reason))
        .collect();
    let crossed = pb::TierChangeReason::ThresholdCrossed as i32;
    assert_eq!(
        path,
        [
            (silver.clone(), gold.clone(), crossed),
            (bronze.clone(), silver.clone(), crossed),
            (String::new(), bronze.clone(), crossed)
        ]
    );
    assert_eq!(changes[0].window_points, 240);
}

#[tokio::test(flavor = "multi_thread")]
async fn members_go_down_only_at_reevaluation() {
    let l = Loyalty::start().await;
    let silver = tier(&l, "Silver", 50, 0).await;
    l.rule(json!({"name": "sixty", "eventType": "purchase", "fixedPoints": "60"}))
        .await;
    let user = l.user("kofi@example.com").await;
    l.ingest(purchase("d1", &user, 100)).await;
    assert_eq!(
        l.sql(&format!(
            "SELECT tier_id FROM loyalty_user_tiers WHERE user_id = '{user}'"
        )),
        silver
    );
    // The partner reverses the purchase: the window drops to 0, the tier stays until re-evaluation.
    let (status, _) = l
        .partner(
            "POST",
            "/v1/loyalty/events:reverse",
            json!({"partnerEventId": "d1"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, standing) = l
        .admin("GET", &format!("/v1/loyalty/members/{user}/tier"), None)
        .await;
    assert_eq!(
        (
            standing["status"]["tier"]["id"].clone(),
            int(&standing["status"]["windowPoints"])
        ),
        (json!(silver), 0)
    );

    let (status, counts) = l
        .admin("POST", "/v1/loyalty/tiers:reevaluate", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(
        (
            int(&counts["evaluatedCount"]),
            int(&counts["downgradedCount"]),
            int(&counts["upgradedCount"])
        ),
        (1, 1, 0)
    );
    assert_eq!(l.sql(&format!("SELECT COALESCE(tier_id::text, 'none') FROM loyalty_user_tiers WHERE user_id = '{user}'")), "none");
    let (_, history) = l
        .admin(
            "GET",
            &format!("/v1/loyalty/members/{user}/tierChanges"),
            None,
        )
        .await;
    assert_eq!(
        history["tierChanges"][0]["reason"],
        "TIER_CHANGE_REASON_REEVALUATION"
    );
    assert_eq!(history["tierChanges"].as_array().unwrap().len(), 2);

    // Concurrent runs for everyone are joined, never doubled.
    let (a, b) = tokio::join!(
        l.admin("POST", "/v1/loyalty/tiers:reevaluate", Some(json!({}))),
        l.admin("POST", "/v1/loyalty/tiers:reevaluate", Some(json!({})))
    );
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(
        l.sql(&format!(
            "SELECT count(*) FROM loyalty_tier_changes WHERE user_id = '{user}'"
        )),
        "2"
    );
    let (status, body) = l
        .admin(
            "POST",
            "/v1/loyalty/tiers:reevaluate",
            Some(json!({"userId": uuid::Uuid::new_v4().to_string()})),
        )
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (404, "USER_NOT_FOUND")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tier_administration_refuses_bad_input_and_deleting_tiers_in_use() {
    let l = Loyalty::start().await;
    let silver = tier(&l, "Silver", 50, 0).await;
    for (body, status, reason) in [
        (
            json!({"name": "Silver", "thresholdPoints": "70"}),
            409,
            "TIER_NAME_TAKEN",
        ),
        (
            json!({"name": "Other", "thresholdPoints": "50"}),
            409,
            "TIER_THRESHOLD_TAKEN",
        ),
        (
            json!({"name": "Neg", "thresholdPoints": "-1"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"name": "", "thresholdPoints": "10"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"name": "Mult", "thresholdPoints": "10", "earningMultiplierBps": -5}),
            400,
            "INVALID_ARGUMENT",
        ),
    ] {
        let (got, answer) = l
            .admin("POST", "/v1/loyalty/tiers", Some(body.clone()))
            .await;
        assert_eq!(
            (got, rest_reason(&answer).as_str()),
            (status, reason),
            "{body}: {answer}"
        );
    }
    // A lowered threshold upgrades qualifying members at once.
    l.rule(json!({"name": "forty", "eventType": "purchase", "fixedPoints": "40"}))
        .await;
    let user = l.user("abena@example.com").await;
    l.ingest(purchase("a1", &user, 100)).await;
    assert_eq!(
        l.sql(&format!(
            "SELECT count(*) FROM loyalty_user_tiers WHERE tier_id IS NOT NULL"
        )),
        "0"
    );
    let (status, body) = l
        .admin(
            "PATCH",
            &format!("/v1/loyalty/tiers/{silver}?updateMask=thresholdPoints"),
            Some(json!({"thresholdPoints": "40"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        l.sql(&format!(
            "SELECT tier_id FROM loyalty_user_tiers WHERE user_id = '{user}'"
        )),
        silver
    );
    assert_eq!(
        l.sql("SELECT reason FROM loyalty_tier_changes"),
        "3",
        "a tier configuration change"
    );

    let (status, body) = l
        .admin("DELETE", &format!("/v1/loyalty/tiers/{silver}"), None)
        .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "TIER_IN_USE"));
    let spare = tier(&l, "Spare", 999, 0).await;
    let (status, _) = l
        .admin("DELETE", &format!("/v1/loyalty/tiers/{spare}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = l
        .admin("GET", &format!("/v1/loyalty/tiers/{spare}"), None)
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (404, "TIER_NOT_FOUND")
    );
    let (_, list) = l.admin("GET", "/v1/loyalty/tiers", None).await;
    assert_eq!(list["tiers"].as_array().unwrap().len(), 1);

    // Members read only their own standing.
    let token = l.server.login("abena@example.com", PW).await;
    let (status, body) = rest(
        &l.server,
        &token,
        "GET",
        &format!("/v1/loyalty/members/{user}/tier"),
        None,
    )
    .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (403, "PERMISSION_DENIED")
    );
    let mut client = pb::tier_service_client::TierServiceClient::new(l.server.channel().await);
    let err = client
        .create_tier(authed(
            pb::CreateTierRequest {
                tier: Some(pb::Tier {
                    name: "x".into(),
                    ..Default::default()
                }),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(grpc_reason(&err), "PERMISSION_DENIED");
    let mine = client
        .get_my_tier_status(authed(pb::GetMyTierStatusRequest {}, &token))
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!((mine.tier.unwrap().id, mine.window_points), (silver, 40));
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_items_restricted_to_a_tier_follow_members_tiers() {
    let l = Loyalty::start().await;
    let silver = tier(&l, "Silver", 50, 0).await;
    l.rule(json!({"name": "sixty", "eventType": "purchase", "fixedPoints": "60"}))
        .await;
    let (status, body) = l
        .admin(
            "POST",
            "/v1/loyalty/catalogItems",
            Some(
                json!({"name": "Lounge", "pointsCost": "20", "unlimitedStock": true,
            "eligibleTierIds": [uuid::Uuid::new_v4().to_string()]}),
            ),
        )
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (404, "TIER_NOT_FOUND")
    );
    let (status, body) = l
        .admin(
            "POST",
            "/v1/loyalty/catalogItems",
            Some(
                json!({"name": "Lounge", "pointsCost": "20", "unlimitedStock": true,
            "eligibleTierIds": [silver]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let item = body["catalogItem"]["id"].as_str().unwrap().to_string();
    let user = l.user("kojo@example.com").await;
    let token = l.server.login("kojo@example.com", PW).await;
    let redeem = |id: &str| json!({"quantity": 1, "requestId": id});
    let path = format!("/v1/me/loyalty/catalogItems/{item}:redeem");
    // Points but no tier yet: 30 points, below Silver's 50.
    l.rule(json!({"name": "thirty trips", "eventType": "trip.completed", "fixedPoints": "30"}))
        .await;
    let mut trip = purchase("trip-1", &user, 0);
    trip["eventType"] = json!("trip.completed");
    l.ingest(trip).await;
    let (status, body) = rest(
        &l.server,
        &token,
        "POST",
        &path,
        Some(redeem(&uuid::Uuid::new_v4().to_string())),
    )
    .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (400, "TIER_NOT_ELIGIBLE"),
        "{body}"
    );
    // The award that crosses Silver makes the item redeemable at once.
    l.ingest(purchase("buy-1", &user, 100)).await;
    let (status, body) = rest(
        &l.server,
        &token,
        "POST",
        &path,
        Some(redeem(&uuid::Uuid::new_v4().to_string())),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A tier an item names stays.
    let (status, body) = l
        .admin("DELETE", &format!("/v1/loyalty/tiers/{silver}"), None)
        .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "TIER_IN_USE"));
}
