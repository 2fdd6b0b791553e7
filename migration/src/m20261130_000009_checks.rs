//! Checks the user defines (#12): per target, assertions, a degraded threshold, the request to
//! make (method, headers, body) and how to trust TLS; per result, an outcome (up, degraded,
//! down), the assertions that failed, the time of each phase and the server's certificate.
//!
//! Results stored before this migration get the outcome they had: up for a 2xx/3xx status, down
//! otherwise. The column is added with a default (no table rewrite) and only the down rows are
//! updated, so the migration costs the failures, not the history.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const VIEW_COLUMNS: &str = "r.monitor_results_pk, t.urltarget, r.http_status, \
     r.start_time, r.duration, r.failure_class, r.scheduled_at, r.urltarget_fk, r.outcome, \
     r.assertion_failures, r.dns_ms, r.connect_ms, r.tls_ms, r.ttfb_ms, r.transfer_ms, \
     r.tls_version, r.cert_not_after, r.cert_issuer, r.cert_subject";

const UP: &str = "
ALTER TABLE urltargets
    ADD COLUMN assertions jsonb NOT NULL DEFAULT '[]'
        CONSTRAINT urltargets_assertions_check CHECK (jsonb_typeof(assertions) = 'array'),
    ADD COLUMN degraded_after_ms integer
        CONSTRAINT urltargets_degraded_after_ms_check CHECK (degraded_after_ms > 0),
    ADD COLUMN method text NOT NULL DEFAULT 'GET'
        CONSTRAINT urltargets_method_check CHECK (method IN ('GET', 'HEAD', 'POST')),
    ADD COLUMN request_headers jsonb NOT NULL DEFAULT '[]'
        CONSTRAINT urltargets_request_headers_check CHECK (jsonb_typeof(request_headers) = 'array'),
    ADD COLUMN request_body text,
    ADD COLUMN tls_verify boolean NOT NULL DEFAULT true,
    ADD COLUMN ca_bundle text;

ALTER TABLE monitor_results
    DROP CONSTRAINT monitor_results_failure_class_check,
    DROP CONSTRAINT monitor_results_outcome_check,
    ADD COLUMN outcome text NOT NULL DEFAULT 'up',
    ADD COLUMN assertion_failures jsonb,
    ADD COLUMN dns_ms integer,
    ADD COLUMN connect_ms integer,
    ADD COLUMN tls_ms integer,
    ADD COLUMN ttfb_ms integer,
    ADD COLUMN transfer_ms integer,
    ADD COLUMN tls_version text,
    ADD COLUMN cert_not_after timestamptz,
    ADD COLUMN cert_issuer text,
    ADD COLUMN cert_subject text;

UPDATE monitor_results SET outcome = 'down'
 WHERE http_status IS NULL OR http_status NOT BETWEEN 200 AND 399;

ALTER TABLE monitor_results
    ALTER COLUMN outcome DROP DEFAULT,
    ADD CONSTRAINT monitor_results_failure_class_check
        CHECK (failure_class IN ('dns', 'connect', 'tls', 'timeout', 'redirect_limit', 'denied',
                                 'body', 'assertion', 'other')),
    -- A response, or a failure without one; a failed assertion is a failure with its response.
    ADD CONSTRAINT monitor_results_outcome_check
        CHECK (CASE WHEN failure_class = 'assertion' THEN http_status IS NOT NULL
                    ELSE (http_status IS NULL) <> (failure_class IS NULL) END),
    ADD CONSTRAINT monitor_results_verdict_check
        CHECK (outcome IN ('up', 'degraded', 'down')
               AND (failure_class IS NULL OR outcome = 'down')),
    ADD CONSTRAINT monitor_results_assertion_failures_check
        CHECK (jsonb_typeof(assertion_failures) = 'array'),
    ADD CONSTRAINT monitor_results_timings_check
        CHECK (dns_ms >= 0 AND connect_ms >= 0 AND tls_ms >= 0 AND ttfb_ms >= 0
               AND transfer_ms >= 0);
";

// The older schema knows no assertion failures: those results keep their status and lose the
// class (as they would have been stored then).
const DOWN: &str = "
ALTER TABLE monitor_results
    DROP CONSTRAINT monitor_results_timings_check,
    DROP CONSTRAINT monitor_results_assertion_failures_check,
    DROP CONSTRAINT monitor_results_verdict_check,
    DROP CONSTRAINT monitor_results_outcome_check,
    DROP CONSTRAINT monitor_results_failure_class_check;
UPDATE monitor_results SET failure_class = NULL WHERE failure_class = 'assertion';
ALTER TABLE monitor_results
    DROP COLUMN cert_subject,
    DROP COLUMN cert_issuer,
    DROP COLUMN cert_not_after,
    DROP COLUMN tls_version,
    DROP COLUMN transfer_ms,
    DROP COLUMN ttfb_ms,
    DROP COLUMN tls_ms,
    DROP COLUMN connect_ms,
    DROP COLUMN dns_ms,
    DROP COLUMN assertion_failures,
    DROP COLUMN outcome,
    ADD CONSTRAINT monitor_results_failure_class_check
        CHECK (failure_class IN ('dns', 'connect', 'tls', 'timeout', 'redirect_limit', 'denied', 'body', 'other')),
    ADD CONSTRAINT monitor_results_outcome_check
        CHECK ((http_status IS NULL) <> (failure_class IS NULL));
ALTER TABLE urltargets
    DROP COLUMN ca_bundle,
    DROP COLUMN tls_verify,
    DROP COLUMN request_body,
    DROP COLUMN request_headers,
    DROP COLUMN method,
    DROP COLUMN degraded_after_ms,
    DROP COLUMN assertions;
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
            Some(crate::m20261126_000003_scheduled_slot::VIEW_COLUMNS),
        )
        .await
    }
}
