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

/// Runs `script` with the six views dropped first and, when `columns` is given, created again
/// afterwards selecting those columns: a view pins the columns it reads, so any change to them
/// happens with the views out of the way.
pub(crate) async fn run_around_views(
    manager: &SchemaManager<'_>,
    script: &str,
    columns: Option<&str>,
) -> Result<(), DbErr> {
    run(manager, &drop_views()).await?;
    run(manager, script).await?;
    match columns {
        Some(columns) => run(manager, &create_views(columns)).await,
        None => Ok(()),
    }
}

/// A migration that is two SQL scripts, `UP` and `DOWN`, in the invoking module.
macro_rules! sql_migration {
    () => {
        #[derive(DeriveMigrationName)]
        pub struct Migration;

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                crate::sql::run(manager, UP).await
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                crate::sql::run(manager, DOWN).await
            }
        }
    };
}
pub(crate) use sql_migration;

/// `CREATE VIEW` for the six views, each selecting `columns` (qualified with `r.` for
/// `monitor_results` and `t.` for `urltargets`) for the targets of its frequency. PostgreSQL only
fn create_views(columns: &str) -> String {
    VIEWS
        .iter()
        .map(|(view, minutes)| {
            format!(
                "CREATE VIEW {view} AS \
                 SELECT {columns} FROM monitor_results r \
                 JOIN urltargets t ON t.urltargets_pk = r.urltarget_fk \
                 WHERE t.monitor_frequency = {minutes};\n"
            )
        })
        .collect()
}

/// `DROP VIEW` for the six views.
fn drop_views() -> String {
    VIEWS
        .iter()
        .map(|(view, _)| format!("DROP VIEW IF EXISTS {view};\n"))
        .collect()
}
