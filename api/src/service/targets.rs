//! Targets: validation and storage. Every input is checked here, whatever door it came through.

use entity::{Frequency, urltargets};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, SqlErr,
};

use super::checks::{Check, CheckChange, CheckEdit};
use super::states::{OwnThresholds, ThresholdsChange};
use crate::error::{ApiError, ApiResult};
use entity::maintenance::TagFilter;

/// Longest URL the schema stores (`varchar(1024)`).
pub const MAX_URL_LEN: usize = 1024;

/// Most entries one `applyTargets` call may list.
pub const MAX_APPLY: usize = 5_000;

/// Longest `search` text.
pub const MAX_SEARCH_LEN: usize = 1024;

/// A URL a probe may be aimed at: parses, http or https, has a host, carries no credentials
/// (they would be stored, shown to anonymous readers and written into every Kafka event), at
/// most 1024 characters as given and as normalised (normalising can lengthen it).
pub fn validate_url(raw: &str) -> ApiResult<String> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LEN {
        return Err(ApiError::BadInput(format!(
            "url is {} characters long; at most {MAX_URL_LEN} are allowed",
            raw.len()
        )));
    }
    let url = url::Url::parse(raw)
        .map_err(|e| ApiError::BadInput(format!("url {raw:?} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::BadInput(format!(
            "url must use http or https, not {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::BadInput(format!("url {raw:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::BadInput(
            "url must not carry a user name or password (they would be stored and shown to \
             every reader)"
                .into(),
        ));
    }
    let normalised = url.to_string();
    if normalised.len() > MAX_URL_LEN {
        return Err(ApiError::BadInput(format!(
            "url is {} characters long once normalised; at most {MAX_URL_LEN} are allowed",
            normalised.len()
        )));
    }
    Ok(normalised)
}

pub fn validate_frequency(minutes: i32) -> ApiResult<Frequency> {
    Frequency::try_from(minutes).map_err(|e| ApiError::BadInput(e.to_string()))
}

pub fn not_found(id: i32) -> ApiError {
    ApiError::NotFound(format!("no target with id {id}"))
}

/// Unique (url, frequency) violations become a user error.
fn conflict(e: sea_orm::DbErr, url: &str, frequency: Frequency) -> ApiError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::BadInput(format!(
            "{url} is already monitored every {} minute(s)",
            frequency.minutes()
        )),
        _ => e.into(),
    }
}

pub async fn get(db: &DatabaseConnection, id: i32) -> ApiResult<urltargets::Model> {
    urltargets::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| not_found(id))
}

/// The targets of `ids` that exist, in one statement.
pub async fn get_many(db: &DatabaseConnection, ids: &[i32]) -> ApiResult<Vec<urltargets::Model>> {
    Ok(urltargets::Entity::find()
        .filter(urltargets::Column::UrltargetsPk.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

/// One page of targets by id, after `after`, optionally of one frequency or matching `search`.
/// Returns up to `limit + 1` rows so the caller knows whether there is a next page.
/// A tag filter's argument, parsed; the error names the argument and gives the accepted forms.
pub fn parse_tag_filter(filter: &str) -> ApiResult<TagFilter> {
    TagFilter::parse(filter).map_err(|e| ApiError::BadInput(format!("tag: {e}")))
}

/// What a tag filter compares in SQL: the whole tag (`tags @> [tag]`) or a key's prefix
/// (`key:`); the other one is None.
pub fn tag_parameters(filter: Option<&TagFilter>) -> (Option<String>, Option<String>) {
    match filter {
        Some(TagFilter::Exact(tag)) => (Some(tag.clone()), None),
        Some(TagFilter::AnyValue(key)) => (None, Some(format!("{key}:"))),
        None => (None, None),
    }
}

/// The SQL condition on `t.tags` (`t` a target) selecting the targets `filter` matches, its
/// value pushed onto `values` and numbered after those already there.
pub fn tag_condition(filter: &TagFilter, values: &mut Vec<sea_orm::Value>) -> String {
    match tag_parameters(Some(filter)) {
        (Some(tag), _) => {
            values.push(tag.into());
            format!("t.tags @> jsonb_build_array(${}::text)", values.len())
        }
        (None, prefix) => {
            values.push(prefix.unwrap_or_default().into());
            format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements_text(t.tags) AS tag(v) \
                         WHERE starts_with(tag.v, ${}::text))",
                values.len()
            )
        }
    }
}

/// The orders of the target list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    Id,
    Url,
    /// Worst first: down, degraded, pending, unknown, maintenance, up, paused.
    State,
    /// When its state last changed (when it was added, before its first result).
    LastChange,
}

impl Order {
    /// The sort key (SQL over `t`, the target: the expression of an index in the state and last
    /// change orders, see migration 17), the cursor's key turned back into that type (its
    /// parameter written `$6`, replaced by the statement's number for it), and the key as the
    /// cursor's text.
    fn key(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Order::Id => ("t.urltargets_pk", "$6::int", "t.urltargets_pk::text"),
            Order::Url => ("t.urltarget", "$6::text", "t.urltarget::text"),
            Order::State => (
                STATE_RANK_SQL,
                "$6::int",
                "(CASE WHEN t.paused THEN 6 ELSE t.state_rank END)::text",
            ),
            Order::LastChange => (
                "coalesce(t.state_changed_at, t.created_at)",
                "(timestamptz 'epoch' + $6::bigint * interval '1 microsecond')",
                "(extract(epoch FROM coalesce(t.state_changed_at, t.created_at)) * 1000000)::bigint::text",
            ),
        }
    }
}

/// A target's place in the state order (SQL over `t`): its mirrored state's rank (0 down, 1
/// degraded, 2 pending, 3 unknown, 4 maintenance, 5 up), 6 when paused — the expression of
/// `urltargets_state_order_idx`.
pub const STATE_RANK_SQL: &str = "(CASE WHEN t.paused THEN 6 ELSE t.state_rank END)";

/// The rank [`STATE_RANK_SQL`] gives a state as the API names it in lower case.
pub fn state_rank(state: &str) -> Option<i32> {
    Some(match state {
        "down" => 0,
        "degraded" => 1,
        "pending" => 2,
        "unknown" => 3,
        "maintenance" => 4,
        "up" => 5,
        "paused" => 6,
        _ => return None,
    })
}

/// Where a page of the list starts: after this (sort key as text, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub key: String,
    pub id: i32,
}

/// One page of the target list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery<'a> {
    pub limit: u64,
    pub after: Option<ListCursor>,
    pub frequency: Option<Frequency>,
    pub search: Option<&'a str>,
    pub tag: Option<&'a TagFilter>,
    /// Only targets showing one of these states (lower case: `down`, …, `paused`).
    pub states: Option<Vec<String>>,
    pub order: Option<Order>,
    pub descending: bool,
}

/// Up to `limit + 1` targets of the list, each with its sort key (for the next cursor), in one
/// statement: filtered, sorted on the server and paged by keyset (sort key, id), so a page
/// costs the same at 50,000 targets as at 50.
pub async fn list(
    db: &DatabaseConnection,
    q: &ListQuery<'_>,
) -> ApiResult<Vec<(urltargets::Model, String)>> {
    let search = match q.search.filter(|s| !s.is_empty()) {
        None => None,
        Some(search) => {
            if search.chars().count() > MAX_SEARCH_LEN {
                return Err(ApiError::BadInput(format!(
                    "search is longer than {MAX_SEARCH_LEN} characters"
                )));
            }
            // PostgreSQL's text cannot hold NUL (and no stored URL has one).
            if search.contains('\0') {
                return Err(ApiError::BadInput(
                    "search cannot contain a NUL character".into(),
                ));
            }
            // Literally: `%`, `_` and the escape character itself match only themselves.
            let literal = search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            Some(format!("%{literal}%"))
        }
    };
    let order = q.order.unwrap_or(Order::Id);
    let (key, cursor_key, key_text) = order.key();
    let (op, dir) = if q.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    // Only the conditions asked for (numbered as they come): with `$n IS NULL OR …` for the
    // others, PostgreSQL's generic plan for the statement cannot tell which hold and sorts the
    // whole table (33 ms at 50,000 targets) instead of reading the order's index.
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<sea_orm::Value> = Vec::new();
    let param = |value: sea_orm::Value, values: &mut Vec<sea_orm::Value>| {
        values.push(value);
        format!("${}", values.len())
    };
    if let Some(f) = q.frequency {
        let p = param(f.minutes().into(), &mut values);
        conditions.push(format!("t.monitor_frequency = {p}"));
    }
    if let Some(filter) = q.tag {
        conditions.push(tag_condition(filter, &mut values));
    }
    if let Some(search) = search {
        let p = param(search.into(), &mut values);
        conditions.push(format!("t.urltarget LIKE {p}::text ESCAPE '\\'"));
    }
    if let Some(states) = &q.states {
        let ranks: Vec<sea_orm::Value> = states
            .iter()
            .filter_map(|s| state_rank(s))
            .map(|r| sea_orm::Value::Int(Some(r)))
            .collect();
        let p = param(
            sea_orm::Value::Array(sea_orm::sea_query::ArrayType::Int, Some(Box::new(ranks))),
            &mut values,
        );
        conditions.push(format!("{STATE_RANK_SQL} = ANY({p}::int[])"));
    }
    if let Some(after) = &q.after {
        let k = param(after.key.clone().into(), &mut values);
        let id = param(after.id.into(), &mut values);
        let cursor_key = cursor_key.replace("$6", &k);
        conditions.push(format!(
            "({key}, t.urltargets_pk) {op} ({cursor_key}, {id}::int)"
        ));
    }
    let limit = param(((q.limit + 1) as i64).into(), &mut values);
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT t.*, {key_text} AS sort_key FROM urltargets t {filter} \
         ORDER BY {key} {dir}, t.urltargets_pk {dir} LIMIT {limit}"
    );
    let rows = db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let model =
                <urltargets::Model as sea_orm::FromQueryResult>::from_query_result(row, "")?;
            let key: String = row.try_get("", "sort_key")?;
            Ok((model, key))
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(Into::into)
}

/// Adds a target with the default check changed by `check` (a header without a value is
/// refused: a new target stores none to keep).
/// A target's settings besides its URL, frequency and check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub thresholds: OwnThresholds,
    /// Sorted, without repeats (see [`validate_tags`]).
    pub tags: Vec<String>,
}

impl Settings {
    pub fn of(model: &urltargets::Model) -> Settings {
        Settings {
            thresholds: OwnThresholds::of(model),
            tags: model.tags.0.clone(),
        }
    }

    fn set_on(self, model: &mut urltargets::ActiveModel) {
        self.thresholds.set_on(model);
        model.tags = Set(entity::maintenance::Tags(self.tags));
    }
}

/// Tags checked (`key` or `key:value`, at most 32), sorted, repeats dropped; the error names
/// the tag and says what is allowed.
pub fn validate_tags(tags: &[String]) -> ApiResult<Vec<String>> {
    entity::maintenance::normalize_tags(tags).map_err(|e| ApiError::BadInput(format!("tags: {e}")))
}

pub async fn add(
    db: &DatabaseConnection,
    url: &str,
    frequency: i32,
    check: &CheckChange,
    thresholds: &ThresholdsChange,
    tags: &[String],
) -> ApiResult<urltargets::Model> {
    let url = validate_url(url)?;
    let frequency = validate_frequency(frequency)?;
    let check = Check::default()
        .changed(check, &[])
        .map_err(ApiError::BadInput)?;
    let settings = Settings {
        thresholds: OwnThresholds::default().changed(thresholds)?,
        tags: validate_tags(tags)?,
    };
    insert(db, &url, frequency, false, check, settings).await
}

/// Stores a new, already validated target; a (url, frequency) pair that exists is a user error.
async fn insert(
    db: &impl sea_orm::ConnectionTrait,
    url: &str,
    frequency: Frequency,
    paused: bool,
    check: Check,
    settings: Settings,
) -> ApiResult<urltargets::Model> {
    let mut model = urltargets::ActiveModel {
        urltarget: Set(url.to_owned()),
        monitor_frequency: Set(frequency),
        created_at: Set(chrono::Utc::now()),
        paused: Set(paused),
        ..Default::default()
    };
    check.set_on(&mut model);
    settings.set_on(&mut model);
    model
        .insert(db)
        .await
        .map_err(|e| conflict(e, url, frequency))
}

/// Changes what is given of a target; `check` changes the fields of its check it gives (a header
/// without a value keeps the value stored under its name).
/// What `update` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TargetChange {
    pub url: Option<String>,
    pub frequency: Option<i32>,
    pub paused: Option<bool>,
    pub check: Option<CheckChange>,
    pub thresholds: Option<ThresholdsChange>,
    /// The whole list of tags.
    pub tags: Option<Vec<String>>,
}

pub async fn update(
    db: &DatabaseConnection,
    id: i32,
    change: &TargetChange,
) -> ApiResult<urltargets::Model> {
    let (url, frequency, paused) = (change.url.as_deref(), change.frequency, change.paused);
    let check = change.check.as_ref();
    let url = url.map(validate_url).transpose()?;
    let frequency = frequency.map(validate_frequency).transpose()?;
    let tags = change.tags.as_deref().map(validate_tags).transpose()?;
    let current = get(db, id).await?;
    let thresholds = change
        .thresholds
        .as_ref()
        .map(|change| OwnThresholds::of(&current).changed(change))
        .transpose()?;
    let change = check;
    let check = change
        .map(|change| Check::of(&current).changed(change, &current.request_headers.0))
        .transpose()
        .map_err(ApiError::BadInput)?;
    // After the check itself is known to be valid, so a bad entry is named first.
    carries_headers_elsewhere(&current, url.as_deref(), change)?;
    let mut model: urltargets::ActiveModel = current.clone().into();
    if let Some(check) = check {
        check.set_on(&mut model);
    }
    if let Some(thresholds) = thresholds {
        thresholds.set_on(&mut model);
    }
    if let Some(tags) = tags {
        model.tags = Set(entity::maintenance::Tags(tags));
    }
    if let Some(url) = &url {
        model.urltarget = Set(url.clone());
    }
    if let Some(frequency) = frequency {
        model.monitor_frequency = Set(frequency);
    }
    if let Some(paused) = paused {
        model.paused = Set(paused);
        if current.paused && !paused {
            model.resumed_at = Set(Some(chrono::Utc::now()));
        }
    }
    let was_paused = current.paused;
    let shown_url = url.unwrap_or(current.urltarget);
    let shown_frequency = frequency.unwrap_or(current.monitor_frequency);
    let updated = model
        .update(db)
        .await
        .map_err(|e| conflict(e, &shown_url, shown_frequency))?;
    if updated.paused != was_paused {
        paused_or_resumed(db, updated.urltargets_pk, updated.paused).await?;
    }
    Ok(updated)
}

/// A target was paused or resumed: its state changes to PAUSED or back to the one decided,
/// which is announced like the ingest worker's changes (on `pingpipe_states`).
async fn paused_or_resumed(
    db: &impl sea_orm::ConnectionTrait,
    target: i32,
    paused: bool,
) -> ApiResult<()> {
    use sea_orm::{DbBackend, Statement};
    let decided = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT state FROM target_states WHERE urltarget_fk = $1",
            [target.into()],
        ))
        .await?;
    let decided = decided
        .and_then(|row| row.try_get_by_index::<String>(0).ok())
        .and_then(|s| entity::state::State::parse(&s))
        .unwrap_or(entity::state::State::Unknown);
    let (from, to) = if paused {
        (decided, entity::state::State::Paused)
    } else {
        (entity::state::State::Paused, decided)
    };
    let change = entity::state::StateChange {
        target,
        from,
        to,
        since: chrono::Utc::now(),
    };
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [
            entity::channels::STATES.into(),
            entity::channels::state_payloads(&[change]).concat().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Header values are write-only: a change that would send the stored values somewhere else must
/// give them again, with their values (or `[]`) — or whoever may change targets could read them
/// at a server of theirs. That is a move to another origin (scheme, host or port), and a change
/// of trust: verification switched off, or another CA bundle.
fn carries_headers_elsewhere(
    current: &urltargets::Model,
    new_url: Option<&str>,
    check: Option<&CheckChange>,
) -> ApiResult<()> {
    if current.request_headers.0.is_empty() {
        return Ok(());
    }
    let given_anew = check
        .and_then(|c| c.headers.as_ref())
        .is_some_and(|headers| headers.iter().all(|h| h.value.is_some()));
    if given_anew {
        return Ok(());
    }
    let origin = |u: &str| {
        url::Url::parse(u).ok().map(|u| {
            (
                u.scheme().to_owned(),
                u.host_str().map(str::to_owned),
                u.port_or_known_default(),
            )
        })
    };
    let moves = new_url.is_some_and(|u| origin(u) != origin(&current.urltarget));
    let unverified = check.and_then(|c| c.tls_verify) == Some(false) && current.tls_verify;
    let other_bundle = check
        .and_then(|c| c.ca_bundle.as_ref())
        .is_some_and(|bundle| bundle.is_some() && *bundle != current.ca_bundle);
    let why = if moves {
        "the URL moves to another origin"
    } else if unverified || other_bundle {
        "the target trusts other certificates"
    } else {
        return Ok(());
    };
    Err(ApiError::BadInput(format!(
        "check.headers: {why}; give the headers again with their values (stored values never \
         go to another server), or [] to drop them"
    )))
}

/// Removes a target and (by cascade) its results; returns what was removed.
pub async fn remove(db: &DatabaseConnection, id: i32) -> ApiResult<urltargets::Model> {
    let current = get(db, id).await?;
    urltargets::Entity::delete_by_id(id).exec(db).await?;
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_with_clear_messages() {
        assert_eq!(
            validate_url("https://example.test/health").unwrap(),
            "https://example.test/health"
        );
        for (bad, says) in [
            ("not a url", "not a valid URL"),
            ("ftp://example.test/", "http or https"),
            ("file:///etc/passwd", "http or https"),
            ("http://", "not a valid URL"),
        ] {
            let err = validate_url(bad).unwrap_err().message();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let long = format!("https://example.test/{}", "a".repeat(1100));
        assert!(
            validate_url(&long)
                .unwrap_err()
                .message()
                .contains("at most 1024")
        );
    }

    #[test]
    fn frequencies_outside_the_six_are_refused_naming_them() {
        assert!(validate_frequency(5).is_ok());
        let err = validate_frequency(3).unwrap_err();
        assert_eq!(err.code(), "BAD_USER_INPUT");
        assert!(err.message().contains("1, 2, 5, 10, 20 or 30"));
    }
}

/// One entry of a declarative target list.
#[derive(Debug, Clone)]
pub struct Desired {
    pub url: String,
    pub frequency: i32,
    pub paused: bool,
    /// Made to the default check (not to the stored one): the list says the whole check.
    pub check: CheckChange,
    /// Made to the defaults, likewise.
    pub thresholds: ThresholdsChange,
    pub tags: Vec<String>,
}

/// What `apply` did, target by target.
#[derive(Debug, Default)]
pub struct Applied {
    pub added: Vec<urltargets::Model>,
    pub changed: Vec<urltargets::Model>,
    pub removed: Vec<urltargets::Model>,
    pub unchanged: Vec<urltargets::Model>,
}

/// Makes the stored targets equal `desired` (keyed by URL and frequency), in one transaction:
/// adds what is missing, updates `paused` and the check where they differ, and with `prune`
/// removes what the list does not name. Applying the same list again changes nothing (a header
/// without a value keeps the stored one, so it is unchanged too). Every entry is validated
/// before anything is written; a refusal names the entry.
pub async fn apply(
    db: &DatabaseConnection,
    desired: &[Desired],
    prune: bool,
) -> ApiResult<Applied> {
    use sea_orm::TransactionTrait;
    use std::collections::{HashMap, HashSet};
    if desired.len() > MAX_APPLY {
        return Err(ApiError::BadInput(format!(
            "targets lists {} entries; at most {MAX_APPLY} are allowed in one call",
            desired.len()
        )));
    }
    // Keyed by (url, minutes): every lookup below is a hash lookup, so the call is linear.
    let mut wanted: Vec<(String, Frequency, bool, &CheckChange, Settings)> =
        Vec::with_capacity(desired.len());
    let mut listed: HashSet<(String, i32)> = HashSet::with_capacity(desired.len());
    for (i, d) in desired.iter().enumerate() {
        let url = validate_url(&d.url)
            .map_err(|e| ApiError::BadInput(format!("targets[{i}]: {}", e.message())))?;
        let frequency = validate_frequency(d.frequency)
            .map_err(|e| ApiError::BadInput(format!("targets[{i}]: {}", e.message())))?;
        if !listed.insert((url.clone(), frequency.minutes())) {
            return Err(ApiError::BadInput(format!(
                "targets[{i}]: {url} every {} minute(s) is listed twice",
                frequency.minutes()
            )));
        }
        let in_entry = |e: ApiError| ApiError::BadInput(format!("targets[{i}]: {}", e.message()));
        let settings = Settings {
            thresholds: OwnThresholds::default()
                .changed(&d.thresholds)
                .map_err(in_entry)?,
            tags: validate_tags(&d.tags).map_err(in_entry)?,
        };
        wanted.push((url, frequency, d.paused, &d.check, settings));
    }
    let txn = db.begin().await?;
    let existing = urltargets::Entity::find()
        .order_by_asc(urltargets::Column::UrltargetsPk)
        .all(&txn)
        .await?;
    let by_key: HashMap<(&str, i32), &urltargets::Model> = existing
        .iter()
        .map(|t| ((t.urltarget.as_str(), t.monitor_frequency.minutes()), t))
        .collect();
    // Every check is resolved (a header without a value takes the stored one) and validated
    // before the first write: a refusal leaves everything as it was.
    let mut planned = Vec::with_capacity(wanted.len());
    for (i, (url, frequency, paused, change, settings)) in wanted.into_iter().enumerate() {
        let stored = by_key.get(&(url.as_str(), frequency.minutes())).copied();
        let stored_headers = stored.map_or(&[][..], |t| t.request_headers.0.as_slice());
        let check = Check::default()
            .changed(change, stored_headers)
            .map_err(|e| ApiError::BadInput(format!("targets[{i}] ({url}): {e}")))?;
        planned.push((url, frequency, paused, check, settings, stored));
    }
    let mut applied = Applied::default();
    for (url, frequency, paused, check, settings, stored) in planned {
        match stored {
            Some(t)
                if t.paused == paused && Check::of(t) == check && Settings::of(t) == settings =>
            {
                applied.unchanged.push(t.clone());
            }
            Some(t) => {
                let mut model: urltargets::ActiveModel = t.clone().into();
                model.paused = Set(paused);
                check.set_on(&mut model);
                settings.set_on(&mut model);
                if t.paused != paused {
                    if !paused {
                        model.resumed_at = Set(Some(chrono::Utc::now()));
                    }
                    paused_or_resumed(&txn, t.urltargets_pk, paused).await?;
                }
                applied.changed.push(model.update(&txn).await?);
            }
            None => {
                applied
                    .added
                    .push(insert(&txn, &url, frequency, paused, check, settings).await?);
            }
        }
    }
    if prune {
        for t in &existing {
            if !listed.contains(&(t.urltarget.clone(), t.monitor_frequency.minutes())) {
                urltargets::Entity::delete_by_id(t.urltargets_pk)
                    .exec(&txn)
                    .await?;
                applied.removed.push(t.clone());
            }
        }
    }
    txn.commit().await?;
    Ok(applied)
}
