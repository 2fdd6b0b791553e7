//! `urltargets`: the URLs being watched, one row per (URL, frequency).

use sea_orm::entity::prelude::*;

use crate::Frequency;
use crate::check::{Assertions, Method, RequestHeaders};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "urltargets")]
pub struct Model {
    /// Taken from the sequence `urltargets_seq`.
    #[sea_orm(primary_key)]
    pub urltargets_pk: i32,
    /// `varchar(1024)`; the API validates it before it gets here.
    pub urltarget: String,
    pub monitor_frequency: Frequency,
    pub created_at: DateTimeUtc,
    /// A paused target is kept, with its results, but not probed.
    pub paused: bool,
    /// What "up" means (`[]`: a status in 200..=399).
    #[sea_orm(column_type = "JsonBinary")]
    pub assertions: Assertions,
    /// A passing response slower than this is degraded.
    pub degraded_after_ms: Option<i32>,
    pub method: Method,
    /// Secret values: never returned by the API, never logged, never on Kafka.
    #[sea_orm(column_type = "JsonBinary")]
    pub request_headers: RequestHeaders,
    pub request_body: Option<String>,
    /// Verify the server's certificate (against `ca_bundle` when set, the system's roots
    /// otherwise).
    pub tls_verify: bool,
    /// PEM certificates to trust instead of the system's roots.
    pub ca_bundle: Option<String>,
    /// A DOWN probe is tried once more, a short delay later within the same slot.
    pub reprobe: bool,
    /// Consecutive failing results before DOWN (NULL: the configured default).
    pub failures_before_down: Option<i32>,
    /// Consecutive passing results before UP again (NULL: the configured default).
    pub successes_before_up: Option<i32>,
    /// `key` or `key:value` labels (see `maintenance::validate_tag`), sorted, at most 32.
    #[sea_orm(column_type = "JsonBinary")]
    pub tags: crate::maintenance::Tags,
    /// When it was last resumed (the watch for missing results counts from then).
    pub resumed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::monitor_results::Entity")]
    MonitorResults,
}

impl Related<super::monitor_results::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MonitorResults.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
