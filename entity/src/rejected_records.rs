//! `rejected_records`: Kafka records the ingest worker could not store, parked with their raw
//! bytes and the reason, where a person can look at them. At most one row per record.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rejected_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub rejected_records_pk: i64,
    pub topic: String,
    pub partition: i32,
    /// The record's offset in its partition.
    pub kafka_offset: i64,
    pub record_key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// Why it was rejected, for a person.
    pub reason: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
