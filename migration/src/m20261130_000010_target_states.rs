//! States and incidents (#13): each target's state as its results decide it, kept by the ingest
//! worker in the batch's transaction (the tracker of `entity::state`, as JSON), and the DOWN
//! incidents it opened and resolved. Thresholds per target (NULL: the defaults, 3 and 2).

use sea_orm_migration::prelude::*;

use crate::sql;

sql::sql_migration!();

const UP: &str = "
ALTER TABLE urltargets
    ADD COLUMN failures_before_down integer
        CONSTRAINT urltargets_failures_before_down_check CHECK (failures_before_down >= 1),
    ADD COLUMN successes_before_up integer
        CONSTRAINT urltargets_successes_before_up_check CHECK (successes_before_up >= 1);

CREATE TABLE target_states (
    urltarget_fk integer PRIMARY KEY REFERENCES urltargets (urltargets_pk) ON DELETE CASCADE,
    state text NOT NULL CHECK (state IN ('up', 'degraded', 'pending', 'down', 'paused',
                                         'maintenance', 'unknown')),
    since timestamptz,
    last_slot timestamptz,
    tracker jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE incidents (
    incident_pk bigserial PRIMARY KEY,
    urltarget_fk integer NOT NULL REFERENCES urltargets (urltargets_pk) ON DELETE CASCADE,
    state text NOT NULL DEFAULT 'down' CHECK (state IN ('down', 'degraded')),
    cause text,
    opened_at timestamptz NOT NULL,
    confirmed_at timestamptz NOT NULL,
    resolved_at timestamptz,
    opened_by bigint NOT NULL,
    closed_by bigint,
    CONSTRAINT incidents_target_opened_key UNIQUE (urltarget_fk, opened_at),
    CHECK (confirmed_at >= opened_at AND (resolved_at IS NULL OR resolved_at > opened_at))
);
CREATE INDEX incidents_open_idx ON incidents (urltarget_fk) WHERE resolved_at IS NULL;
";

const DOWN: &str = "
DROP TABLE incidents;
DROP TABLE target_states;
ALTER TABLE urltargets DROP COLUMN successes_before_up, DROP COLUMN failures_before_down;
";
