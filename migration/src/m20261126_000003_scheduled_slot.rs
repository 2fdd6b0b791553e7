//! Every result belongs to a scheduled slot (`scheduled_at`), and a (target, slot) pair holds at
//! most one row: the last safety net against a result stored twice. The views carry the slot and
//! the target id, which the API filters and pages on.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const VIEW_COLUMNS: &str = "r.monitor_results_pk, t.urltarget, r.http_status, \
     r.start_time, r.duration, r.failure_class, r.scheduled_at, r.urltarget_fk";

// Rows from before slots existed take their start time as their slot.
const UP: &str = "
ALTER TABLE monitor_results ADD COLUMN scheduled_at timestamptz;
UPDATE monitor_results SET scheduled_at = start_time;
ALTER TABLE monitor_results ALTER COLUMN scheduled_at SET NOT NULL;
ALTER TABLE monitor_results ADD CONSTRAINT monitor_results_target_slot_key
    UNIQUE (urltarget_fk, scheduled_at);
";

const DOWN: &str = "
ALTER TABLE monitor_results DROP CONSTRAINT monitor_results_target_slot_key;
ALTER TABLE monitor_results DROP COLUMN scheduled_at;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run_around_views(manager, UP, Some(VIEW_COLUMNS)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run_around_views(
            manager,
            DOWN,
            Some(crate::m20261126_000002_failure_class::VIEW_COLUMNS),
        )
        .await
    }
}
