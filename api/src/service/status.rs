//! Status pages (#16): a named set of targets shown at `/status/<slug>` — each with the name
//! chosen for it (its URL only when the page shows URLs), its state, 90 daily uptime bars from
//! the rollups, the page's open and recent incidents and its upcoming maintenance.
//!
//! A page's definition is read and written through GraphQL with a token; what the page shows
//! ([`View`]) is built here for the HTTP endpoint, which serves it without a token only when the
//! page is public.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use entity::maintenance::TagFilter;
use entity::rollup::day_of;
use sea_orm::sea_query::Value;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, SqlErr, Statement,
    TransactionTrait,
};
use serde::Serialize;

use super::history::{self, Grouping};
use super::results::id_array;
use super::windows;
use crate::error::{ApiError, ApiResult};

/// Most targets a page lists; a page chosen by tags shows the first this many by id.
pub const MAX_TARGETS: usize = 200;
/// Most pages.
pub const MAX_PAGES: u64 = 1000;
/// Daily uptime bars per target.
pub const DAYS: i64 = 90;
/// Resolved incidents shown for this long after they end.
pub const RECENT_INCIDENTS: TimeDelta = TimeDelta::days(14);
/// Most incidents a page shows (open ones first).
pub const MAX_INCIDENTS: usize = 50;
/// Maintenance shown this far ahead.
pub const MAINTENANCE_AHEAD: TimeDelta = TimeDelta::days(14);
/// Most maintenance occurrences a page shows.
pub const MAX_MAINTENANCE: usize = 20;
/// Longest display name.
pub const MAX_NAME_CHARS: usize = 100;

/// A page as a client gives it (GraphQL's `StatusPageInput`).
#[derive(Debug, Clone, Default)]
pub struct PageSpec {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub public: bool,
    pub show_urls: bool,
    pub target_ids: Vec<i32>,
    pub tags: Vec<String>,
    pub names: Vec<(i32, String)>,
}

/// A stored page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub public: bool,
    pub show_urls: bool,
    /// In the order the page shows them (empty for a page chosen by tags).
    pub target_ids: Vec<i32>,
    pub tags: Vec<TagFilter>,
    pub names: BTreeMap<i32, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn refuse(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::BadInput(format!("{field}: {message}"))
}

/// Whether `slug` can be a page's address: 1 to 63 of `a-z`, `0-9` and `-`, not starting with
/// `-`.
pub fn valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// A checked spec: what is stored.
struct Checked {
    slug: String,
    title: String,
    description: String,
    public: bool,
    show_urls: bool,
    target_ids: Vec<i32>,
    tags: Vec<TagFilter>,
    names: BTreeMap<i32, String>,
}

impl PageSpec {
    fn check(&self) -> ApiResult<Checked> {
        if !valid_slug(&self.slug) {
            return Err(refuse(
                "slug",
                format!(
                    "{:?} is not a page address: use 1 to 63 lowercase letters, digits and '-', \
                     not starting with '-'",
                    self.slug
                ),
            ));
        }
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(refuse("title", "must have 1 to 200 characters"));
        }
        if self.description.chars().count() > 2000 {
            return Err(refuse("description", "must have at most 2000 characters"));
        }
        if self.target_ids.is_empty() == self.tags.is_empty() {
            return Err(refuse(
                "targetIds",
                "give either targetIds (a list, shown in its order) or tags (filters), not both \
                 and not neither",
            ));
        }
        if self.target_ids.len() > MAX_TARGETS {
            return Err(refuse(
                "targetIds",
                format!(
                    "at most {MAX_TARGETS} targets, got {}",
                    self.target_ids.len()
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(id) = self.target_ids.iter().find(|id| !seen.insert(**id)) {
            return Err(refuse("targetIds", format!("target {id} is listed twice")));
        }
        let target_ids = self.target_ids.clone();
        if self.tags.len() > 32 {
            return Err(refuse("tags", "at most 32 filters"));
        }
        let tags = self
            .tags
            .iter()
            .map(|f| TagFilter::parse(f).map_err(|e| refuse("tags", e)))
            .collect::<ApiResult<Vec<_>>>()?;
        if self.names.len() > MAX_TARGETS {
            return Err(refuse("names", format!("at most {MAX_TARGETS} names")));
        }
        let mut names = BTreeMap::new();
        for (id, name) in &self.names {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                return Err(refuse(
                    "names",
                    format!("the name of target {id} must have 1 to {MAX_NAME_CHARS} characters"),
                ));
            }
            if !target_ids.is_empty() && !target_ids.contains(id) {
                return Err(refuse(
                    "names",
                    format!("target {id} has a name but is not in targetIds"),
                ));
            }
            if names.insert(*id, name.to_owned()).is_some() {
                return Err(refuse("names", format!("target {id} is named twice")));
            }
        }
        Ok(Checked {
            slug: self.slug.clone(),
            title: title.to_owned(),
            description: self.description.trim().to_owned(),
            public: self.public,
            show_urls: self.show_urls,
            target_ids,
            tags,
            names,
        })
    }
}

const COLUMNS: &str = "status_page_pk, slug, title, description, public, show_urls, target_ids, \
                       tag_filters, display_names, created_at, updated_at";

fn page_of(row: &QueryResult) -> ApiResult<Page> {
    let json = |i: usize| row.try_get_by_index::<serde_json::Value>(i);
    let target_ids: Vec<i32> = serde_json::from_value(json(6)?)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("status page target_ids: {e}")))?;
    let tags: Vec<String> = serde_json::from_value(json(7)?)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("status page tag_filters: {e}")))?;
    let tags = tags
        .iter()
        .map(|t| TagFilter::parse(t).map_err(|e| ApiError::Internal(e.into())))
        .collect::<ApiResult<Vec<_>>>()?;
    let names: BTreeMap<String, String> = serde_json::from_value(json(8)?)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("status page display_names: {e}")))?;
    let names = names
        .into_iter()
        .filter_map(|(id, name)| Some((id.parse().ok()?, name)))
        .collect();
    Ok(Page {
        id: row.try_get_by_index(0)?,
        slug: row.try_get_by_index(1)?,
        title: row.try_get_by_index(2)?,
        description: row.try_get_by_index(3)?,
        public: row.try_get_by_index(4)?,
        show_urls: row.try_get_by_index(5)?,
        target_ids,
        tags,
        names,
        created_at: row.try_get_by_index(9)?,
        updated_at: row.try_get_by_index(10)?,
    })
}

async fn select(
    db: &impl ConnectionTrait,
    condition: &str,
    values: Vec<Value>,
) -> ApiResult<Vec<Page>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT {COLUMNS} FROM status_pages {condition} ORDER BY status_page_pk"),
            values,
        ))
        .await?;
    rows.iter().map(page_of).collect()
}

/// Every page, by id.
pub async fn list(db: &impl ConnectionTrait) -> ApiResult<Vec<Page>> {
    select(db, "", Vec::new()).await
}

/// The page at `slug`, if any.
pub async fn by_slug(db: &impl ConnectionTrait, slug: &str) -> ApiResult<Option<Page>> {
    if !valid_slug(slug) {
        return Ok(None);
    }
    Ok(select(db, "WHERE slug = $1", vec![slug.into()])
        .await?
        .into_iter()
        .next())
}

async fn get(db: &impl ConnectionTrait, id: i64) -> ApiResult<Page> {
    select(db, "WHERE status_page_pk = $1", vec![id.into()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound(format!("no status page {id}")))
}

/// Refuses a listed target that does not exist — unless `kept` lists it: a page saved back as it
/// was read still holds the targets removed since (which it no longer shows).
async fn check_targets_exist(
    db: &impl ConnectionTrait,
    ids: &[i32],
    kept: &[i32],
) -> ApiResult<()> {
    let ids: Vec<i32> = ids
        .iter()
        .copied()
        .filter(|id| !kept.contains(id))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id FROM unnest($1::int[]) AS x(id) \
             WHERE NOT EXISTS (SELECT 1 FROM urltargets WHERE urltargets_pk = x.id) ORDER BY id",
            [id_array(&ids)],
        ))
        .await?;
    let missing = rows
        .iter()
        .map(|r| r.try_get_by_index::<i32>(0))
        .collect::<Result<Vec<_>, _>>()?;
    match missing.first() {
        None => Ok(()),
        Some(id) => Err(refuse("targetIds", format!("no target {id}"))),
    }
}

fn values(page: &Checked) -> Vec<Value> {
    let names: serde_json::Map<String, serde_json::Value> = page
        .names
        .iter()
        .map(|(id, name)| (id.to_string(), serde_json::Value::String(name.clone())))
        .collect();
    vec![
        page.slug.clone().into(),
        page.title.clone().into(),
        page.description.clone().into(),
        page.public.into(),
        page.show_urls.into(),
        serde_json::json!(page.target_ids).into(),
        serde_json::json!(
            page.tags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        )
        .into(),
        serde_json::Value::Object(names).into(),
    ]
}

fn slug_taken(e: sea_orm::DbErr, slug: &str) -> ApiError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            refuse("slug", format!("a status page at {slug:?} exists already"))
        }
        _ => e.into(),
    }
}

/// Adds a page.
pub async fn add(db: &DatabaseConnection, spec: &PageSpec) -> ApiResult<Page> {
    let page = spec.check()?;
    let txn = db.begin().await?;
    check_targets_exist(&txn, &page.target_ids, &[]).await?;
    let count = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM status_pages",
        ))
        .await?
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    if count as u64 >= MAX_PAGES {
        return Err(ApiError::LimitExceeded(format!(
            "at most {MAX_PAGES} status pages"
        )));
    }
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO status_pages (slug, title, description, public, show_urls, \
                     target_ids, tag_filters, display_names) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
            ),
            values(&page),
        ))
        .await
        .map_err(|e| slug_taken(e, &page.slug))?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("INSERT returned no row")))?;
    let stored = page_of(&row)?;
    txn.commit().await?;
    Ok(stored)
}

/// Replaces page `id` with `spec` (the whole page; its slug may change).
pub async fn update(db: &DatabaseConnection, id: i64, spec: &PageSpec) -> ApiResult<Page> {
    let page = spec.check()?;
    let txn = db.begin().await?;
    let stored = get(&txn, id).await?;
    check_targets_exist(&txn, &page.target_ids, &stored.target_ids).await?;
    let mut values = values(&page);
    values.push(id.into());
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "UPDATE status_pages SET slug = $1, title = $2, description = $3, public = $4, \
                     show_urls = $5, target_ids = $6, tag_filters = $7, display_names = $8, \
                     updated_at = now() \
                 WHERE status_page_pk = $9 RETURNING {COLUMNS}"
            ),
            values,
        ))
        .await
        .map_err(|e| slug_taken(e, &page.slug))?
        .ok_or_else(|| ApiError::NotFound(format!("no status page {id}")))?;
    let stored = page_of(&row)?;
    txn.commit().await?;
    Ok(stored)
}

/// Removes page `id`; returns it as it was.
pub async fn remove(db: &DatabaseConnection, id: i64) -> ApiResult<Page> {
    let page = get(db, id).await?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM status_pages WHERE status_page_pk = $1",
        [id.into()],
    ))
    .await?;
    Ok(page)
}

// ---------------------------------------------------------------------------------------------
// What the page shows
// ---------------------------------------------------------------------------------------------

/// What `/status/<slug>.json` answers: only what the page shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub generated_at: DateTime<Utc>,
    /// The page's summary: `operational`, `degraded`, `partial_outage`, `major_outage`,
    /// `maintenance` or `unknown`.
    pub status: &'static str,
    /// The days of the bars, oldest first (UTC dates).
    pub days: Vec<NaiveDate>,
    pub targets: Vec<TargetView>,
    pub incidents: Vec<IncidentView>,
    pub maintenance: Vec<MaintenanceView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    pub name: String,
    /// Only when the page shows URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `up`, `degraded`, `pending`, `down`, `maintenance`, `unknown` or `paused`.
    pub state: String,
    pub since: Option<DateTime<Utc>>,
    /// Up (or degraded) checks over all checks of the 90 days; null without checks.
    pub uptime: Option<f64>,
    /// One per day of [`View::days`].
    pub bars: Vec<Bar>,
}

/// A day's checks as `[checks, up, degraded, down]` (up counts degraded too; the day's uptime
/// is up / checks): an array, not an object, since a page holds thousands (a page of 100
/// targets was 717 KB with objects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bar(pub [i64; 4]);

impl Bar {
    pub fn checks(&self) -> i64 {
        self.0[0]
    }

    pub fn up(&self) -> i64 {
        self.0[1]
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentView {
    /// The target's display name.
    pub target: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Only when the page shows URLs (a failure's cause can name its URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceView {
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Display names of the page's targets it covers.
    pub targets: Vec<String>,
}

struct Shown {
    id: i32,
    url: String,
    tags: Vec<String>,
    state: String,
    since: Option<DateTime<Utc>>,
}

/// The page's targets with their state: the list in its order (those removed since left out),
/// or the first [`MAX_TARGETS`] by id matching one of the tag filters.
async fn shown_targets(db: &DatabaseConnection, page: &Page) -> ApiResult<Vec<Shown>> {
    let mut values: Vec<Value> = Vec::new();
    let condition = if page.tags.is_empty() {
        values.push(id_array(&page.target_ids));
        "t.urltargets_pk = ANY($1::int[])".to_owned()
    } else {
        let any: Vec<String> = page
            .tags
            .iter()
            .map(|filter| super::targets::tag_condition(filter, &mut values))
            .collect();
        format!("({})", any.join(" OR "))
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT t.urltargets_pk, t.urltarget, t.tags, \
                        CASE WHEN t.paused THEN 'paused' ELSE coalesce(s.state, 'unknown') END, \
                        CASE WHEN t.paused THEN NULL ELSE s.state_since END \
                 FROM urltargets t LEFT JOIN target_states s ON s.urltarget_fk = t.urltargets_pk \
                 WHERE {condition} ORDER BY t.urltargets_pk LIMIT {MAX_TARGETS}"
            ),
            values,
        ))
        .await?;
    let mut shown = rows
        .iter()
        .map(|row| {
            let tags: serde_json::Value = row.try_get_by_index(2)?;
            Ok(Shown {
                id: row.try_get_by_index(0)?,
                url: row.try_get_by_index(1)?,
                tags: serde_json::from_value(tags).unwrap_or_default(),
                state: row.try_get_by_index(3)?,
                since: row.try_get_by_index(4)?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    if page.tags.is_empty() {
        let order: HashMap<i32, usize> = page
            .target_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        shown.sort_by_key(|t| order.get(&t.id).copied().unwrap_or(usize::MAX));
    }
    Ok(shown)
}

fn ratio(up: i64, checks: i64) -> Option<f64> {
    (checks > 0).then(|| up as f64 / checks as f64)
}

/// The page's summary from its targets' states.
fn summary<'a>(states: impl Iterator<Item = &'a str>) -> &'static str {
    let (mut total, mut down, mut degraded, mut maintenance, mut up) = (0, 0, 0, 0, 0);
    for state in states {
        total += 1;
        match state {
            "down" => down += 1,
            "degraded" => degraded += 1,
            "maintenance" => maintenance += 1,
            "up" => up += 1,
            _ => {}
        }
    }
    match () {
        _ if total == 0 => "unknown",
        _ if down == total => "major_outage",
        _ if down > 0 => "partial_outage",
        _ if degraded > 0 => "degraded",
        _ if maintenance > 0 => "maintenance",
        _ if up > 0 => "operational",
        _ => "unknown",
    }
}

/// What the page shows now.
pub async fn view(db: &DatabaseConnection, page: &Page) -> ApiResult<View> {
    let now = Utc::now();
    let first_day = day_of(now) - TimeDelta::days(DAYS - 1);
    let targets = shown_targets(db, page).await?;
    // A target without a name is called by its place on the page (never by its id, which would
    // lead to its URL through the API).
    let names: HashMap<i32, String> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = page.names.get(&t.id).cloned();
            (t.id, name.unwrap_or_else(|| format!("Service {}", i + 1)))
        })
        .collect();
    let name_of = |t: &Shown| names.get(&t.id).cloned().unwrap_or_default();
    let ids: Vec<i32> = targets.iter().map(|t| t.id).collect();
    let with_tags: Vec<(i32, Vec<String>)> =
        targets.iter().map(|t| (t.id, t.tags.clone())).collect();

    // Bars: maintenance windows left out of uptime, as for `Target.stats`.
    let windows = windows::list(db).await?;
    let excluded = if windows.is_empty() {
        Vec::new()
    } else {
        let coverage = states::Coverage::new(&windows, first_day, now);
        with_tags
            .iter()
            .flat_map(|(t, tags)| {
                coverage
                    .intervals(*t, tags)
                    .into_iter()
                    .map(move |(from, until)| (*t, from, until))
            })
            .collect()
    };
    let mut by_day: HashMap<(i32, NaiveDate), Bar> = HashMap::new();
    if !ids.is_empty() {
        for (target, day, r) in history::sums(
            db,
            &ids,
            Some(first_day),
            Some(now),
            &excluded,
            Grouping::Daily,
        )
        .await?
        {
            let Some(day) = day else { continue };
            by_day.insert(
                (target, day.date_naive()),
                Bar([r.checks(), r.up + r.degraded, r.degraded, r.down]),
            );
        }
    }
    let days: Vec<NaiveDate> = (0..DAYS)
        .map(|i| (first_day + TimeDelta::days(i)).date_naive())
        .collect();
    let shown: Vec<TargetView> = targets
        .iter()
        .map(|t| {
            let bars: Vec<Bar> = days
                .iter()
                .map(|d| by_day.get(&(t.id, *d)).copied().unwrap_or_default())
                .collect();
            let (up, checks) = bars
                .iter()
                .fold((0, 0), |(u, c), b| (u + b.up(), c + b.checks()));
            TargetView {
                name: name_of(t),
                url: page.show_urls.then(|| t.url.clone()),
                state: t.state.clone(),
                since: t.since,
                uptime: ratio(up, checks),
                bars,
            }
        })
        .collect();

    // Incidents: open ones, then those resolved in the last RECENT_INCIDENTS, newest first.
    let mut incidents = Vec::new();
    if !ids.is_empty() {
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT urltarget_fk, opened_at, resolved_at, cause FROM incidents \
                     WHERE urltarget_fk = ANY($1::int[]) \
                       AND (resolved_at IS NULL OR resolved_at >= $2) \
                     ORDER BY resolved_at IS NULL DESC, opened_at DESC, incident_pk DESC \
                     LIMIT {MAX_INCIDENTS}"
                ),
                [id_array(&ids), (now - RECENT_INCIDENTS).into()],
            ))
            .await?;
        for row in rows {
            let target: i32 = row.try_get_by_index(0)?;
            incidents.push(IncidentView {
                target: names.get(&target).cloned().unwrap_or_default(),
                opened_at: row.try_get_by_index(1)?,
                resolved_at: row.try_get_by_index(2)?,
                cause: if page.show_urls {
                    row.try_get_by_index(3)?
                } else {
                    None
                },
            });
        }
    }

    // Upcoming maintenance (and any open now) of the page's targets.
    let mut maintenance = Vec::new();
    for window in &windows {
        let covered: Vec<String> = targets
            .iter()
            .filter(|t| window.window.scope.covers(t.id, &t.tags))
            .map(name_of)
            .collect();
        if covered.is_empty() {
            continue;
        }
        for (start, end) in window.window.occurrences(now, now + MAINTENANCE_AHEAD) {
            maintenance.push(MaintenanceView {
                name: window.name.clone(),
                start,
                end,
                targets: covered.clone(),
            });
        }
    }
    maintenance.sort_by(|a, b| (a.start, &a.name).cmp(&(b.start, &b.name)));
    maintenance.truncate(MAX_MAINTENANCE);

    Ok(View {
        slug: page.slug.clone(),
        title: page.title.clone(),
        description: page.description.clone(),
        generated_at: now,
        status: summary(shown.iter().map(|t| t.state.as_str())),
        days,
        targets: shown,
        incidents,
        maintenance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PageSpec {
        PageSpec {
            slug: "acme".into(),
            title: "Acme".into(),
            target_ids: vec![3, 1],
            ..PageSpec::default()
        }
    }

    #[test]
    fn slugs_are_lowercase_words_with_dashes() {
        for good in ["a", "acme", "acme-prod", "0", &"a".repeat(63)] {
            assert!(valid_slug(good), "{good}");
        }
        for bad in [
            "",
            "-acme",
            "Acme",
            "acme.json",
            "acme/x",
            "ac me",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn bad_pages_are_refused_naming_the_field() {
        let field = |s: PageSpec| match s.check() {
            Err(ApiError::BadInput(m)) => m.split(':').next().unwrap().to_owned(),
            Err(e) => panic!("{e:?}"),
            Ok(_) => "accepted".to_owned(),
        };
        assert_eq!(field(spec()), "accepted");
        assert_eq!(
            field(PageSpec {
                slug: "A".into(),
                ..spec()
            }),
            "slug"
        );
        assert_eq!(
            field(PageSpec {
                title: " ".into(),
                ..spec()
            }),
            "title"
        );
        assert_eq!(
            field(PageSpec {
                tags: vec!["env:prod".into()],
                ..spec()
            }),
            "targetIds"
        );
        assert_eq!(
            field(PageSpec {
                target_ids: vec![],
                ..spec()
            }),
            "targetIds"
        );
        assert_eq!(
            field(PageSpec {
                target_ids: vec![1, 1],
                ..spec()
            }),
            "targetIds"
        );
        assert_eq!(
            field(PageSpec {
                target_ids: (1..=MAX_TARGETS as i32 + 1).collect(),
                ..spec()
            }),
            "targetIds"
        );
        assert_eq!(
            field(PageSpec {
                target_ids: vec![],
                tags: vec!["a:b:c".into()],
                ..spec()
            }),
            "tags"
        );
        assert_eq!(
            field(PageSpec {
                names: vec![(2, "Two".into())],
                ..spec()
            }),
            "names"
        );
        assert_eq!(
            field(PageSpec {
                names: vec![(1, "x".repeat(MAX_NAME_CHARS + 1))],
                ..spec()
            }),
            "names"
        );
    }

    #[test]
    fn the_summary_is_the_worst_state_shown() {
        let of = |s: &[&str]| summary(s.iter().copied());
        assert_eq!(of(&[]), "unknown");
        assert_eq!(of(&["up", "up"]), "operational");
        assert_eq!(of(&["up", "degraded"]), "degraded");
        assert_eq!(of(&["up", "maintenance"]), "maintenance");
        assert_eq!(of(&["up", "down", "degraded"]), "partial_outage");
        assert_eq!(of(&["down", "down"]), "major_outage");
        assert_eq!(of(&["paused", "unknown"]), "unknown");
    }
}
