//! The reward catalog and redemptions over REST and gRPC: item validation with reasons, redeem /
//! fulfil / cancel with points and stock moving together, idempotency, per-user limits, and
//! concurrent redemptions that neither oversell nor overdraw (checked in SQL).

use mgpass_e2e::{TestServer, authed, grpc_reason, proto::loyalty as pb, psql, rest, rest_reason, run_mgpass};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::loyalty_support::{adjust, plain_user};

async fn create_item(server: &TestServer, admin: &str, item: Value) -> String {
    let (status, body) = rest(server, admin, "POST", "/v1/loyalty/catalogItems", Some(item)).await;
    assert_eq!(status, 200, "{body}");
    body["catalogItem"]["id"].as_str().unwrap().to_string()
}

async fn redeem(server: &TestServer, token: &str, item: &str, quantity: i32, request_id: &str) -> (u16, Value) {
    rest(
        server,
        token,
        "POST",
        format!("/v1/me/loyalty/catalogItems/{item}:redeem"),
        Some(json!({"quantity": quantity, "requestId": request_id, "details": {"address": "Plot 4, Kampala"}})),
    )
    .await
}

async fn points(server: &TestServer, token: &str) -> i64 {
    let (_, body) = rest(server, token, "GET", "/v1/me/loyalty/balance", None).await;
    body["balance"]["points"].as_str().unwrap_or("0").parse().unwrap()
}

fn stock(server: &TestServer, item: &str) -> String {
    psql(
        &server.database_url,
        &format!("SELECT stock || ' ' || redeemed_count FROM loyalty_catalog_items WHERE id = '{item}'"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_items_are_validated_listed_updated_and_stocked() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    for (item, reason) in [
        (json!({"name": "Mug", "pointsCost": "0"}), "INVALID_ARGUMENT"),
        (json!({"name": "Mug", "pointsCost": "10", "stock": "-1"}), "INVALID_ARGUMENT"),
        (json!({"name": "", "pointsCost": "10"}), "INVALID_ARGUMENT"),
        (json!({"name": "Mug", "pointsCost": "10", "perUserLimit": -1}), "INVALID_ARGUMENT"),
        (
            json!({"name": "Mug", "pointsCost": "10", "startTime": "2030-01-02T00:00:00Z", "endTime": "2030-01-01T00:00:00Z"}),
            "INVALID_ARGUMENT",
        ),
    ] {
        let (status, err) = rest(&server, &admin, "POST", "/v1/loyalty/catalogItems", Some(item.clone())).await;
        assert_eq!((status, rest_reason(&err).as_str()), (400, reason), "{item}: {err}");
    }
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM loyalty_catalog_items"), "0");

    let mug =
        create_item(&server, &admin, json!({"name": "Mug", "pointsCost": "30", "stock": "5", "perUserLimit": 2})).await;
    let _tee =
        create_item(&server, &admin, json!({"name": "T-shirt", "pointsCost": "80", "unlimitedStock": true})).await;
    let (_, got) = rest(&server, &admin, "GET", format!("/v1/loyalty/catalogItems/{mug}"), None).await;
    assert_eq!(
        (got["catalogItem"]["stock"].as_str(), got["catalogItem"]["status"].as_str()),
        (Some("5"), Some("CATALOG_ITEM_STATUS_ACTIVE"))
    );
    let (_, page) = rest(&server, &admin, "GET", "/v1/loyalty/catalogItems?pageSize=1", None).await;
    assert_eq!(page["catalogItems"][0]["name"], "Mug");
    let token = page["nextPageToken"].as_str().unwrap();
    let (_, page2) =
        rest(&server, &admin, "GET", format!("/v1/loyalty/catalogItems?pageSize=1&pageToken={token}"), None).await;
    assert_eq!(page2["catalogItems"][0]["name"], "T-shirt");
    let (status, err) =
        rest(&server, &admin, "GET", format!("/v1/loyalty/catalogItems/{}", Uuid::new_v4()), None).await;
    assert_eq!((status, rest_reason(&err).as_str()), (404, "CATALOG_ITEM_NOT_FOUND"));

    let (status, updated) = rest(
        &server,
        &admin,
        "PATCH",
        format!("/v1/loyalty/catalogItems/{mug}?updateMask=pointsCost,description"),
        Some(json!({"pointsCost": "35", "description": "ceramic"})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["catalogItem"]["pointsCost"], "35");
    let (status, err) = rest(
        &server,
        &admin,
        "PATCH",
        format!("/v1/loyalty/catalogItems/{mug}?updateMask=stock"),
        Some(json!({"stock": "100"})),
    )
    .await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_UPDATE_MASK"));

    let adjust_stock = |delta: i64| json!({"delta": delta.to_string()});
    let (_, more) =
        rest(&server, &admin, "POST", format!("/v1/loyalty/catalogItems/{mug}:adjustStock"), Some(adjust_stock(3)))
            .await;
    assert_eq!(more["catalogItem"]["stock"], "8");
    let (status, err) =
        rest(&server, &admin, "POST", format!("/v1/loyalty/catalogItems/{mug}:adjustStock"), Some(adjust_stock(-9)))
            .await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "INSUFFICIENT_STOCK"));
    let (status, err) =
        rest(&server, &admin, "POST", format!("/v1/loyalty/catalogItems/{mug}:adjustStock"), Some(adjust_stock(0)))
            .await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_ARGUMENT"));
    assert_eq!(stock(&server, &mug), "8 0");

    // gRPC, and a plain user who may not administer the catalog.
    let (_, user) = plain_user(&server, &admin, "plain@example.com").await;
    let mut client = pb::catalog_service_client::CatalogServiceClient::new(server.channel().await);
    let denied = client
        .create_catalog_item(authed(
            pb::CreateCatalogItemRequest {
                catalog_item: Some(pb::CatalogItem { name: "Free".into(), points_cost: 1, ..Default::default() }),
            },
            &user,
        ))
        .await
        .unwrap_err();
    assert_eq!(grpc_reason(&denied), "PERMISSION_DENIED");
    let mine = client
        .list_my_catalog_items(authed(pb::ListMyCatalogItemsRequest::default(), &user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.items.len(), 2);
    assert!(mine.items.iter().all(|i| !i.affordable));

    let (status, _) = rest(&server, &admin, "DELETE", format!("/v1/loyalty/catalogItems/{mug}"), None).await;
    assert_eq!(status, 200);
    let (status, err) = rest(&server, &admin, "DELETE", format!("/v1/loyalty/catalogItems/{mug}"), None).await;
    assert_eq!((status, rest_reason(&err).as_str()), (404, "CATALOG_ITEM_NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread")]
async fn redeem_fulfil_and_cancel_move_points_and_stock_together() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (user, token) = plain_user(&server, &admin, "member@example.com").await;
    let (_, other) = plain_user(&server, &admin, "other@example.com").await;
    adjust(&server, &admin, &user, 100).await;
    let mug =
        create_item(&server, &admin, json!({"name": "Mug", "pointsCost": "30", "stock": "3", "perUserLimit": 2})).await;

    let request_id = Uuid::new_v4().to_string();
    let (status, first) = redeem(&server, &token, &mug, 1, &request_id).await;
    assert_eq!(status, 200, "{first}");
    let order = &first["order"];
    assert_eq!(
        (order["status"].as_str(), order["points"].as_str(), order["details"]["address"].as_str()),
        (Some("ORDER_STATUS_PENDING"), Some("30"), Some("Plot 4, Kampala"))
    );
    let order_id = order["id"].as_str().unwrap().to_string();
    assert_eq!((points(&server, &token).await, stock(&server, &mug)), (70, "2 1".to_string()));

    // Idempotent by request id; another body with it conflicts.
    let (_, again) = redeem(&server, &token, &mug, 1, &request_id).await;
    assert_eq!(again["order"]["id"], order_id.as_str());
    let (status, err) = redeem(&server, &token, &mug, 2, &request_id).await;
    assert_eq!((status, rest_reason(&err).as_str()), (409, "IDEMPOTENCY_KEY_REUSED"));
    assert_eq!((points(&server, &token).await, stock(&server, &mug)), (70, "2 1".to_string()));

    // Refusals, each writing nothing.
    for (quantity, reason) in [(2, "REDEMPTION_LIMIT_REACHED"), (101, "INVALID_ARGUMENT")] {
        let (_, err) = redeem(&server, &token, &mug, quantity, &Uuid::new_v4().to_string()).await;
        assert_eq!(rest_reason(&err), reason);
    }
    let (_, err) = redeem(&server, &token, &Uuid::new_v4().to_string(), 1, &Uuid::new_v4().to_string()).await;
    assert_eq!(rest_reason(&err), "CATALOG_ITEM_NOT_FOUND");
    let watch =
        create_item(&server, &admin, json!({"name": "Watch", "pointsCost": "500", "unlimitedStock": true})).await;
    let (status, err) = redeem(&server, &token, &watch, 1, &Uuid::new_v4().to_string()).await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "INSUFFICIENT_POINTS"));
    // A tier the user does not hold (tier ids of items must name real tiers).
    let (status, tier) = rest(&server, &admin, "POST", "/v1/loyalty/tiers", Some(json!({"name": "Gold", "thresholdPoints": "100000"}))).await;
    assert_eq!(status, 200, "{tier}");
    let gold_tier = tier["tier"]["id"].as_str().unwrap().to_string();
    let gold = create_item(&server, &admin, json!({"name": "Lounge", "pointsCost": "1", "unlimitedStock": true, "eligibleTierIds": [gold_tier]})).await;
    let (_, err) = redeem(&server, &token, &gold, 1, &Uuid::new_v4().to_string()).await;
    assert_eq!(rest_reason(&err), "TIER_NOT_ELIGIBLE");
    let later = create_item(
        &server,
        &admin,
        json!({"name": "Later", "pointsCost": "1", "unlimitedStock": true, "startTime": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let (_, err) = redeem(&server, &token, &later, 1, &Uuid::new_v4().to_string()).await;
    assert_eq!(rest_reason(&err), "CATALOG_ITEM_UNAVAILABLE");
    assert_eq!((points(&server, &token).await, stock(&server, &mug)), (70, "2 1".to_string()));
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM loyalty_orders"), "1");

    // Orders: mine, not another user's.
    let (_, mine) = rest(&server, &token, "GET", "/v1/me/loyalty/orders", None).await;
    assert_eq!(mine["orders"].as_array().unwrap().len(), 1);
    let (status, err) = rest(&server, &other, "GET", format!("/v1/me/loyalty/orders/{order_id}"), None).await;
    assert_eq!((status, rest_reason(&err).as_str()), (404, "ORDER_NOT_FOUND"));
    let (status, _) =
        rest(&server, &token, "POST", format!("/v1/loyalty/orders/{order_id}:fulfill"), Some(json!({}))).await;
    assert_eq!(status, 403, "users do not fulfil their own orders");

    // Fulfil the first; cancel a second: its points and unit come back.
    let (status, done) = rest(
        &server,
        &admin,
        "POST",
        format!("/v1/loyalty/orders/{order_id}:fulfill"),
        Some(json!({"fulfillmentReference": "DHL-1"})),
    )
    .await;
    assert_eq!((status, done["order"]["status"].as_str()), (200, Some("ORDER_STATUS_FULFILLED")));
    let (status, err) =
        rest(&server, &admin, "POST", format!("/v1/loyalty/orders/{order_id}:cancel"), Some(json!({"reason": "late"})))
            .await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "ORDER_NOT_PENDING"));
    let (_, second) = redeem(&server, &token, &mug, 1, &Uuid::new_v4().to_string()).await;
    let second_id = second["order"]["id"].as_str().unwrap().to_string();
    assert_eq!((points(&server, &token).await, stock(&server, &mug)), (40, "1 2".to_string()));
    let (status, err) =
        rest(&server, &admin, "POST", format!("/v1/loyalty/orders/{second_id}:cancel"), Some(json!({"reason": ""})))
            .await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_ARGUMENT"));
    let (status, cancelled) = rest(
        &server,
        &admin,
        "POST",
        format!("/v1/loyalty/orders/{second_id}:cancel"),
        Some(json!({"reason": "out of mugs"})),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["order"]["status"], "ORDER_STATUS_CANCELLED");
    let refund = cancelled["order"]["refundTransactionId"].as_str().unwrap();
    assert_eq!(
        psql(
            &server.database_url,
            &format!("SELECT kind || ' ' || points FROM loyalty_transactions WHERE id = '{refund}'")
        ),
        "refund 30"
    );
    assert_eq!((points(&server, &token).await, stock(&server, &mug)), (70, "2 1".to_string()));
    // A cancelled unit no longer counts toward the limit.
    let (status, _) = redeem(&server, &token, &mug, 1, &Uuid::new_v4().to_string()).await;
    assert_eq!(status, 200);

    let (_, listed) =
        rest(&server, &admin, "GET", format!("/v1/loyalty/orders?userId={user}&status=ORDER_STATUS_CANCELLED"), None)
            .await;
    assert_eq!(listed["orders"].as_array().unwrap().len(), 1);
    let (status, err) = rest(&server, &admin, "DELETE", format!("/v1/loyalty/catalogItems/{mug}"), None).await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "CATALOG_ITEM_IN_USE"));
    crate::loyalty_ledger::assert_ledger_invariants(&server.database_url);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_redemptions_neither_oversell_nor_overdraw() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    // Stock: 5 units, 4 users each trying 4 times.
    let mug = create_item(&server, &admin, json!({"name": "Mug", "pointsCost": "10", "stock": "5"})).await;
    // Points: one user whose 50 points cover 2 of 10 tries at an unlimited item.
    let tee =
        create_item(&server, &admin, json!({"name": "T-shirt", "pointsCost": "20", "unlimitedStock": true})).await;
    let mut tokens = Vec::new();
    for i in 0..4 {
        let (id, token) = plain_user(&server, &admin, &format!("member{i}@example.com")).await;
        adjust(&server, &admin, &id, if i == 0 { 50 } else { 100 }).await;
        tokens.push(token);
    }
    let mut tasks = JoinSet::new();
    for token in
        tokens.iter().skip(1).chain(tokens.iter().skip(1)).chain(tokens.iter().skip(1)).chain(tokens.iter().skip(1))
    {
        let (http, url, token) =
            (server.http.clone(), server.url(&format!("/v1/me/loyalty/catalogItems/{mug}:redeem")), token.clone());
        tasks.spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"requestId": Uuid::new_v4().to_string()}))
                .send()
                .await
                .unwrap();
            ("mug", resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        });
    }
    for _ in 0..10 {
        let (http, url, token) =
            (server.http.clone(), server.url(&format!("/v1/me/loyalty/catalogItems/{tee}:redeem")), tokens[0].clone());
        tasks.spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"requestId": Uuid::new_v4().to_string()}))
                .send()
                .await
                .unwrap();
            ("tee", resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        });
    }
    let mut outcome = std::collections::HashMap::new();
    while let Some(done) = tasks.join_next().await {
        let (what, status, body) = done.unwrap();
        let reason = if status == 200 { "OK".to_string() } else { rest_reason(&body) };
        *outcome.entry((what, reason)).or_insert(0) += 1;
    }
    assert_eq!(outcome.get(&("mug", "OK".to_string())), Some(&5), "{outcome:?}");
    assert_eq!(outcome.get(&("mug", "OUT_OF_STOCK".to_string())), Some(&7), "{outcome:?}");
    assert_eq!(outcome.get(&("tee", "OK".to_string())), Some(&2), "{outcome:?}");
    assert_eq!(outcome.get(&("tee", "INSUFFICIENT_POINTS".to_string())), Some(&8), "{outcome:?}");

    let db = &server.database_url;
    assert_eq!(stock(&server, &mug), "0 5");
    assert_eq!(psql(db, &format!("SELECT sum(quantity) FROM loyalty_orders WHERE catalog_item_id = '{mug}'")), "5");
    assert_eq!(psql(db, "SELECT count(*) FROM loyalty_accounts WHERE balance < 0"), "0");
    assert_eq!(
        psql(db, "SELECT sum(points) FROM loyalty_orders"),
        psql(db, "SELECT -sum(points) FROM loyalty_transactions WHERE kind = 'redemption'")
    );
    assert_eq!(
        psql(
            db,
            "SELECT count(*) FROM loyalty_orders o LEFT JOIN loyalty_transactions t ON t.id = o.debit_transaction_id WHERE t.order_id IS DISTINCT FROM o.id"
        ),
        "0"
    );
    crate::loyalty_ledger::assert_ledger_invariants(db);
    let out = run_mgpass(&["ledger", "verify"], &[("MGPASS_DATABASE__URL", db.as_str())]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
