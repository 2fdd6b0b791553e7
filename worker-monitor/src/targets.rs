//! The target list, read from PostgreSQL: the active (not paused) targets of this shard,
//! re-read every few seconds so additions, pauses and removals apply without a restart. When
//! the database is unreachable the last list stays in force and the read is retried.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use entity::urltargets;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Shard;
use crate::http::Readiness;
use crate::metric_names as m;
use crate::scheduler::{Target, TargetSet};

/// The active targets whose id falls in `shard`.
pub async fn load(db: &DatabaseConnection, shard: Shard) -> Result<HashMap<i32, Target>, DbErr> {
    let rows = urltargets::Entity::find()
        .filter(urltargets::Column::Paused.eq(false))
        .filter(Expr::cust_with_values(
            "urltargets_pk % $1 = $2",
            [i64::from(shard.count), i64::from(shard.index)],
        ))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let target = Target {
                id: row.urltargets_pk,
                url: Arc::from(row.urltarget),
                frequency: row.monitor_frequency,
            };
            (target.id, target)
        })
        .collect())
}

/// Re-reads the list every `every` and publishes it when it changed, until cancelled.
pub async fn refresh(
    db: DatabaseConnection,
    shard: Shard,
    every: Duration,
    out: watch::Sender<TargetSet>,
    readiness: Arc<Readiness>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut failures = 0u32;
    loop {
        match load(&db, shard).await {
            Ok(targets) => {
                if failures > 0 {
                    tracing::info!(failures, "Target list readable again.");
                }
                failures = 0;
                readiness.targets_loaded.store(true, Ordering::Relaxed);
                out.send_if_modified(|current| {
                    let changed = **current != targets;
                    if changed {
                        *current = Arc::new(targets);
                    }
                    changed
                });
            }
            Err(e) => {
                failures += 1;
                metrics::counter!(m::MONITOR_TARGET_REFRESH_ERRORS).increment(1);
                tracing::warn!(failures, error = %e, "Cannot read the target list; keeping the last one.");
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
    }
}
