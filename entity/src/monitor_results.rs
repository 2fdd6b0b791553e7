//! `monitor_results`: one row per probe, at most one per (target, scheduled slot).

use sea_orm::entity::prelude::*;

use chrono::{DateTime, Utc};

use crate::check::{AssertionFailures, Timings, TlsDetails, Verdict};
use crate::event::FirstAttempt;
use crate::{FailureClass, Outcome};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "monitor_results")]
pub struct Model {
    /// `bigint`, taken from the sequence `monitor_results_seq`.
    #[sea_orm(primary_key)]
    pub monitor_results_pk: i64,
    /// Status of the final response; NULL exactly when `failure_class` is set (a CHECK enforces it).
    pub http_status: Option<i32>,
    pub failure_class: Option<FailureClass>,
    pub start_time: DateTimeUtc,
    /// Milliseconds (`int4`, the original design's `duration`).
    pub duration: i32,
    pub urltarget_fk: i32,
    pub scheduled_at: DateTimeUtc,
    pub outcome: Verdict,
    /// The assertions that failed (set when `failure_class` is `assertion`).
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub assertion_failures: Option<AssertionFailures>,
    pub dns_ms: Option<i32>,
    pub connect_ms: Option<i32>,
    pub tls_ms: Option<i32>,
    pub ttfb_ms: Option<i32>,
    pub transfer_ms: Option<i32>,
    pub tls_version: Option<String>,
    pub cert_not_after: Option<DateTime<Utc>>,
    pub cert_issuer: Option<String>,
    pub cert_subject: Option<String>,
    /// For a re-probe (the target's `reprobe`), the first attempt, which was DOWN; the columns
    /// above are the second attempt's.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub first_attempt: Option<FirstAttempt>,
}

impl Model {
    /// The stored outcome; the table's CHECK constraint guarantees exactly one side is set.
    pub fn outcome(&self) -> Outcome {
        match (self.http_status, self.failure_class) {
            (Some(status), _) => Outcome::Status(status),
            (None, Some(class)) => Outcome::Failure(class),
            (None, None) => Outcome::Failure(FailureClass::Other),
        }
    }
}

impl Model {
    pub fn timings(&self) -> Timings {
        Timings {
            dns_ms: self.dns_ms,
            connect_ms: self.connect_ms,
            tls_ms: self.tls_ms,
            ttfb_ms: self.ttfb_ms,
            transfer_ms: self.transfer_ms,
        }
    }

    /// The TLS details, when the probe had a session (an empty issuer or subject — legal in
    /// X.509 — is stored as NULL and read back as empty).
    pub fn tls(&self) -> Option<TlsDetails> {
        Some(TlsDetails {
            tls_version: self.tls_version.clone()?,
            cert_not_after: self.cert_not_after?,
            cert_issuer: self.cert_issuer.clone().unwrap_or_default(),
            cert_subject: self.cert_subject.clone().unwrap_or_default(),
        })
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::urltargets::Entity",
        from = "Column::UrltargetFk",
        to = "super::urltargets::Column::UrltargetsPk",
        on_delete = "Cascade"
    )]
    Urltargets,
}

impl Related<super::urltargets::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Urltargets.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
