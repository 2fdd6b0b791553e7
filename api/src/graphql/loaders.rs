//! Batch loading for the fields every node of a list asks for (`Target.latestResult`,
//! `Target.results`, `Target.stats`, `Result.target`): the nodes of one list share a batch, and
//! the first node that asks for a field loads it for all of them in one SQL statement, which
//! the others then read. A page therefore costs one statement per field (and per distinct set of
//! arguments) however many nodes it has — it was one per node.
//!
//! Not async-graphql's `DataLoader`: that one gathers the keys that arrive within a time window
//! (1 ms), and a page whose nodes are polled across that window (a list over 30 nodes is polled
//! in slices, and a busy runtime delays the next slice) was split into several statements, a
//! count that depended on load. Here the batch is the list itself, known before any node
//! resolves. Nothing outlives the request: every request reads what is stored now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use entity::{monitor_results, urltargets};
use sea_orm::DatabaseConnection;
use tokio::sync::OnceCell;

use crate::error::ApiError;
use crate::service::history::{self, Series, SeriesShape, Source};
use crate::service::results::{self, After, Filter, Stats};
use crate::service::states::{self, IncidentRow, StateRow};
use crate::service::{targets, windows};

/// What one statement loaded for a whole batch; one failure answers every node that asked.
type Loaded<T> = Result<T, Arc<ApiError>>;

/// A batch's series: where they come from, their bucket width, each target's points.
type SeriesOfBatch = (Source, chrono::TimeDelta, HashMap<i32, Series>);

/// A cell per set of arguments, filled by the first node that asks.
type Cells<K, V> = Mutex<HashMap<K, Arc<OnceCell<Loaded<V>>>>>;

/// `target`'s part of what a batch loaded (cloning that part only).
fn pick<V: Clone>(loaded: &Loaded<HashMap<i32, V>>, target: i32) -> Loaded<Option<V>> {
    match loaded {
        Ok(all) => Ok(all.get(&target).cloned()),
        Err(e) => Err(e.clone()),
    }
}

fn cell<K: std::hash::Hash + Eq, V>(cells: &Cells<K, V>, key: K) -> Arc<OnceCell<Loaded<V>>> {
    let mut cells = cells
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cells.entry(key).or_default().clone()
}

/// Which page of results each target of a batch is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageShape {
    /// Rows wanted (`limit + 1` are read, to know whether there is a next page).
    pub limit: u64,
    pub after: Option<After>,
    pub filter: Filter,
}

/// The targets of one list: a page, a mutation's answer, the targets of a page of results, or
/// one target alone.
pub struct TargetBatch {
    db: DatabaseConnection,
    models: Vec<urltargets::Model>,
    latest: OnceCell<Loaded<HashMap<i32, monitor_results::Model>>>,
    pages: Cells<PageShape, HashMap<i32, Vec<monitor_results::Model>>>,
    stats: Cells<Filter, HashMap<i32, Stats>>,
    series: Cells<SeriesShape, SeriesOfBatch>,
    states: OnceCell<Loaded<HashMap<i32, StateRow>>>,
    incidents: Cells<u64, HashMap<i32, Vec<IncidentRow>>>,
    results: std::sync::OnceLock<Arc<ResultBatch>>,
}

impl TargetBatch {
    pub fn new(db: DatabaseConnection, models: Vec<urltargets::Model>) -> Arc<TargetBatch> {
        Arc::new(TargetBatch {
            db,
            models,
            latest: OnceCell::new(),
            pages: Mutex::default(),
            stats: Mutex::default(),
            series: Mutex::default(),
            states: OnceCell::new(),
            incidents: Mutex::default(),
            results: std::sync::OnceLock::new(),
        })
    }

    pub fn models(&self) -> &[urltargets::Model] {
        &self.models
    }

    fn ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.models.iter().map(|m| m.urltargets_pk).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The most recent result of `target`, loaded for the whole batch.
    pub async fn latest(&self, target: i32) -> Loaded<Option<monitor_results::Model>> {
        let loaded = self
            .latest
            .get_or_init(|| async {
                let rows = results::latest_of(&self.db, &self.ids()).await?;
                Ok(rows.into_iter().map(|m| (m.urltarget_fk, m)).collect())
            })
            .await;
        pick(loaded, target)
    }

    /// `target`'s page of results of `shape`, loaded for the whole batch; with a batch for the
    /// results (their `target` is already known: these targets).
    pub async fn page(&self, target: i32, shape: PageShape) -> Loaded<Vec<monitor_results::Model>> {
        let cell = cell(&self.pages, shape);
        let loaded = cell
            .get_or_init(|| async {
                let rows = results::pages_of(
                    &self.db,
                    &self.ids(),
                    shape.limit,
                    shape.after,
                    &shape.filter,
                )
                .await?;
                let mut by_target: HashMap<i32, Vec<monitor_results::Model>> = HashMap::new();
                for row in rows {
                    by_target.entry(row.urltarget_fk).or_default().push(row);
                }
                Ok(by_target)
            })
            .await;
        Ok(pick(loaded, target)?.unwrap_or_default())
    }

    /// `target`'s statistics over the period of `filter`, computed for the whole batch.
    pub async fn stats(&self, target: i32, filter: Filter) -> Loaded<Stats> {
        let cell = cell(&self.stats, filter);
        let loaded = cell
            .get_or_init(|| async {
                // Maintenance windows leave the time they cover out of uptime, as they are now
                // (a window added afterwards corrects past figures).
                let tagged: Vec<(i32, Vec<String>)> = self
                    .models
                    .iter()
                    .map(|m| (m.urltargets_pk, m.tags.0.clone()))
                    .collect();
                let excluded =
                    windows::covered(&self.db, &tagged, filter.since, filter.until).await?;
                if history::long_period(filter.since, filter.until) {
                    Ok(history::stats_from_rollups(
                        &self.db,
                        &self.ids(),
                        filter.since,
                        filter.until,
                        &excluded,
                    )
                    .await?)
                } else {
                    Ok(results::stats_of(&self.db, &self.ids(), &filter, &excluded).await?)
                }
            })
            .await;
        Ok(pick(loaded, target)?.unwrap_or_default())
    }

    /// `target`'s series of `shape`, loaded for the whole batch; with its source and bucket.
    pub async fn series(
        &self,
        target: i32,
        shape: SeriesShape,
    ) -> Loaded<(Source, chrono::TimeDelta, Series)> {
        let cell = cell(&self.series, shape);
        let loaded = cell
            .get_or_init(|| async { Ok(history::series_of(&self.db, &self.ids(), &shape).await?) })
            .await;
        match loaded {
            Ok((source, width, all)) => Ok((
                *source,
                *width,
                all.get(&target).cloned().unwrap_or_default(),
            )),
            Err(e) => Err(e.clone()),
        }
    }

    /// `target`'s stored state, loaded for the whole batch (None: no result yet).
    pub async fn state(&self, target: i32) -> Loaded<Option<StateRow>> {
        let loaded = self
            .states
            .get_or_init(|| async { Ok(states::states_of(&self.db, &self.ids()).await?) })
            .await;
        pick(loaded, target)
    }

    /// `target`'s latest `limit` incidents, loaded for the whole batch.
    pub async fn incidents(&self, target: i32, limit: u64) -> Loaded<Vec<IncidentRow>> {
        let cell = cell(&self.incidents, limit);
        let loaded = cell
            .get_or_init(|| async { Ok(states::incidents_of(&self.db, &self.ids(), limit).await?) })
            .await;
        Ok(pick(loaded, target)?.unwrap_or_default())
    }

    /// The batch of the results of these targets, one for all their pages: their `target` is
    /// known without a statement, and shares one batch for what is asked of it next.
    pub fn results_batch(&self) -> Arc<ResultBatch> {
        self.results
            .get_or_init(|| ResultBatch::known(self.db.clone(), self.models.clone()))
            .clone()
    }
}

/// The targets of a batch of results, and a batch over them for what their nodes ask next.
struct Targets {
    by_id: HashMap<i32, urltargets::Model>,
    batch: Arc<TargetBatch>,
}

impl Targets {
    fn new(db: &DatabaseConnection, by_id: HashMap<i32, urltargets::Model>) -> Targets {
        let batch = TargetBatch::new(db.clone(), by_id.values().cloned().collect());
        Targets { by_id, batch }
    }
}

/// The results of one list (a page, or one live result): `Result.target` is loaded for all of
/// them at once.
pub struct ResultBatch {
    db: DatabaseConnection,
    target_ids: Vec<i32>,
    targets: OnceCell<Loaded<Targets>>,
}

impl ResultBatch {
    pub fn new(db: DatabaseConnection, rows: &[monitor_results::Model]) -> Arc<ResultBatch> {
        let mut target_ids: Vec<i32> = rows.iter().map(|r| r.urltarget_fk).collect();
        target_ids.sort_unstable();
        target_ids.dedup();
        Arc::new(ResultBatch {
            db,
            target_ids,
            targets: OnceCell::new(),
        })
    }

    /// A batch over the targets of `ids` (of incidents, say), loaded when first asked.
    pub fn of_targets(db: DatabaseConnection, mut target_ids: Vec<i32>) -> Arc<ResultBatch> {
        target_ids.sort_unstable();
        target_ids.dedup();
        Arc::new(ResultBatch {
            db,
            target_ids,
            targets: OnceCell::new(),
        })
    }

    /// A batch whose results' targets are known already (live results, a target's own
    /// results).
    pub fn known(db: DatabaseConnection, targets: Vec<urltargets::Model>) -> Arc<ResultBatch> {
        let by_id = targets.into_iter().map(|m| (m.urltargets_pk, m)).collect();
        Arc::new(ResultBatch {
            targets: OnceCell::new_with(Some(Ok(Targets::new(&db, by_id)))),
            db,
            target_ids: Vec::new(),
        })
    }

    /// The target of a result of the batch, with the batch of the targets of all its results
    /// (None when it was removed).
    pub async fn target(&self, id: i32) -> Loaded<Option<(urltargets::Model, Arc<TargetBatch>)>> {
        let loaded = self
            .targets
            .get_or_init(|| async {
                let models = targets::get_many(&self.db, &self.target_ids).await?;
                let by_id = models.into_iter().map(|m| (m.urltargets_pk, m)).collect();
                Ok(Targets::new(&self.db, by_id))
            })
            .await;
        match loaded {
            Ok(targets) => Ok(targets
                .by_id
                .get(&id)
                .map(|m| (m.clone(), targets.batch.clone()))),
            Err(e) => Err(e.clone()),
        }
    }
}
