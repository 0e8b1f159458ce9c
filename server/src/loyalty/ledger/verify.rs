//! `mgpass ledger verify`: checks every invariant of the ledger straight from the tables and
//! names each breach. Read-only.

use diesel::{QueryableByName, sql_types::Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::Result;

/// One broken invariant, with the rows that break it.
#[derive(Debug, Clone)]
pub struct Breach {
    pub invariant: &'static str,
    pub detail: String,
}

#[derive(QueryableByName)]
struct Detail {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// At most this many rows are reported per invariant.
const SHOWN: i64 = 50;

/// Each invariant: its name and the query listing the rows that break it.
const CHECKS: [(&str, &str); 8] = [
    (
        "transaction entries sum to zero",
        "SELECT 'transaction ' || transaction_id || ' sums to ' || sum(points) AS detail \
         FROM loyalty_entries GROUP BY transaction_id HAVING sum(points) <> 0",
    ),
    (
        "every transaction has entries",
        "SELECT 'transaction ' || t.id || ' has no entries' AS detail FROM loyalty_transactions t \
         WHERE NOT EXISTS (SELECT 1 FROM loyalty_entries e WHERE e.transaction_id = t.id)",
    ),
    (
        "balance equals the sum of entries",
        "SELECT a.account_type || ' account ' || a.id || ' of ' || a.owner_id || ': balance ' || a.balance \
                || ', entries ' || coalesce(s.total, 0) AS detail \
         FROM loyalty_accounts a LEFT JOIN (SELECT account_id, sum(points) AS total FROM loyalty_entries GROUP BY 1) s \
           ON s.account_id = a.id \
         WHERE a.balance IS NOT NULL AND a.balance <> coalesce(s.total, 0)",
    ),
    (
        "no negative balance",
        "SELECT a.account_type || ' account ' || a.id || ' of ' || a.owner_id || ' is at ' \
                || coalesce(a.balance, s.total) AS detail \
         FROM loyalty_accounts a JOIN (SELECT account_id, sum(points) AS total FROM loyalty_entries GROUP BY 1) s \
           ON s.account_id = a.id \
         WHERE a.account_type IN ('user', 'user_hold') AND (a.balance < 0 OR s.total < 0)",
    ),
    (
        "lots add up to the balance",
        "SELECT 'user ' || a.owner_id || ': balance ' || a.balance || ', lots ' || coalesce(l.total, 0) AS detail \
         FROM loyalty_accounts a LEFT JOIN (SELECT user_id, sum(remaining_points) AS total FROM loyalty_lots GROUP BY 1) l \
           ON l.user_id = a.owner_id \
         WHERE a.account_type = 'user' AND a.balance <> coalesce(l.total, 0)",
    ),
    (
        "transaction points equal the user's entries",
        "SELECT 'transaction ' || t.id || ' says ' || t.points || ', user entries ' || coalesce(s.total, 0) AS detail \
         FROM loyalty_transactions t LEFT JOIN ( \
             SELECT e.transaction_id, a.owner_id, sum(e.points) AS total FROM loyalty_entries e \
             JOIN loyalty_accounts a ON a.id = e.account_id AND a.account_type = 'user' GROUP BY 1, 2) s \
           ON s.transaction_id = t.id AND s.owner_id = t.user_id \
         WHERE t.points <> coalesce(s.total, 0)",
    ),
    (
        "every award names its event",
        "SELECT 'award ' || id || ' has no event' AS detail FROM loyalty_transactions \
         WHERE kind = 'award' AND event_id IS NULL",
    ),
    (
        "every award names its rule version",
        "SELECT 'award ' || t.id || ' credits points without a rule version' AS detail FROM loyalty_transactions t \
         WHERE t.kind = 'award' AND EXISTS ( \
             SELECT 1 FROM loyalty_entries e JOIN loyalty_accounts a ON a.id = e.account_id \
             WHERE e.transaction_id = t.id AND a.account_type = 'user' AND e.points > 0 \
               AND (e.rule_id IS NULL OR e.rule_version IS NULL))",
    ),
];

/// Every breach of every invariant (empty: the ledger is sound).
pub async fn verify(conn: &mut AsyncPgConnection) -> Result<Vec<Breach>> {
    let mut breaches = Vec::new();
    for (invariant, query) in CHECKS {
        let rows: Vec<Detail> =
            diesel::sql_query(format!("SELECT detail FROM ({query}) breaches LIMIT {SHOWN}")).load(conn).await?;
        breaches.extend(rows.into_iter().map(|r| Breach { invariant, detail: r.detail }));
    }
    Ok(breaches)
}
