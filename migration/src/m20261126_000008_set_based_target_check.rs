//! The results' reference to their target, checked once per statement instead of once per row.
//!
//! A foreign key checks each inserted result with its own index lookup and row lock; for the
//! ingest worker's batches of thousands of rows that was a third of PostgreSQL's work. The same
//! rules now hold through statement-level triggers that see all of a statement's rows at once:
//!
//! - inserting or re-pointing results locks their targets (`FOR KEY SHARE`, as a foreign key
//!   does, so a concurrent removal waits for the commit) and fails with `foreign_key_violation`
//!   (23503) when one is missing;
//! - removing targets removes their results (what `ON DELETE CASCADE` did): the deleting
//!   statement waits for the locks above, then its trigger sees every committed result;
//! - a target's key cannot change while results name it.

use sea_orm_migration::prelude::*;

use crate::sql;

const UP: &str = "
ALTER TABLE monitor_results DROP CONSTRAINT monitor_results_urltarget_fk_fkey;

CREATE FUNCTION monitor_results_target_exists() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER monitor_results_target_exists_on_insert
    AFTER INSERT ON monitor_results REFERENCING NEW TABLE AS new_results
    FOR EACH STATEMENT EXECUTE FUNCTION monitor_results_target_exists();
CREATE TRIGGER monitor_results_target_exists_on_update
    AFTER UPDATE ON monitor_results REFERENCING NEW TABLE AS new_results
    FOR EACH STATEMENT EXECUTE FUNCTION monitor_results_target_exists();

CREATE FUNCTION urltargets_remove_results() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM monitor_results WHERE urltarget_fk IN (SELECT urltargets_pk FROM old_targets);
    RETURN NULL;
END $$;

CREATE TRIGGER urltargets_remove_results
    AFTER DELETE ON urltargets REFERENCING OLD TABLE AS old_targets
    FOR EACH STATEMENT EXECUTE FUNCTION urltargets_remove_results();

CREATE FUNCTION urltargets_keep_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM monitor_results WHERE urltarget_fk = OLD.urltargets_pk) THEN
        RAISE EXCEPTION 'target % has results; its key cannot change', OLD.urltargets_pk
            USING ERRCODE = 'foreign_key_violation', TABLE = 'urltargets';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER urltargets_keep_key
    BEFORE UPDATE OF urltargets_pk ON urltargets
    FOR EACH ROW WHEN (OLD.urltargets_pk IS DISTINCT FROM NEW.urltargets_pk)
    EXECUTE FUNCTION urltargets_keep_key();
";

const DOWN: &str = "
DROP TRIGGER urltargets_keep_key ON urltargets;
DROP FUNCTION urltargets_keep_key();
DROP TRIGGER urltargets_remove_results ON urltargets;
DROP FUNCTION urltargets_remove_results();
DROP TRIGGER monitor_results_target_exists_on_update ON monitor_results;
DROP TRIGGER monitor_results_target_exists_on_insert ON monitor_results;
DROP FUNCTION monitor_results_target_exists();
ALTER TABLE monitor_results ADD CONSTRAINT monitor_results_urltarget_fk_fkey
    FOREIGN KEY (urltarget_fk) REFERENCES urltargets (urltargets_pk) ON DELETE CASCADE;
";

sql::sql_migration!();
