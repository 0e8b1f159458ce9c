//! SQL for organization feature flags. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{db::schema::org_feature_flags, error::Result};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = org_feature_flags, treat_none_as_null = true)]
pub struct FlagRow {
    pub organization_id: Uuid,
    pub name: String,
    pub bool_value: Option<bool>,
    pub string_value: Option<String>,
    pub include_in_token: bool,
    pub updated_at: DateTime<Utc>,
}

/// Creates or replaces the flag.
pub async fn upsert(conn: &mut AsyncPgConnection, row: FlagRow) -> Result<FlagRow> {
    Ok(diesel::insert_into(org_feature_flags::table)
        .values(row.clone())
        .on_conflict((org_feature_flags::organization_id, org_feature_flags::name))
        .do_update()
        .set(row)
        .returning(FlagRow::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn delete(conn: &mut AsyncPgConnection, org: Uuid, name: &str) -> Result<bool> {
    Ok(diesel::delete(org_feature_flags::table.find((org, name)))
        .execute(conn)
        .await?
        == 1)
}

/// Every flag of an organization, by name.
pub async fn all(conn: &mut AsyncPgConnection, org: Uuid) -> Result<Vec<FlagRow>> {
    Ok(org_feature_flags::table
        .filter(org_feature_flags::organization_id.eq(org))
        .order(org_feature_flags::name.asc())
        .select(FlagRow::as_select())
        .load(conn)
        .await?)
}
