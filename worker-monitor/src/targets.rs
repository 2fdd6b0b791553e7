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

use entity::check::StoredCheck;

use crate::check::{Check, CheckBuilder};
use crate::config::Shard;
use crate::group::{Ownership, shard_sql};
use crate::http::Readiness;
use crate::metric_names as m;
use crate::scheduler::{Target, TargetSet};

/// The prepared checks of the last list, one per distinct stored check: the 50,000 targets
/// that keep the default share one, and a check is prepared again only when its columns change.
pub struct Checks {
    builder: CheckBuilder,
    interned: HashMap<StoredCheck, Arc<Check>>,
}

impl Checks {
    pub fn new(builder: CheckBuilder) -> Checks {
        Checks {
            builder,
            interned: HashMap::new(),
        }
    }

    /// The check of `row`: the one prepared before for the same columns, a new one otherwise.
    fn of(&mut self, row: &urltargets::Model) -> Arc<Check> {
        let stored = StoredCheck::of(row);
        if let Some(check) = self.interned.get(&stored) {
            return check.clone();
        }
        let check = Arc::new(self.builder.build(&stored));
        if let Some(reason) = &check.broken {
            // The reason names headers by name, never their values.
            tracing::warn!(
                target_id = row.urltargets_pk,
                reason,
                "Target's check cannot be used; its probes report failure class other."
            );
        }
        self.interned.insert(stored, check.clone());
        check
    }

    /// Forgets the checks no target of the new list uses (the list holds the others).
    fn retain(&mut self) {
        self.interned
            .retain(|_, check| Arc::strong_count(check) > 1);
        let in_use: std::collections::HashSet<&str> = self
            .interned
            .keys()
            .filter_map(|stored| stored.ca_bundle.as_deref())
            .collect();
        self.builder.forget_unused(&in_use);
    }
}

/// Which targets this monitor probes.
#[derive(Clone)]
pub enum Selection {
    /// `--shard i/n`: those whose id modulo n is i.
    Fixed(Shard),
    /// Group mode: those of the shards this member owns now.
    Group(Arc<Ownership>),
}

/// The active targets of the selection.
pub async fn load(
    db: &DatabaseConnection,
    selection: &Selection,
    checks: &mut Checks,
) -> Result<HashMap<i32, Target>, DbErr> {
    let query = urltargets::Entity::find().filter(urltargets::Column::Paused.eq(false));
    let query = match selection {
        Selection::Fixed(shard) => query.filter(Expr::cust_with_values(
            "urltargets_pk % $1 = $2",
            [i64::from(shard.count), i64::from(shard.index)],
        )),
        Selection::Group(ownership) => {
            let owned = ownership.owned();
            if owned.is_empty() {
                checks.retain();
                return Ok(HashMap::new());
            }
            let list: Vec<String> = owned.iter().map(u32::to_string).collect();
            query.filter(Expr::cust(format!(
                "{} IN ({})",
                shard_sql("urltargets_pk", ownership.shards()),
                list.join(",")
            )))
        }
    };
    let rows = query.all(db).await?;
    let targets: HashMap<i32, Target> = rows
        .into_iter()
        .map(|row| {
            let target = Target {
                id: row.urltargets_pk,
                check: checks.of(&row),
                url: Arc::from(row.urltarget),
                frequency: row.monitor_frequency,
                since_ms: match selection {
                    Selection::Group(ownership) => ownership.since_ms(row.urltargets_pk),
                    Selection::Fixed(_) => 0,
                },
            };
            (target.id, target)
        })
        .collect();
    checks.retain();
    Ok(targets)
}

/// Re-reads the list every `every`, and at once when the owned shards change, and publishes it
/// when it changed, until cancelled.
pub async fn refresh(
    db: DatabaseConnection,
    selection: Selection,
    every: Duration,
    out: watch::Sender<TargetSet>,
    readiness: Arc<Readiness>,
    mut checks: Checks,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut failures = 0u32;
    let mut owned_changed = match &selection {
        Selection::Group(ownership) => Some(ownership.subscribe()),
        Selection::Fixed(_) => None,
    };
    loop {
        if let Some(changed) = owned_changed.as_mut() {
            changed.borrow_and_update();
        }
        match load(&db, &selection, &mut checks).await {
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
        let owned_change = async {
            match owned_changed.as_mut() {
                Some(changed) => {
                    if changed.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(every) => {}
            () = owned_change => {}
        }
    }
}
