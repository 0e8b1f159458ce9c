//! The load test of partner events: many tasks sending the same events, duplicates
//! included, award each event exactly once and leave a ledger that `mgpass ledger verify` accepts.

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::loyalty_earning_support::{Loyalty, int, now, purchase};

const TASKS: usize = 50;
const EVENTS_PER_BATCH: usize = 1_000;
/// 30% of each batch repeats events that are already in it.
const DISTINCT: usize = 700;
const POINTS: i64 = 7;

/// 50 tasks each send the same batch of 1,000 events (700 distinct, 300 duplicates spread through
/// the batch), all at once: 700 awards in all, one per distinct event, every answer naming the
/// same event for the same id.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_tasks_sending_the_same_thousand_events_with_duplicates_award_each_once() {
    let l = Loyalty::start().await;
    l.rule(json!({"name": "seven per purchase", "eventType": "purchase", "fixedPoints": POINTS.to_string()})).await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(l.user(&format!("member{i}@example.com")).await);
    }
    let occur = now();
    let batch: Vec<Value> = (0..EVENTS_PER_BATCH)
        .map(|n| {
            // The first 700 positions are new ids; the other 300 repeat some of them.
            let i = if n < DISTINCT { n } else { (n * 7919) % DISTINCT };
            let mut e = purchase(&format!("load-{i}"), &users[i % users.len()], 100);
            e["occurTime"] = json!(occur);
            e
        })
        .collect();
    // Shuffle the duplicates in among the originals, the same way for every task.
    let mut batch = batch;
    for n in (1..batch.len()).rev() {
        batch.swap(n, (n * 104_729) % (n + 1));
    }

    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let (http, url, key) = (l.server.http.clone(), l.server.url("/v1/loyalty/events:batchIngest"), l.key.clone());
        let body = json!({"events": batch});
        tasks.spawn(async move {
            let resp = http.post(url).header("x-api-key", key).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body["results"].as_array().cloned().unwrap_or_default())
        });
    }
    let mut originals = 0;
    let mut ids = std::collections::HashMap::<String, String>::new();
    while let Some(joined) = tasks.join_next().await {
        let (status, results) = joined.unwrap();
        assert_eq!(status, 200);
        assert_eq!(results.len(), EVENTS_PER_BATCH, "one result per event, in order");
        for r in results {
            assert!(r.get("error").is_none_or(Value::is_null), "{r}");
            if r["replayed"] != json!(true) {
                originals += 1;
            }
            let e = &r["event"];
            let id = e["id"].as_str().unwrap().to_string();
            let key = e["partnerEventId"].as_str().unwrap().to_string();
            assert_eq!(ids.entry(key).or_insert_with(|| id.clone()), &id, "every copy answers the same event");
            assert_eq!(int(&e["points"]), POINTS);
        }
    }
    assert_eq!(ids.len(), DISTINCT);
    assert_eq!(originals, DISTINCT, "one original answer per distinct event, whatever the task");
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_events"), DISTINCT.to_string());
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_transactions WHERE kind = 'award'"), DISTINCT.to_string());
    let total: i64 = users.iter().map(|u| l.points_of(u)).sum();
    assert_eq!(total, DISTINCT as i64 * POINTS);
    l.assert_ledger_verified();
}
