//! Indexes for the API's reads, matching its keyset order (time, id), newest first: the results
//! of one target by time, and all results by time.

use sea_orm_migration::prelude::*;

use crate::sql;

const UP: &str = "
CREATE INDEX monitor_results_target_time_idx
    ON monitor_results (urltarget_fk, start_time DESC, monitor_results_pk DESC);
CREATE INDEX monitor_results_time_idx
    ON monitor_results (start_time DESC, monitor_results_pk DESC);
";

const DOWN: &str = "
DROP INDEX monitor_results_time_idx;
DROP INDEX monitor_results_target_time_idx;
";

sql::sql_migration!();
