//! Indexes for the API's reads, which page newest first on (slot, id). The results of one target
//! by time are served by the unique (urltarget_fk, scheduled_at) key already; all results by
//! time need one more index. Every index costs each inserted row, so there is no other.

use sea_orm_migration::prelude::*;

use crate::sql;

const UP: &str = "
CREATE INDEX monitor_results_time_idx
    ON monitor_results (scheduled_at DESC, monitor_results_pk DESC);
";

const DOWN: &str = "
DROP INDEX monitor_results_time_idx;
";

sql::sql_migration!();
