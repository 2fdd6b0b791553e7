//! The original design's schema, names and all: two sequences, two tables, six views.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns the original views carried.
pub(crate) const VIEW_COLUMNS: &str =
    "r.monitor_results_pk, t.urltarget, r.http_status, r.start_time, r.duration";

const UP: &str = "
CREATE SEQUENCE urltargets_seq;
CREATE SEQUENCE monitor_results_seq;

CREATE TABLE urltargets (
    urltargets_pk int PRIMARY KEY DEFAULT nextval('urltargets_seq'),
    urltarget varchar(1024) NOT NULL,
    monitor_frequency int NOT NULL CHECK (monitor_frequency IN (1, 2, 5, 10, 20, 30))
);
ALTER SEQUENCE urltargets_seq OWNED BY urltargets.urltargets_pk;

CREATE TABLE monitor_results (
    monitor_results_pk int PRIMARY KEY DEFAULT nextval('monitor_results_seq'),
    http_status int NOT NULL,
    start_time timestamptz NOT NULL,
    duration int4 NOT NULL,
    urltarget_fk int NOT NULL,
    CONSTRAINT monitor_results_urltarget_fk_fkey
        FOREIGN KEY (urltarget_fk) REFERENCES urltargets (urltargets_pk)
);
ALTER SEQUENCE monitor_results_seq OWNED BY monitor_results.monitor_results_pk;
";

const DOWN: &str = "
DROP TABLE monitor_results;
DROP TABLE urltargets;
DROP SEQUENCE IF EXISTS monitor_results_seq;
DROP SEQUENCE IF EXISTS urltargets_seq;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run_around_views(manager, UP, Some(VIEW_COLUMNS)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run_around_views(manager, DOWN, None).await
    }
}
