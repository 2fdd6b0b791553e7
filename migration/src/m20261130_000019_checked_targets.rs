//! The results' target check (migration 8) skipped for a transaction that has locked the
//! targets itself. The ingest worker reads and locks (`FOR KEY SHARE`) every target of a batch
//! before its insert, inserts only the rows whose target it locked, and says so by setting
//! `pingpipe.targets_locked` to its transaction's id (`pg_current_xact_id()`, local to the
//! transaction); the trigger then has nothing left to check, and locking the same 5,000 targets
//! a second time was an eighth of PostgreSQL's work on a batch (measured with `make
//! bench-ingest`). Every other writer — and any later transaction, whatever a session has set —
//! is checked as before.

use sea_orm_migration::prelude::*;

use crate::sql;

const UP: &str = "
CREATE OR REPLACE FUNCTION monitor_results_target_exists() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    locked bigint;
    missing integer;
BEGIN
    -- Set by a writer that has locked every target it names, to its own transaction's id: a
    -- value left in a session (SET, ALTER ROLE … SET) names no other transaction.
    IF current_setting('pingpipe.targets_locked', true) = pg_current_xact_id()::text THEN
        RETURN NULL;
    END IF;
    SELECT count(DISTINCT urltarget_fk) INTO wanted FROM new_results;
    SELECT count(*) INTO locked FROM (
        SELECT 1 FROM urltargets
         WHERE urltargets_pk IN (SELECT urltarget_fk FROM new_results)
           FOR KEY SHARE
    ) l;
    IF locked < wanted THEN
        SELECT r.urltarget_fk INTO missing FROM new_results r
         WHERE NOT EXISTS (SELECT 1 FROM urltargets t WHERE t.urltargets_pk = r.urltarget_fk)
         LIMIT 1;
        RAISE EXCEPTION 'insert or update on table \"monitor_results\" names target %, which does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'monitor_results',
                  CONSTRAINT = 'monitor_results_target_exists';
    END IF;
    RETURN NULL;
END $$;
";

const DOWN: &str = "
CREATE OR REPLACE FUNCTION monitor_results_target_exists() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    locked bigint;
    missing integer;
BEGIN
    SELECT count(DISTINCT urltarget_fk) INTO wanted FROM new_results;
    SELECT count(*) INTO locked FROM (
        SELECT 1 FROM urltargets
         WHERE urltargets_pk IN (SELECT urltarget_fk FROM new_results)
           FOR KEY SHARE
    ) l;
    IF locked < wanted THEN
        SELECT r.urltarget_fk INTO missing FROM new_results r
         WHERE NOT EXISTS (SELECT 1 FROM urltargets t WHERE t.urltargets_pk = r.urltarget_fk)
         LIMIT 1;
        RAISE EXCEPTION 'insert or update on table \"monitor_results\" names target %, which does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'monitor_results',
                  CONSTRAINT = 'monitor_results_target_exists';
    END IF;
    RETURN NULL;
END $$;
";

sql::sql_migration!();
