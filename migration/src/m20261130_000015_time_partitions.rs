//! `monitor_results` partitioned by `scheduled_at`, so that old results go by dropping whole
//! partitions (instant, no dead rows, no vacuum) instead of by row-by-row `DELETE`.
//!
//! The table keeps its name, its columns, its sequence, its checks, its triggers and the six
//! views; its primary key grows to (id, slot), as PostgreSQL requires a partitioned table's keys
//! to include the partition key. The unique (target, slot) key already does.
//!
//! Partitions live in the schema `pingpipe_partitions` (out of the way of `\dt` and of the
//! schema the API reads) and are listed in `result_partitions` with their range. They are made
//! by `monitor_results_cover(at, step)`, which returns the partition holding `at`, creating it
//! first when there is none: the range of length `step` (aligned to UTC midnight, 2000-01-01)
//! around `at`, shortened where it would overlap an existing partition — so a later change of
//! the step never collides with earlier partitions. Creators serialise on an advisory lock. The
//! ingest worker creates partitions ahead of time and on demand (a result for a slot no
//! partition covers is never refused for it), and drops expired ones with
//! `monitor_results_drop_partition(name)`, which records in `result_retention` where raw results
//! end.
//!
//! Why not pg_partman: it is an extension (a superuser installs it, and managed PostgreSQL
//! services offer different versions or none), it files rows outside its premade partitions in
//! a default partition that must be emptied by hand before a partition for them can be made,
//! and what is needed here — make a partition when missing, drop the expired — is two short
//! functions.
//!
//! The migration copies the existing rows into daily partitions (a rewrite of the table; on a
//! large history plan for it), and `down` copies them back into a plain table.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The advisory lock key partition creators and droppers take ("pingpipe" "part").
pub const PARTITION_LOCK: i64 = 0x7069_6e67_7061_7274;

const UP: &str = "
CREATE SCHEMA pingpipe_partitions;

CREATE TABLE result_partitions (
    name text PRIMARY KEY,
    from_at timestamptz NOT NULL,
    until_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT result_partitions_range_check CHECK (until_at > from_at)
);

-- Where retention has dropped results: every slot before this lost its raw results (rollups
-- keep them), so nothing may be rebuilt from raw rows there.
CREATE TABLE result_retention (
    only_row boolean PRIMARY KEY DEFAULT true CONSTRAINT result_retention_one_row CHECK (only_row),
    dropped_before timestamptz NOT NULL
);

ALTER SEQUENCE monitor_results_seq OWNED BY NONE;
ALTER TABLE monitor_results RENAME TO monitor_results_unpartitioned;
ALTER INDEX monitor_results_pkey RENAME TO monitor_results_unpartitioned_pkey;
ALTER INDEX monitor_results_target_slot_key RENAME TO monitor_results_unpartitioned_target_slot_key;
ALTER INDEX monitor_results_time_idx RENAME TO monitor_results_unpartitioned_time_idx;

CREATE TABLE monitor_results (
    LIKE monitor_results_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
) PARTITION BY RANGE (scheduled_at);
ALTER TABLE monitor_results
    ADD CONSTRAINT monitor_results_pkey PRIMARY KEY (monitor_results_pk, scheduled_at),
    ADD CONSTRAINT monitor_results_target_slot_key UNIQUE (urltarget_fk, scheduled_at);
CREATE INDEX monitor_results_time_idx
    ON monitor_results (scheduled_at DESC, monitor_results_pk DESC);
ALTER SEQUENCE monitor_results_seq OWNED BY monitor_results.monitor_results_pk;

CREATE FUNCTION monitor_results_cover(at timestamptz, step interval) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    found_name text;
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF step < interval '1 hour' OR step > interval '366 days' THEN
        RAISE EXCEPTION 'a partition covers 1 hour to 366 days, not %', step
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT name INTO found_name FROM result_partitions WHERE from_at <= at AND at < until_at;
    IF found_name IS NOT NULL THEN
        RETURN found_name;
    END IF;
    PERFORM pg_advisory_xact_lock(8100126795348669044);
    SELECT name INTO found_name FROM result_partitions WHERE from_at <= at AND at < until_at;
    IF found_name IS NOT NULL THEN
        RETURN found_name;
    END IF;
    lo := date_bin(step, at, timestamptz '2000-01-01 00:00:00+00');
    hi := lo + step;
    SELECT greatest(lo, max(until_at)) INTO lo FROM result_partitions WHERE until_at <= at;
    SELECT least(hi, min(from_at)) INTO hi FROM result_partitions WHERE from_at > at;
    found_name := 'monitor_results_' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD\"t\"HH24MISS');
    EXECUTE format(
        'CREATE TABLE pingpipe_partitions.%I PARTITION OF public.monitor_results FOR VALUES FROM (%L) TO (%L)',
        found_name, lo, hi);
    INSERT INTO result_partitions (name, from_at, until_at) VALUES (found_name, lo, hi);
    RETURN found_name;
END $$;

CREATE FUNCTION monitor_results_drop_partition(partition_name text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    dropped_until timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(8100126795348669044);
    DELETE FROM result_partitions WHERE name = partition_name RETURNING until_at INTO dropped_until;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO result_retention (dropped_before) VALUES (dropped_until)
        ON CONFLICT (only_row) DO UPDATE
        SET dropped_before = greatest(result_retention.dropped_before, EXCLUDED.dropped_before);
    EXECUTE format('DROP TABLE IF EXISTS pingpipe_partitions.%I', partition_name);
    RETURN true;
END $$;

SELECT monitor_results_cover(slot, interval '1 day')
  FROM (SELECT DISTINCT date_bin(interval '1 day', scheduled_at, timestamptz '2000-01-01 00:00:00+00') AS slot
          FROM monitor_results_unpartitioned
        UNION SELECT now()) slots
 ORDER BY slot;
INSERT INTO monitor_results SELECT * FROM monitor_results_unpartitioned;
DROP TABLE monitor_results_unpartitioned;

CREATE TRIGGER monitor_results_target_exists_on_insert
    AFTER INSERT ON monitor_results REFERENCING NEW TABLE AS new_results
    FOR EACH STATEMENT EXECUTE FUNCTION monitor_results_target_exists();
CREATE TRIGGER monitor_results_target_exists_on_update
    AFTER UPDATE ON monitor_results REFERENCING NEW TABLE AS new_results
    FOR EACH STATEMENT EXECUTE FUNCTION monitor_results_target_exists();
";

const DOWN: &str = "
ALTER SEQUENCE monitor_results_seq OWNED BY NONE;
ALTER TABLE monitor_results RENAME TO monitor_results_partitioned;
ALTER INDEX monitor_results_pkey RENAME TO monitor_results_partitioned_pkey;
ALTER INDEX monitor_results_target_slot_key RENAME TO monitor_results_partitioned_target_slot_key;
ALTER INDEX monitor_results_time_idx RENAME TO monitor_results_partitioned_time_idx;

CREATE TABLE monitor_results (
    LIKE monitor_results_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
);
ALTER TABLE monitor_results
    ADD CONSTRAINT monitor_results_pkey PRIMARY KEY (monitor_results_pk),
    ADD CONSTRAINT monitor_results_target_slot_key UNIQUE (urltarget_fk, scheduled_at);
CREATE INDEX monitor_results_time_idx
    ON monitor_results (scheduled_at DESC, monitor_results_pk DESC);
INSERT INTO monitor_results SELECT * FROM monitor_results_partitioned;
DROP TABLE monitor_results_partitioned;
ALTER SEQUENCE monitor_results_seq OWNED BY monitor_results.monitor_results_pk;

CREATE TRIGGER monitor_results_target_exists_on_insert
    AFTER INSERT ON monitor_results REFERENCING NEW TABLE AS new_results
    FOR EACH STATEMENT EXECUTE FUNCTION monitor_results_target_exists();
CREATE TRIGGER monitor_results_target_exists_on_update
    AFTER UPDATE ON monitor_results REFERENCING NEW TABLE AS new_results
    FOR EACH STATEMENT EXECUTE FUNCTION monitor_results_target_exists();

DROP FUNCTION monitor_results_drop_partition(text);
DROP FUNCTION monitor_results_cover(timestamptz, interval);
DROP TABLE result_partitions;
DROP TABLE result_retention;
DROP SCHEMA pingpipe_partitions;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run_around_views(
            manager,
            UP,
            Some(crate::m20261130_000011_reprobe::VIEW_COLUMNS),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run_around_views(
            manager,
            DOWN,
            Some(crate::m20261130_000011_reprobe::VIEW_COLUMNS),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lock_key_in_the_sql_is_the_constant() {
        assert!(super::UP.contains(&super::PARTITION_LOCK.to_string()));
    }
}
