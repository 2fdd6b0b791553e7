//! `monitor_results_pk` becomes `bigint`: 50,000 targets probed every minute make 72 million rows
//! a day, and an `int4` key runs out within 30 days. The views depend on the column, so they are
//! dropped and rebuilt around the change.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
ALTER TABLE monitor_results ALTER COLUMN monitor_results_pk TYPE bigint;
ALTER SEQUENCE monitor_results_seq AS bigint;
";

// Fails, and changes nothing, once ids beyond the int4 range exist.
const DOWN: &str = "
ALTER SEQUENCE monitor_results_seq AS integer;
ALTER TABLE monitor_results ALTER COLUMN monitor_results_pk TYPE integer;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run_around_views(
            manager,
            UP,
            Some(crate::m20261126_000003_scheduled_slot::VIEW_COLUMNS),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run_around_views(
            manager,
            DOWN,
            Some(crate::m20261126_000003_scheduled_slot::VIEW_COLUMNS),
        )
        .await
    }
}
