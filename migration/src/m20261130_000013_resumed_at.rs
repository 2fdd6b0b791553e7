//! When a paused target was last resumed (#13): the ingest worker's watch for missing results
//! counts from then, so a target resumed after a long pause is not UNKNOWN before its first
//! probe could arrive. (`IF NOT EXISTS`: a development build briefly added the column in
//! migration 12.)

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(
            manager,
            "ALTER TABLE urltargets ADD COLUMN IF NOT EXISTS resumed_at timestamptz",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(
            manager,
            "ALTER TABLE urltargets DROP COLUMN IF EXISTS resumed_at",
        )
        .await
    }
}
