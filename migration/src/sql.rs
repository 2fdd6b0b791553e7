//! Helpers shared by the migrations: running a script of SQL statements, and the six
//! per-frequency views of the original design, rebuilt whenever the columns they carry change.

use sea_orm_migration::prelude::*;

/// The original design's views and the frequency (minutes) each one shows.
const VIEWS: [(&str, i32); 6] = [
    ("view_1m", 1),
    ("view_2m", 2),
    ("view_5m", 5),
    ("view_10m", 10),
    ("view_20m", 20),
    ("view_30m", 30),
];

/// Runs a script of `;`-separated statements (simple query protocol, so several are allowed).
pub(crate) async fn run(manager: &SchemaManager<'_>, script: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(script).await?;
    Ok(())
}

/// `CREATE OR REPLACE VIEW` for the six views, each selecting `columns` (qualified with `r.` for
/// `monitor_results` and `t.` for `urltargets`) for the targets of its frequency. PostgreSQL only
/// lets a replacement add columns at the end; anything else needs [`drop_views`] first.
pub(crate) fn create_views(columns: &str) -> String {
    VIEWS
        .iter()
        .map(|(view, minutes)| {
            format!(
                "CREATE OR REPLACE VIEW {view} AS \
                 SELECT {columns} FROM monitor_results r \
                 JOIN urltargets t ON t.urltargets_pk = r.urltarget_fk \
                 WHERE t.monitor_frequency = {minutes};\n"
            )
        })
        .collect()
}

/// `DROP VIEW` for the six views.
pub(crate) fn drop_views() -> String {
    VIEWS
        .iter()
        .map(|(view, _)| format!("DROP VIEW IF EXISTS {view};\n"))
        .collect()
}
