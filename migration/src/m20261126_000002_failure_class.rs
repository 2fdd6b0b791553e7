//! A probe that got no HTTP response is still a result: `http_status` becomes nullable and
//! `failure_class` says why; a CHECK keeps exactly one of the two set. The views carry it.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const VIEW_COLUMNS: &str =
    "r.monitor_results_pk, t.urltarget, r.http_status, r.start_time, r.duration, r.failure_class";

const UP: &str = "
ALTER TABLE monitor_results ALTER COLUMN http_status DROP NOT NULL;
ALTER TABLE monitor_results ADD COLUMN failure_class text;
ALTER TABLE monitor_results ADD CONSTRAINT monitor_results_failure_class_check
    CHECK (failure_class IN ('dns', 'connect', 'tls', 'timeout', 'redirect_limit', 'denied', 'body', 'other'));
ALTER TABLE monitor_results ADD CONSTRAINT monitor_results_outcome_check
    CHECK ((http_status IS NULL) <> (failure_class IS NULL));
";

// The older schema cannot hold a result without a status, so those rows go with the column.
const DOWN: &str = "
DELETE FROM monitor_results WHERE http_status IS NULL;
ALTER TABLE monitor_results DROP CONSTRAINT monitor_results_outcome_check;
ALTER TABLE monitor_results DROP CONSTRAINT monitor_results_failure_class_check;
ALTER TABLE monitor_results DROP COLUMN failure_class;
ALTER TABLE monitor_results ALTER COLUMN http_status SET NOT NULL;
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
            Some(crate::m20261126_000001_original_schema::VIEW_COLUMNS),
        )
        .await
    }
}
