//! `urltargets`: the URLs being watched, one row per (URL, frequency).

use sea_orm::entity::prelude::*;

use crate::Frequency;

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
