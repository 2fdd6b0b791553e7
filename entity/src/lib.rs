//! Pingpipe's shared vocabulary, used by the API and both workers: the database tables as SeaORM
//! entities, the [`Frequency`] and [`FailureClass`] types, the [`ResultEvent`] that travels on
//! Kafka, the topic names, and maintenance windows with the tags that select their targets.
//! Nothing here does I/O.

pub mod assertion;
pub mod channels;
pub mod check;
pub mod config;
pub mod event;
pub mod failure;
pub mod frequency;
pub mod maintenance;
pub mod notify;
pub mod state;
pub mod topics;

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "testing")]
pub mod testing;

pub mod consumer_positions;
pub mod monitor_results;
pub mod rejected_records;
pub mod rollup;
pub mod urltargets;

pub use check::{Method, Timings, TlsDetails, Verdict};
pub use event::{
    EventError, Outcome, RESULT_EVENT_SCHEMA_VERSION, ResultEvent, UP_STATUSES, is_up,
};
pub use failure::FailureClass;
pub use frequency::{Frequency, FrequencyError};
