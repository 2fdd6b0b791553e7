//! The database schema, one migration per change. A migration that has landed is never edited;
//! a change is a new migration, and every `down` undoes its `up`.
//!
//! The first migration is the original design's schema with its names; the later ones add what
//! a real monitor needs. Each runs in a transaction (PostgreSQL has transactional DDL).

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_original_schema;
mod m20261126_000002_failure_class;
mod m20261126_000003_scheduled_slot;
mod m20261126_000004_bigint_result_ids;
mod m20261126_000005_target_lifecycle;
mod m20261126_000006_read_indexes;
mod m20261126_000007_ingest_bookkeeping;
mod m20261126_000008_set_based_target_check;
mod m20261130_000009_checks;
mod m20261130_000010_states;
mod m20261130_000011_reprobe;
mod m20261130_000012_tags_windows;
mod m20261130_000013_resumed_at;
mod m20261130_000014_notifications;
pub mod m20261130_000015_time_partitions;
mod m20261130_000016_rollups;
mod m20261130_000017_list_order;
mod m20261130_000018_status_pages;
mod m20261130_000019_checked_targets;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

/// Applies and reverts Pingpipe's migrations, recorded in `seaql_migrations`.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_original_schema::Migration),
            Box::new(m20261126_000002_failure_class::Migration),
            Box::new(m20261126_000003_scheduled_slot::Migration),
            Box::new(m20261126_000004_bigint_result_ids::Migration),
            Box::new(m20261126_000005_target_lifecycle::Migration),
            Box::new(m20261126_000006_read_indexes::Migration),
            Box::new(m20261126_000007_ingest_bookkeeping::Migration),
            Box::new(m20261126_000008_set_based_target_check::Migration),
            Box::new(m20261130_000009_checks::Migration),
            Box::new(m20261130_000010_states::Migration),
            Box::new(m20261130_000011_reprobe::Migration),
            Box::new(m20261130_000012_tags_windows::Migration),
            Box::new(m20261130_000013_resumed_at::Migration),
            Box::new(m20261130_000014_notifications::Migration),
            Box::new(m20261130_000015_time_partitions::Migration),
            Box::new(m20261130_000016_rollups::Migration),
            Box::new(m20261130_000017_list_order::Migration),
            Box::new(m20261130_000018_status_pages::Migration),
            Box::new(m20261130_000019_checked_targets::Migration),
        ]
    }
}
