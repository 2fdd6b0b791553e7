//! Targets get `created_at` and a `paused` flag, the same URL cannot be registered twice at the
//! same frequency, and removing a target removes its results.

use sea_orm_migration::prelude::*;

use crate::sql;

const UP: &str = "
ALTER TABLE urltargets ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE urltargets ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE urltargets ADD CONSTRAINT urltargets_url_frequency_key
    UNIQUE (urltarget, monitor_frequency);
ALTER TABLE monitor_results DROP CONSTRAINT monitor_results_urltarget_fk_fkey;
ALTER TABLE monitor_results ADD CONSTRAINT monitor_results_urltarget_fk_fkey
    FOREIGN KEY (urltarget_fk) REFERENCES urltargets (urltargets_pk) ON DELETE CASCADE;
";

const DOWN: &str = "
ALTER TABLE monitor_results DROP CONSTRAINT monitor_results_urltarget_fk_fkey;
ALTER TABLE monitor_results ADD CONSTRAINT monitor_results_urltarget_fk_fkey
    FOREIGN KEY (urltarget_fk) REFERENCES urltargets (urltargets_pk);
ALTER TABLE urltargets DROP CONSTRAINT urltargets_url_frequency_key;
ALTER TABLE urltargets DROP COLUMN paused;
ALTER TABLE urltargets DROP COLUMN created_at;
";

sql::sql_migration!();
