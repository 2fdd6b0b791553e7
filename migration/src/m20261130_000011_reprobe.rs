//! Optional re-probe (#13): a target with `reprobe` is probed once more, a short delay later and
//! within the same slot, when its probe is DOWN; the result stored is the second attempt, and
//! `first_attempt` summarises the first (outcome, failure class, status, duration, start). NULL
//! for every result that is not a re-probe. The six views carry it too.
//!
//! Both columns are added with a constant default (or none), so no table is rewritten.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const VIEW_COLUMNS: &str = "r.monitor_results_pk, t.urltarget, r.http_status, \
     r.start_time, r.duration, r.failure_class, r.scheduled_at, r.urltarget_fk, r.outcome, \
     r.assertion_failures, r.dns_ms, r.connect_ms, r.tls_ms, r.ttfb_ms, r.transfer_ms, \
     r.tls_version, r.cert_not_after, r.cert_issuer, r.cert_subject, r.first_attempt";

const UP: &str = "
ALTER TABLE urltargets
    ADD COLUMN reprobe boolean NOT NULL DEFAULT false;

ALTER TABLE monitor_results
    ADD COLUMN first_attempt jsonb
        CONSTRAINT monitor_results_first_attempt_check
        CHECK (jsonb_typeof(first_attempt) = 'object');
";

// The older schema keeps no first attempt: a re-probed result stays as its second attempt.
const DOWN: &str = "
ALTER TABLE monitor_results
    DROP COLUMN first_attempt;
ALTER TABLE urltargets
    DROP COLUMN reprobe;
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
            Some(crate::m20261130_000009_checks::VIEW_COLUMNS),
        )
        .await
    }
}
