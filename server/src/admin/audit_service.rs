//! The audit log's rules: entries are appended (by the audit layer) and read by administrators,
//! an organization's entries only within that organization. Transport-free.

use uuid::Uuid;

use crate::{
    admin::audit_store::{self as store, AuditFilter, AuditRow},
    auth::Principal,
    db::DbPool,
    error::{Error, Result},
    paging::Page,
};

#[derive(Clone)]
pub struct AuditLog {
    pool: DbPool,
}

fn not_found() -> Error {
    Error::not_found("AUDIT_EVENT_NOT_FOUND", "no such audit entry")
}

impl AuditLog {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }

    /// Appends an entry. A failure is logged, never hidden: the change it describes is done.
    pub async fn append(&self, row: AuditRow) {
        let result = async {
            let mut conn = self.pool.get().await?;
            store::insert(&mut conn, &row).await
        }
        .await;
        match result {
            Ok(()) => tracing::debug!(action = %row.action, audit_event_id = %row.id, "audited"),
            Err(err) => tracing::error!(
                action = %row.action,
                request_id = %row.request_id,
                error = %err,
                "appending to the audit log failed"
            ),
        }
    }

    /// One page of entries. An organization API key reads only its organization's entries.
    pub async fn list(
        &self,
        caller: &Principal,
        mut filter: AuditFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<AuditRow>, String)> {
        if let Some(own) = caller.api_key_organization_id {
            if filter.organization_id.is_some_and(|o| o != own) {
                return Err(Error::not_found(
                    "ORGANIZATION_NOT_FOUND",
                    "no such organization",
                ));
            }
            filter.organization_id = Some(own);
        }
        if let (Some(from), Some(before)) = (filter.created_from, filter.created_before) {
            if from >= before {
                return Err(Error::invalid(
                    "INVALID_ARGUMENT",
                    "create_before",
                    "`create_before` must be after `create_after`",
                ));
            }
        }
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows = store::list(&mut conn, &filter, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    pub async fn get(&self, caller: &Principal, id: &str) -> Result<AuditRow> {
        let id = Uuid::parse_str(id).map_err(|_| {
            Error::invalid(
                "INVALID_ID",
                "audit_event_id",
                format!("`{id}` is not a valid id"),
            )
        })?;
        let mut conn = self.pool.get().await?;
        let row = store::get(&mut conn, id).await?.ok_or_else(not_found)?;
        if caller
            .api_key_organization_id
            .is_some_and(|own| row.organization_id != Some(own))
        {
            return Err(not_found());
        }
        Ok(row)
    }
}
