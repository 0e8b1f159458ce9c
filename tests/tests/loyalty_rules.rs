//! Earning rules: fixed and rate points with rounding, conditions over the event, user and tier,
//! priority and stacking, active windows, caps held under concurrent events, immutable versions
//! recorded on every award, dry runs, bad input and authorization.

use mgpass_e2e::{grpc_reason, proto::loyalty as pb, rest, rest_reason};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::loyalty_earning_support::{Loyalty, PW, flag, int, now, purchase};

async fn points_for(l: &Loyalty, id: &str, user: &str, amount: i64) -> i64 {
    let (status, body) = l.ingest(purchase(id, user, amount)).await;
    assert_eq!(status, 200, "{body}");
    int(&body["event"]["points"])
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_rules_round_as_configured_and_conditions_select_events() {
    let l = Loyalty::start().await;
    // 1 point per GHS 1.00, halves up; only at the Accra store for GHS 10 or more.
    l.rule(json!({"name": "accra", "eventType": "purchase",
        "rate": {"points": "1", "perAmountMinor": "100", "currency": "GHS"}, "rounding": "ROUNDING_MODE_HALF_UP",
        "condition": "event.attributes.store == 'accra-1' && event.amount_minor >= 1000 && user.id != ''"})).await;
    let user = l.user("ama@example.com").await;
    assert_eq!(
        points_for(&l, "e1", &user, 1050).await,
        11,
        "10.5 rounds half up"
    );
    assert_eq!(points_for(&l, "e2", &user, 1049).await, 10);
    assert_eq!(
        points_for(&l, "e3", &user, 999).await,
        0,
        "below the condition's amount"
    );
    let mut kumasi = purchase("e4", &user, 5000);
    kumasi["attributes"] = json!({"store": "kumasi"});
    assert_eq!(int(&l.ingest(kumasi).await.1["event"]["points"]), 0);
    let mut usd = purchase("e5", &user, 5000);
    usd["amount"]["currency"] = json!("USD");
    assert_eq!(
        int(&l.ingest(usd).await.1["event"]["points"]),
        0,
        "another currency does not match a rate"
    );
    assert_eq!(l.points_of(&user), 21);
    // Every award entry names its rule and version.
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_entries WHERE points > 0 AND rule_version = 1 AND rule_id IS NOT NULL"), "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn priority_and_stacking_decide_which_rules_award() {
    let l = Loyalty::start().await;
    let user = l.user("kofi@example.com").await;
    l.rule(json!({"name": "base", "eventType": "purchase", "fixedPoints": "5"}))
        .await;
    l.rule(json!({"name": "bonus", "eventType": "purchase", "fixedPoints": "3", "priority": 5}))
        .await;
    assert_eq!(
        points_for(&l, "s1", &user, 100).await,
        8,
        "stackable rules add up"
    );
    // An exclusive rule of lower priority is skipped; of the highest priority, it awards alone.
    l.rule(json!({"name": "low exclusive", "eventType": "purchase", "fixedPoints": "100", "stacking": "STACKING_MODE_EXCLUSIVE", "priority": 1})).await;
    assert_eq!(points_for(&l, "s2", &user, 100).await, 8);
    l.rule(json!({"name": "top exclusive", "eventType": "purchase", "fixedPoints": "50", "stacking": "STACKING_MODE_EXCLUSIVE", "priority": 10})).await;
    assert_eq!(points_for(&l, "s3", &user, 100).await, 50);
    // A rule not yet active, or of another type, does not count.
    l.rule(json!({"name": "future", "eventType": "purchase", "fixedPoints": "1000", "priority": 99, "stacking": "STACKING_MODE_EXCLUSIVE",
        "startTime": "2099-01-01T00:00:00Z"})).await;
    l.rule(json!({"name": "trips", "eventType": "trip.completed", "fixedPoints": "1000", "priority": 100, "stacking": "STACKING_MODE_EXCLUSIVE"})).await;
    assert_eq!(points_for(&l, "s4", &user, 100).await, 50);
    let (_, listed) = l
        .admin("GET", "/v1/loyalty/rules?eventType=purchase", None)
        .await;
    let names: Vec<&str> = listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["future", "top exclusive", "bonus", "low exclusive", "base"],
        "by priority"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn caps_hold_under_concurrent_events() {
    let l = Loyalty::start().await;
    let rule = l.rule(json!({"name": "capped", "eventType": "purchase", "fixedPoints": "10",
        "caps": [{"period": "CAP_PERIOD_DAY", "maxPoints": "35"}, {"period": "CAP_PERIOD_LIFETIME", "maxPoints": "1000"}]})).await;
    let user = l.user("efua@example.com").await;
    let other = l.user("yaw@example.com").await;
    let mut set = JoinSet::new();
    for i in 0..24 {
        let (url, key, http) = (
            l.server.url("/v1/loyalty/events"),
            l.key.clone(),
            l.server.http.clone(),
        );
        let body = purchase(
            &format!("cap-{i}"),
            if i % 6 == 5 { &other } else { &user },
            100,
        );
        set.spawn(async move {
            let resp = http
                .post(url)
                .header("x-api-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        });
    }
    let mut capped = 0;
    while let Some(body) = set.join_next().await {
        let body = body.unwrap();
        if body["event"]["awards"][0]["capped"] == json!(true) {
            capped += 1;
        }
    }
    assert_eq!(
        l.points_of(&user),
        35,
        "20 events of 10 points under a daily cap of 35"
    );
    assert_eq!(l.points_of(&other), 35, "each user has their own cap");
    assert_eq!(
        capped,
        17 + 1,
        "per user, the 4th event is cut to 5 and the later ones to 0"
    );
    assert_eq!(
        l.sql(&format!("SELECT points FROM loyalty_cap_counters WHERE rule_id = '{rule}' AND user_id = '{user}' AND period = 1")),
        "35"
    );
    // A dry run for that user sees the cap used up.
    let (_, dry) = l.admin("POST", "/v1/loyalty/rules:dryRun",
        Some(json!({"ruleId": rule, "event": purchase("x", &user, 100), "partnerId": l.partner_id, "userId": user}))).await;
    assert_eq!(
        (
            dry["matched"].clone(),
            int(&dry["uncappedPoints"]),
            int(&dry["points"]),
            dry["capped"].clone()
        ),
        (json!(true), 10, 0, json!(true)),
        "{dry}"
    );
    // Reversing a capped event gives its points back to the cap.
    let full = l.sql(&format!("SELECT partner_event_id FROM loyalty_events WHERE resolved_user_id = '{user}' AND points = 10 LIMIT 1"));
    let (status, _) = l
        .partner(
            "POST",
            "/v1/loyalty/events:reverse",
            json!({"partnerEventId": full}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(points_for(&l, "after-reversal", &user, 100).await, 10);
    assert_eq!(l.points_of(&user), 35);

    // Reversals racing new events of the same user: no deadlock, and the counter always equals
    // what the live events hold, within the cap.
    let full: Vec<String> = l
        .sql(&format!("SELECT partner_event_id FROM loyalty_events WHERE resolved_user_id = '{user}' AND points > 0 AND status = 1"))
        .lines()
        .map(str::to_string)
        .collect();
    let mut set = JoinSet::new();
    for (i, id) in full.iter().enumerate() {
        let (key, http, base) = (l.key.clone(), l.server.http.clone(), l.server.url(""));
        let (reverse, fresh) = (
            json!({"partnerEventId": id}),
            purchase(&format!("race-{i}"), &user, 100),
        );
        set.spawn(async move {
            let a = http
                .post(format!("{base}/v1/loyalty/events:reverse"))
                .header("x-api-key", &key)
                .json(&reverse)
                .send();
            let b = http
                .post(format!("{base}/v1/loyalty/events"))
                .header("x-api-key", &key)
                .json(&fresh)
                .send();
            let (a, b) = tokio::join!(a, b);
            (a.unwrap().status().as_u16(), b.unwrap().status().as_u16())
        });
    }
    while let Some(statuses) = set.join_next().await {
        assert_eq!(statuses.unwrap(), (200, 200));
    }
    let live = l.points_of(&user);
    assert!(live <= 35, "{live}");
    assert_eq!(
        l.sql(&format!("SELECT points FROM loyalty_cap_counters WHERE rule_id = '{rule}' AND user_id = '{user}' AND period = 1")),
        live.to_string()
    );
    l.assert_ledger_verified();
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_make_immutable_versions_and_awards_record_theirs() {
    let l = Loyalty::start().await;
    let user = l.user("akua@example.com").await;
    let rule = l
        .rule(
            json!({"name": "v", "eventType": "purchase", "fixedPoints": "10",
        "caps": [{"period": "CAP_PERIOD_LIFETIME", "maxPoints": "25"}]}),
        )
        .await;
    assert_eq!(points_for(&l, "v1", &user, 100).await, 10);
    let (status, body) = l
        .admin(
            "PATCH",
            &format!("/v1/loyalty/rules/{rule}?updateMask=fixedPoints"),
            Some(json!({"fixedPoints": "20"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rule"]["version"], 2);
    assert_eq!(int(&body["rule"]["fixedPoints"]), 20);
    assert_eq!(
        body["rule"]["caps"][0]["maxPoints"], "25",
        "fields outside the mask are kept"
    );
    let (_, body) = l.ingest(purchase("v2", &user, 100)).await;
    assert_eq!(body["event"]["awards"][0]["ruleVersion"], 2);
    assert_eq!(
        int(&body["event"]["points"]),
        15,
        "the lifetime cap counts what version 1 awarded"
    );
    assert_eq!(l.sql("SELECT string_agg(rule_version::text, ',' ORDER BY rule_version) FROM loyalty_entries WHERE points > 0"), "1,2");

    let (_, v1) = l
        .admin("GET", &format!("/v1/loyalty/rules/{rule}?version=1"), None)
        .await;
    assert_eq!(int(&v1["rule"]["fixedPoints"]), 10);
    let (_, versions) = l
        .admin("GET", &format!("/v1/loyalty/rules/{rule}/versions"), None)
        .await;
    let numbers: Vec<i64> = versions["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    let (status, body) = l
        .admin("GET", &format!("/v1/loyalty/rules/{rule}?version=7"), None)
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (404, "RULE_VERSION_NOT_FOUND")
    );
    let (status, body) = l
        .admin(
            "PATCH",
            &format!("/v1/loyalty/rules/{rule}?updateMask=createTime"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (400, "INVALID_UPDATE_MASK")
    );
    // The database itself keeps versions immutable.
    let out = std::process::Command::new("psql")
        .args([
            l.server.database_url.as_str(),
            "-qAtc",
            "UPDATE loyalty_rule_versions SET fixed_points = 1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Disabling is a version too; a disabled rule awards nothing.
    let (_, body) = l
        .admin(
            "PATCH",
            &format!("/v1/loyalty/rules/{rule}?updateMask=status"),
            Some(json!({"status": "RULE_STATUS_DISABLED"})),
        )
        .await;
    assert_eq!(body["rule"]["version"], 3);
    assert_eq!(points_for(&l, "v3", &user, 100).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_runs_explain_without_writing() {
    let l = Loyalty::start().await;
    let rule = l.rule(json!({"name": "big spenders", "eventType": "purchase", "condition": "event.amount_minor >= 10000",
        "rate": {"points": "3", "perAmountMinor": "200", "currency": "GHS"}, "rounding": "ROUNDING_MODE_HALF_EVEN"})).await;
    let sample = |amount: i64| json!({"eventType": "purchase", "occurTime": now(), "amount": {"amountMinor": amount.to_string(), "currency": "GHS"}});
    let (status, dry) = l
        .admin(
            "POST",
            "/v1/loyalty/rules:dryRun",
            Some(json!({"ruleId": rule, "event": sample(10100), "partnerId": l.partner_id})),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    // 10100 * 3 / 200 = 151.5, halves to even: 152.
    assert_eq!(
        (
            dry["matched"].clone(),
            int(&dry["basePoints"]),
            int(&dry["points"]),
            dry["multiplierBps"].clone()
        ),
        (json!(true), 152, 152, json!(10000))
    );
    let (_, dry) = l
        .admin(
            "POST",
            "/v1/loyalty/rules:dryRun",
            Some(json!({"ruleId": rule, "event": sample(500), "partnerId": l.partner_id})),
        )
        .await;
    assert_eq!(
        (flag(&dry["matched"]), dry["mismatchReason"].clone()),
        (false, json!("condition false"))
    );
    // A draft whose condition fails at run time explains why.
    let draft = json!({"name": "d", "eventType": "purchase", "fixedPoints": "1", "condition": "event.attributes.tier_code == 'x'"});
    let (_, dry) = l
        .admin(
            "POST",
            "/v1/loyalty/rules:dryRun",
            Some(json!({"rule": draft, "event": sample(1), "partnerId": l.partner_id})),
        )
        .await;
    assert_eq!(dry["mismatchReason"], "condition error", "{dry}");
    assert!(
        !dry["conditionError"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    let bad = json!({"name": "d", "eventType": "purchase", "fixedPoints": "1", "condition": "event.amount_minor >"});
    let (status, body) = l
        .admin(
            "POST",
            "/v1/loyalty/rules:dryRun",
            Some(json!({"rule": bad, "event": sample(1)})),
        )
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (400, "INVALID_CONDITION")
    );
    let (status, body) = l.admin("POST", "/v1/loyalty/rules:dryRun",
        Some(json!({"ruleId": rule, "event": sample(1), "userId": uuid::Uuid::new_v4().to_string()}))).await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (404, "USER_NOT_FOUND")
    );
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_events"), "0");
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_rule_versions"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rules_are_refused_and_rules_need_their_permissions() {
    let l = Loyalty::start().await;
    let ok = json!({"name": "ok", "eventType": "purchase", "fixedPoints": "1"});
    let with = |patch: Value| {
        let mut r = ok.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                r.as_object_mut().unwrap().remove(k);
            } else {
                r[k] = v.clone();
            }
        }
        r
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            with(json!({"condition": "nope.x == 1"})),
            400,
            "INVALID_CONDITION",
        ),
        (
            with(json!({"condition": "1 + 1"})),
            400,
            "INVALID_CONDITION",
        ),
        (
            with(json!({"partnerId": l.partner_id, "eventType": "refund.issued"})),
            400,
            "UNKNOWN_EVENT_TYPE",
        ),
        (
            with(json!({"partnerId": uuid::Uuid::new_v4().to_string()})),
            404,
            "PARTNER_NOT_FOUND",
        ),
        (with(json!({"fixedPoints": null})), 400, "INVALID_ARGUMENT"),
        (with(json!({"fixedPoints": "0"})), 400, "INVALID_ARGUMENT"),
        (
            with(
                json!({"fixedPoints": null, "rate": {"points": "1", "perAmountMinor": "0", "currency": "GHS"}}),
            ),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            with(
                json!({"fixedPoints": null, "rate": {"points": "1", "perAmountMinor": "100", "currency": "ghs"}}),
            ),
            400,
            "INVALID_CURRENCY",
        ),
        (
            with(
                json!({"caps": [{"period": "CAP_PERIOD_DAY", "maxPoints": "5"}, {"period": "CAP_PERIOD_DAY", "maxPoints": "9"}]}),
            ),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            with(json!({"startTime": "2030-01-02T00:00:00Z", "endTime": "2030-01-01T00:00:00Z"})),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            with(
                json!({"tierMultipliers": [{"tierId": uuid::Uuid::new_v4().to_string(), "multiplierBps": 15000}]}),
            ),
            404,
            "TIER_NOT_FOUND",
        ),
        (with(json!({"name": ""})), 400, "INVALID_ARGUMENT"),
    ];
    for (rule, status, reason) in cases {
        let (got, body) = l
            .admin("POST", "/v1/loyalty/rules", Some(rule.clone()))
            .await;
        assert_eq!(
            (got, rest_reason(&body).as_str()),
            (status, reason),
            "{rule}: {body}"
        );
    }
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_rules"), "0");
    let (status, body) = l
        .admin(
            "GET",
            &format!("/v1/loyalty/rules/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (404, "RULE_NOT_FOUND")
    );

    l.user("member@example.com").await;
    let member = l.server.login("member@example.com", PW).await;
    let (status, body) = rest(
        &l.server,
        &member,
        "POST",
        "/v1/loyalty/rules",
        Some(ok.clone()),
    )
    .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (403, "PERMISSION_DENIED")
    );
    let mut client = pb::rule_service_client::RuleServiceClient::new(l.server.channel().await);
    let err = client
        .list_rules(mgpass_e2e::authed(pb::ListRulesRequest::default(), &member))
        .await
        .unwrap_err();
    assert_eq!(grpc_reason(&err), "PERMISSION_DENIED");
    let mut req = tonic::Request::new(pb::ListRulesRequest::default());
    req.metadata_mut()
        .insert("x-api-key", l.key.parse().unwrap());
    assert_eq!(
        client.list_rules(req).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let created = client
        .create_rule(mgpass_e2e::authed(
            pb::CreateRuleRequest {
                rule: Some(pb::Rule {
                    name: "grpc".into(),
                    event_type: "purchase".into(),
                    points: Some(pb::rule::Points::FixedPoints(2)),
                    ..Default::default()
                }),
            },
            &l.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(
        (created.version, created.status, created.stacking),
        (
            1,
            pb::RuleStatus::Active as i32,
            pb::StackingMode::Stackable as i32
        )
    );
}
