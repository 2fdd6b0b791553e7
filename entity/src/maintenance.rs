//! Maintenance windows and the tags that select targets for them (issue #13). Pure: no I/O, no
//! clock. It guarantees that every value it accepts is well formed (tags, tag filters, cron
//! expressions, time zones, window bounds), that every refusal names the field at fault, and
//! that a recurring window's occurrences follow one written DST rule (see [`Schedule`]).
//!
//! Time zones come from `chrono-tz`, not `jiff`: chrono is already the workspace's time type
//! (SeaORM, async-graphql and the events use it), so a `chrono_tz::Tz` plugs into the
//! `DateTime<Utc>` arithmetic we have, where jiff would add a second date-time vocabulary and
//! conversions at every edge. chrono-tz compiles the IANA database into the binary (release
//! [`chrono_tz::IANA_TZDB_VERSION`]), so results never depend on a machine's
//! `/usr/share/zoneinfo`; its default features run no code generation at build time and pull
//! in only `phf`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;

// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

/// At most this many tags on one target.
pub const MAX_TAGS: usize = 32;

/// `urltargets.tags` (a JSON array of tags, sorted, without repeats).
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    sea_orm::FromJsonQueryResult,
)]
pub struct Tags(pub Vec<String>);
/// A tag's key is at most this long (a DNS label's length).
pub const MAX_TAG_KEY_LEN: usize = 63;
/// A tag's value is at most this long.
pub const MAX_TAG_VALUE_LEN: usize = 128;

const KEY_RULE: &str =
    "a key is 1-63 of a-z, 0-9, '_', '.', '-' (lowercase), starting with a letter or digit";
const VALUE_RULE: &str = "a value is 1-128 of A-Z, a-z, 0-9, '_', '.', '-', '/'";

/// A tag or a target's list of tags that is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("tag {tag:?}: {problem}")]
    Invalid { tag: String, problem: String },
    #[error("a target has at most {MAX_TAGS} tags, got {0}")]
    TooMany(usize),
}

/// Checks one tag: `key` or `key:value`.
///
/// - key: 1 to 63 characters of `a-z 0-9 _ . -`, the first a letter or a digit;
/// - value: 1 to 128 characters of `A-Z a-z 0-9 _ . - /`.
///
/// So a tag has at most one `:` and never a space, comma or `*`, which keeps tag filters and
/// comma-separated lists unambiguous. Nothing is normalised: an upper-case key or a stray space
/// is refused rather than silently changed, so what is stored is what the user typed.
pub fn validate_tag(tag: &str) -> Result<(), TagError> {
    match tag_problem(tag) {
        None => Ok(()),
        Some(problem) => Err(TagError::Invalid {
            tag: tag.to_owned(),
            problem,
        }),
    }
}

/// A target's tags as stored: each one checked, sorted, duplicates dropped (a tag is a set
/// member, so `env:prod` given twice is kept once); at most [`MAX_TAGS`] after that.
pub fn normalize_tags<S: AsRef<str>>(tags: &[S]) -> Result<Vec<String>, TagError> {
    let mut set = BTreeSet::new();
    for tag in tags {
        let tag = tag.as_ref();
        validate_tag(tag)?;
        set.insert(tag.to_owned());
    }
    if set.len() > MAX_TAGS {
        return Err(TagError::TooMany(set.len()));
    }
    Ok(set.into_iter().collect())
}

fn tag_problem(tag: &str) -> Option<String> {
    if tag.is_empty() {
        return Some("a tag cannot be empty".to_owned());
    }
    let (key, value) = match tag.split_once(':') {
        Some((key, value)) => (key, Some(value)),
        None => (tag, None),
    };
    key_problem(key).or_else(|| value.and_then(value_problem))
}

fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some(format!("the key before ':' is empty; {KEY_RULE}"));
    }
    if key.len() > MAX_TAG_KEY_LEN {
        return Some(format!("the key is {} bytes long; {KEY_RULE}", key.len()));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-'))
    {
        return Some(format!("{c:?} is not allowed in the key; {KEY_RULE}"));
    }
    if key.starts_with(['_', '.', '-']) {
        return Some(format!(
            "the key must start with a letter or digit; {KEY_RULE}"
        ));
    }
    None
}

fn value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some(format!("the value after ':' is empty; {VALUE_RULE}"));
    }
    if value.len() > MAX_TAG_VALUE_LEN {
        return Some(format!(
            "the value is {} bytes long; {VALUE_RULE}",
            value.len()
        ));
    }
    value
        .chars()
        .find(|c| !matches!(c, 'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '.' | '-' | '/'))
        .map(|c| format!("{c:?} is not allowed in the value; {VALUE_RULE}"))
}

/// Selects targets by tag. Three forms, nothing else:
///
/// - `key:value` ([`TagFilter::Exact`]): targets with exactly that tag;
/// - `key` ([`TagFilter::Exact`]): targets with the bare tag `key` (not `key:anything`);
/// - `key:*` ([`TagFilter::AnyValue`]): targets with a tag `key:<any value>` (not the bare `key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TagFilter {
    /// A whole tag, bare or with its value.
    Exact(String),
    /// A key: any tag `key:<value>`.
    AnyValue(String),
}

/// A tag filter that is not one of the three forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag filter {filter:?}: {problem}; the accepted forms are key, key:value and key:*")]
pub struct TagFilterError {
    pub filter: String,
    pub problem: String,
}

impl TagFilter {
    /// Parses `key`, `key:value` or `key:*`; anything else (`*`, `key:va*`, `a:b:c`, spaces,
    /// the empty string) is refused with a message that gives the accepted forms.
    pub fn parse(filter: &str) -> Result<Self, TagFilterError> {
        let refuse = |problem: String| TagFilterError {
            filter: filter.to_owned(),
            problem,
        };
        if let Some(key) = filter.strip_suffix(":*") {
            return match key_problem(key) {
                None => Ok(TagFilter::AnyValue(key.to_owned())),
                Some(problem) => Err(refuse(problem)),
            };
        }
        if filter.contains('*') {
            return Err(refuse(
                "'*' may only stand for the whole value, as in key:*".to_owned(),
            ));
        }
        match tag_problem(filter) {
            None => Ok(TagFilter::Exact(filter.to_owned())),
            Some(problem) => Err(refuse(problem)),
        }
    }

    /// Whether a target with these tags is selected.
    pub fn matches(&self, tags: &[String]) -> bool {
        match self {
            TagFilter::Exact(tag) => tags.iter().any(|t| t == tag),
            TagFilter::AnyValue(key) => tags
                .iter()
                .any(|t| t.split_once(':').is_some_and(|(k, _)| k == key)),
        }
    }
}

impl FromStr for TagFilter {
    type Err = TagFilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TagFilter {
    /// The text [`TagFilter::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagFilter::Exact(tag) => f.write_str(tag),
            TagFilter::AnyValue(key) => write!(f, "{key}:*"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cron
// ---------------------------------------------------------------------------------------------

/// A five-field cron expression: minute, hour, day of month, month, day of week, as in
/// crontab(5) of Vixie cron / cronie. Each field takes `*`, numbers, ranges `a-b`, lists
/// `a,b`, steps `*/n` and `a-b/n`; months also `JAN`-`DEC`, weekdays `SUN`-`SAT` (any case);
/// 0 and 7 are both Sunday. When day of month and day of week are both restricted a day
/// matching either one matches; a field is unrestricted when it starts with `*` (so `*/2`
/// counts as unrestricted, as in Vixie cron's `DOM_STAR`/`DOW_STAR` flags).
///
/// Refused: seconds or years (six or seven fields), nicknames (`@daily`, `@reboot`), `L`, `W`,
/// `#`, `?`, a step without `*` or a range before it (`5/15`), backwards ranges, and a day of
/// month that no chosen month has (`0 0 30 2 *`), which would never run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    dom_unrestricted: bool,
    dow_unrestricted: bool,
}

/// A cron expression that is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week), got {0}; seconds and years are not supported"
    )]
    FieldCount(usize),
    #[error("{0:?}: nicknames such as @daily and @reboot are not supported; write the 5 fields")]
    Nickname(String),
    #[error("field {position} ({name}): {message}")]
    Field {
        position: usize,
        name: &'static str,
        message: String,
    },
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    FieldSpec {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    },
    FieldSpec {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    },
];

/// The longest day of each month, February counted in a leap year.
const MONTH_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

impl Cron {
    /// Parses an expression; fields are separated by spaces or tabs.
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let trimmed = expression.trim();
        if trimmed.starts_with('@') {
            return Err(CronError::Nickname(trimmed.to_owned()));
        }
        let fields: Vec<&str> = trimmed.split_ascii_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(CronError::FieldCount(fields.len()));
        };
        let field = |position: usize, text: &str| {
            let spec = &FIELDS[position - 1];
            parse_field(spec, text).map_err(|message| CronError::Field {
                position,
                name: spec.name,
                message,
            })
        };
        let mut days_of_week = field(5, dow)?;
        // 7 is another name for Sunday (0).
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        let cron = Cron {
            source: fields.join(" "),
            minutes: field(1, minute)?,
            hours: field(2, hour)?,
            days_of_month: field(3, dom)?,
            months: field(4, month)?,
            days_of_week,
            dom_unrestricted: dom.starts_with('*'),
            dow_unrestricted: dow.starts_with('*'),
        };
        // With day of week unrestricted, the day of month alone decides; refuse one that no
        // chosen month has rather than accept a window that never opens.
        let reachable = (1..=12u32).any(|m| {
            cron.months & (1 << m) != 0
                && (1..=MONTH_DAYS[m as usize - 1]).any(|d| cron.days_of_month & (1 << d) != 0)
        });
        if !cron.dow_unrestricted || reachable {
            Ok(cron)
        } else {
            Err(CronError::Field {
                position: 3,
                name: "day-of-month",
                message: format!("{dom} never occurs in the chosen months ({month})"),
            })
        }
    }

    /// The expression, its fields separated by single spaces.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    fn matches_day(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.dom_unrestricted || self.dow_unrestricted {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The (hour, minute) pairs of a matching day, earliest first.
    fn times(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..24u32)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(|h| {
                (0..60u32)
                    .filter(|m| self.minutes & (1 << m) != 0)
                    .map(move |m| (h, m))
            })
    }
}

/// One field as a bit set (bit n set = value n allowed).
fn parse_field(spec: &FieldSpec, text: &str) -> Result<u64, String> {
    if text.contains('?') {
        return Err("'?' is not supported; use *".to_owned());
    }
    if text.contains('#') {
        return Err("'#' (nth weekday of the month) is not supported".to_owned());
    }
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{text:?} has an empty list item"));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(spec, step)?)),
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((low, high)) = range.split_once('-') {
            let (low, high) = (parse_value(spec, low)?, parse_value(spec, high)?);
            if low > high {
                return Err(format!("range {range} is backwards"));
            }
            (low, high)
        } else {
            let value = parse_value(spec, range)?;
            if let Some(step) = step {
                return Err(format!(
                    "a step needs * or a range before it: write {value}-{}/{step}",
                    spec.max
                ));
            }
            (value, value)
        };
        for value in (low..=high).step_by(step.unwrap_or(1) as usize) {
            bits |= 1 << value;
        }
    }
    Ok(bits)
}

fn parse_step(spec: &FieldSpec, text: &str) -> Result<u32, String> {
    let span = spec.max - spec.min + 1;
    match text.parse::<u32>() {
        Ok(step) if (1..=span).contains(&step) && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(step)
        }
        _ => Err(format!("step {text:?} must be a number from 1 to {span}")),
    }
}

fn parse_value(spec: &FieldSpec, text: &str) -> Result<u32, String> {
    let range = format!("{}-{}", spec.min, spec.max);
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(value) if (spec.min..=spec.max).contains(&value) => Ok(value),
            _ => Err(format!("{text} is out of range {range}")),
        };
    }
    let upper = text.to_ascii_uppercase();
    if let Some(index) = spec.names.iter().position(|name| *name == upper) {
        return Ok(spec.min + index as u32);
    }
    if upper == "L" || upper == "LW" || (upper.len() > 1 && upper.ends_with(['L', 'W'])) {
        return Err(format!(
            "{text:?}: L and W (last day, nearest weekday) are not supported"
        ));
    }
    match (spec.names.first(), spec.names.last()) {
        (Some(first), Some(last)) => Err(format!(
            "{text:?} is not a number in {range} or a name {first}-{last}"
        )),
        _ => Err(format!("{text:?} is not a number in {range}")),
    }
}

impl FromStr for Cron {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

// ---------------------------------------------------------------------------------------------
// Windows
// ---------------------------------------------------------------------------------------------

/// The longest recurring window. A longer one would cover a weekly schedule end to end, which
/// is a paused target rather than maintenance; the bound also limits how far
/// [`Window::occurrences`] looks back.
pub const MAX_DURATION: TimeDelta = TimeDelta::days(7);
/// [`Window::occurrences`] returns at most this many occurrences, the earliest ones (a minutely
/// window over a week is 10,080); ask again from the last one's start for more.
pub const MAX_OCCURRENCES: usize = 10_000;
/// [`Window::occurrences`] scans at most this many local days (about a hundred years) from
/// `from` minus the duration; later occurrences are not returned.
pub const MAX_SCAN_DAYS: u64 = 36_525;

/// When a window is open.
///
/// A recurring window opens at every local time its cron expression matches in its zone and
/// stays open for its duration (an absolute length: 2 h is 2 h even across a DST change). Each
/// matching local time opens the window once, so `30 2 * * *` opens exactly once every day:
///
/// - a local time in a spring-forward gap (02:30 on the last Sunday of March in Europe/Berlin)
///   is read with the offset in force before the gap, which moves it forward by the gap's length
///   (02:30 CET = 03:30 CEST = 01:30Z); this is RFC 5545 §3.3.5's rule for nonexistent local
///   times and Temporal's `disambiguation: "compatible"`;
/// - a local time that happens twice (02:30 on the last Sunday of October) opens the window at
///   its first, earlier instant (02:30 CEST = 00:30Z), also as RFC 5545 §3.3.5 says; the
///   repeated hour in standard time does not open it again.
///
/// Two local times that land on the same instant (02:30 moved to 03:30 CEST next to a
/// scheduled 03:30) open one occurrence.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Once, over `[from, until)`.
    Once {
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// At every local time `cron` matches in `zone`, for `duration`.
    Recurring {
        cron: Cron,
        zone: Tz,
        duration: TimeDelta,
    },
}

/// Which targets a window covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every target.
    All,
    /// The targets with these ids.
    Targets(Vec<i32>),
    /// The targets that match at least one of these filters.
    Tags(Vec<TagFilter>),
}

/// A maintenance window: while it is open, its targets are in MAINTENANCE.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub schedule: Schedule,
    pub scope: Scope,
}

/// A window that is refused, naming the input field at fault (the GraphQL input's names:
/// `from`, `until`, `cron`, `timeZone`, `duration`, `targetIds`, `tags`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WindowError {
    pub field: &'static str,
    pub message: String,
}

impl WindowError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl Schedule {
    /// A one-off window over `[from, until)`.
    pub fn once(from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Self, WindowError> {
        let schedule = Schedule::Once { from, until };
        schedule.validate()?;
        Ok(schedule)
    }

    /// A recurring window from its inputs: a cron expression, an IANA zone name (exact case,
    /// e.g. `Europe/Berlin`) and a duration.
    pub fn recurring(cron: &str, zone: &str, duration: TimeDelta) -> Result<Self, WindowError> {
        let cron = Cron::parse(cron).map_err(|e| WindowError::new("cron", e.to_string()))?;
        let zone = parse_zone(zone)?;
        let schedule = Schedule::Recurring {
            cron,
            zone,
            duration,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Checks what the types do not: a one-off window ends after it starts; a duration is
    /// positive and at most [`MAX_DURATION`].
    pub fn validate(&self) -> Result<(), WindowError> {
        match self {
            Schedule::Once { from, until } if until <= from => Err(WindowError::new(
                "until",
                format!("must be after from ({until} is not after {from})"),
            )),
            Schedule::Once { .. } => Ok(()),
            Schedule::Recurring { duration, .. } if *duration <= TimeDelta::zero() => {
                Err(WindowError::new("duration", "must be positive"))
            }
            Schedule::Recurring { duration, .. } if *duration > MAX_DURATION => Err(
                WindowError::new("duration", "must be at most 7 days (168 hours)"),
            ),
            Schedule::Recurring { .. } => Ok(()),
        }
    }
}

/// An IANA time zone by its exact name.
pub fn parse_zone(name: &str) -> Result<Tz, WindowError> {
    name.parse::<Tz>().map_err(|_| {
        WindowError::new(
            "timeZone",
            format!("unknown time zone {name:?}; use an IANA name such as Europe/Berlin or UTC"),
        )
    })
}

impl Scope {
    /// Listed targets, sorted, duplicates dropped; at least one.
    pub fn targets(mut ids: Vec<i32>) -> Result<Self, WindowError> {
        ids.sort_unstable();
        ids.dedup();
        let scope = Scope::Targets(ids);
        scope.validate()?;
        Ok(scope)
    }

    /// Targets matching any of these filters (see [`TagFilter::parse`]); at least one.
    pub fn tags<S: AsRef<str>>(filters: &[S]) -> Result<Self, WindowError> {
        let filters = filters
            .iter()
            .map(|f| TagFilter::parse(f.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| WindowError::new("tags", e.to_string()))?;
        let scope = Scope::Tags(filters);
        scope.validate()?;
        Ok(scope)
    }

    /// Checks that a list is not empty and that every filter is one [`TagFilter::parse`]
    /// accepts.
    pub fn validate(&self) -> Result<(), WindowError> {
        match self {
            Scope::All => Ok(()),
            Scope::Targets(ids) if ids.is_empty() => Err(WindowError::new(
                "targetIds",
                "must name at least one target (or choose all targets)",
            )),
            Scope::Targets(_) => Ok(()),
            Scope::Tags(filters) if filters.is_empty() => Err(WindowError::new(
                "tags",
                "must give at least one tag filter (or choose all targets)",
            )),
            Scope::Tags(filters) => filters.iter().try_for_each(|f| {
                TagFilter::parse(&f.to_string())
                    .map(drop)
                    .map_err(|e| WindowError::new("tags", e.to_string()))
            }),
        }
    }

    /// Whether the target with this id and these tags is covered.
    pub fn covers(&self, target_id: i32, tags: &[String]) -> bool {
        match self {
            Scope::All => true,
            Scope::Targets(ids) => ids.contains(&target_id),
            Scope::Tags(filters) => filters.iter().any(|f| f.matches(tags)),
        }
    }
}

impl Window {
    /// A checked window.
    pub fn new(schedule: Schedule, scope: Scope) -> Result<Self, WindowError> {
        let window = Window { schedule, scope };
        window.validate()?;
        Ok(window)
    }

    /// Checks the schedule, then the scope.
    pub fn validate(&self) -> Result<(), WindowError> {
        self.schedule.validate()?;
        self.scope.validate()
    }

    /// Every occurrence `[start, end)` that overlaps `[from, until)`, sorted, including one that
    /// began before `from` and is still open. At most [`MAX_OCCURRENCES`], the earliest, and
    /// none that starts more than [`MAX_SCAN_DAYS`] local days after `from` minus the duration.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if until <= from {
            return Vec::new();
        }
        match &self.schedule {
            Schedule::Once {
                from: start,
                until: end,
            } => {
                if start < end && *start < until && *end > from {
                    vec![(*start, *end)]
                } else {
                    Vec::new()
                }
            }
            Schedule::Recurring {
                cron,
                zone,
                duration,
            } => recurring(cron, *zone, *duration, from, until),
        }
    }

    /// Whether the target with this id and these tags is in this window at `at`.
    pub fn covers(&self, target_id: i32, tags: &[String], at: DateTime<Utc>) -> bool {
        let next = at
            .checked_add_signed(TimeDelta::nanoseconds(1))
            .unwrap_or(at);
        self.scope.covers(target_id, tags) && !self.occurrences(at, next).is_empty()
    }
}

fn recurring(
    cron: &Cron,
    zone: Tz,
    duration: TimeDelta,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let look_back = from
        .checked_sub_signed(duration)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    // UTC dates and a day either side: a UTC offset is less than a day, so no local date
    // outside these can open an occurrence in range. (Local dates of the range's ends could lie
    // beyond chrono's last date.)
    let first = look_back.date_naive();
    let first = first.pred_opt().unwrap_or(first);
    let last = until.date_naive();
    let last = last.succ_opt().unwrap_or(last);
    let mut found = Vec::new();
    let mut full_at = None;
    for (scanned, day) in first.iter_days().take_while(|d| *d <= last).enumerate() {
        if scanned as u64 >= MAX_SCAN_DAYS {
            break;
        }
        // One more day once full: a shifted gap time can sort before its neighbours.
        if full_at.is_some_and(|full| scanned > full) {
            break;
        }
        if !cron.matches_day(day) {
            continue;
        }
        for (hour, minute) in cron.times() {
            let Some(local) = day.and_hms_opt(hour, minute, 0) else {
                continue;
            };
            let start = resolve(zone, local);
            let end = start
                .checked_add_signed(duration)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if start < until && end > from {
                found.push((start, end));
            }
        }
        if full_at.is_none() && found.len() >= MAX_OCCURRENCES {
            full_at = Some(scanned);
        }
    }
    found.sort_unstable();
    found.dedup();
    found.truncate(MAX_OCCURRENCES);
    found
}

/// The instant a local time opens a window (the DST rule on [`Schedule`]).
fn resolve(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        // chrono gives the two instants earliest first.
        LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: read the wall time with the offset of a day before, as Temporal's
            // DisambiguatePossibleEpochNanoseconds does to find the offset before a gap.
            let before = local
                .checked_sub_signed(TimeDelta::days(1))
                .map_or(0, |probe| {
                    zone.offset_from_utc_datetime(&probe)
                        .fix()
                        .local_minus_utc()
                });
            local
                .checked_sub_signed(TimeDelta::seconds(i64::from(before)))
                .unwrap_or(local)
                .and_utc()
        }
    }
}

/// Overlapping or touching intervals joined, empty ones dropped, sorted by start: the time a set
/// of windows covers, to leave out of uptime.
pub fn merge(
    mut intervals: Vec<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    intervals.retain(|(start, end)| start < end);
    intervals.sort_unstable();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn recurring_window(cron: &str, zone: &str, duration: TimeDelta) -> Window {
        Window::new(
            Schedule::recurring(cron, zone, duration).unwrap(),
            Scope::All,
        )
        .unwrap()
    }

    fn starts(window: &Window, from: &str, until: &str) -> Vec<DateTime<Utc>> {
        window
            .occurrences(utc(from), utc(until))
            .into_iter()
            .map(|(start, _)| start)
            .collect()
    }

    // --- tags ---

    #[test]
    fn validate_tag_accepts_bare_and_valued_tags() {
        for tag in [
            "team:payments",
            "env:prod",
            "critical",
            "k8s.cluster-1:eu_West/1.2",
            "a",
        ] {
            validate_tag(tag).unwrap();
        }
        validate_tag(&format!("{}:{}", "k".repeat(63), "V".repeat(128))).unwrap();
    }

    #[test]
    fn validate_tag_refuses_malformed_tags_saying_why() {
        let cases = [
            ("", "cannot be empty"),
            ("Team:payments", "'T' is not allowed in the key"),
            ("team :payments", "' ' is not allowed in the key"),
            (":prod", "the key before ':' is empty"),
            ("env:", "the value after ':' is empty"),
            ("a:b:c", "':' is not allowed in the value"),
            ("env:prod,eu", "',' is not allowed in the value"),
            ("env:*", "'*' is not allowed in the value"),
            ("-env", "must start with a letter or digit"),
        ];
        for (tag, expected) in cases {
            let err = validate_tag(tag).unwrap_err().to_string();
            assert!(err.contains(expected), "{tag:?}: {err}");
            assert!(err.contains(&format!("{tag:?}")), "{tag:?}: {err}");
        }
        let long_key = format!("{}:x", "k".repeat(64));
        assert!(validate_tag(&long_key).is_err());
        let long_value = format!("k:{}", "v".repeat(129));
        assert!(validate_tag(&long_value).is_err());
    }

    #[test]
    fn normalize_tags_sorts_and_dedups_within_the_limit() {
        assert_eq!(
            normalize_tags(&["env:prod", "team:payments", "env:prod"]).unwrap(),
            tags(&["env:prod", "team:payments"])
        );
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        assert_eq!(normalize_tags(&many), Err(TagError::TooMany(33)));
        assert!(normalize_tags(&many[..32]).is_ok());
        assert!(normalize_tags(&["ok", "Not ok"]).is_err());
    }

    // --- tag filters ---

    #[test]
    fn tag_filter_parses_the_three_forms() {
        assert_eq!(
            TagFilter::parse("env:prod").unwrap(),
            TagFilter::Exact("env:prod".into())
        );
        assert_eq!(
            TagFilter::parse("critical").unwrap(),
            TagFilter::Exact("critical".into())
        );
        assert_eq!(
            TagFilter::parse("team:*").unwrap(),
            TagFilter::AnyValue("team".into())
        );
        for text in ["env:prod", "critical", "team:*"] {
            assert_eq!(TagFilter::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn tag_filter_refuses_unknown_syntax_naming_the_forms() {
        for text in [
            "",
            "*",
            "*:prod",
            "key:va*",
            "a:b:c",
            "env: prod",
            " env",
            "Env:*",
            "k*",
            ":*",
        ] {
            let err = TagFilter::parse(text).unwrap_err().to_string();
            assert!(
                err.contains("the accepted forms are key, key:value and key:*"),
                "{text:?}: {err}"
            );
            assert!(err.contains(&format!("{text:?}")), "{text:?}: {err}");
        }
    }

    #[test]
    fn tag_filter_matches_exactly_what_it_says() {
        let target = tags(&["team:payments", "env:prod", "critical"]);
        let matches = |f: &str| TagFilter::parse(f).unwrap().matches(&target);
        assert!(matches("team:payments"));
        assert!(!matches("team:search"));
        assert!(matches("team:*"));
        assert!(matches("critical"));
        assert!(!matches("team"), "a bare filter needs the bare tag");
        assert!(!matches("critical:*"), "key:* needs a value");
        assert!(!matches("region:*"));
        assert!(!TagFilter::parse("team:*").unwrap().matches(&[]));
    }

    // --- cron ---

    #[test]
    fn cron_accepts_lists_ranges_steps_and_names() {
        let cron = Cron::parse("*/15 9-17/2 1,15 jan-Mar,DEC mon-FRI").unwrap();
        assert_eq!(cron.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(cron.hours, 1 << 9 | 1 << 11 | 1 << 13 | 1 << 15 | 1 << 17);
        assert_eq!(cron.days_of_month, 1 << 1 | 1 << 15);
        assert_eq!(cron.months, 1 << 1 | 1 << 2 | 1 << 3 | 1 << 12);
        assert_eq!(cron.days_of_week, 0b011_1110);
        assert_eq!(cron.to_string(), "*/15 9-17/2 1,15 jan-Mar,DEC mon-FRI");
        assert_eq!(
            Cron::parse(" 0  2\t* * SUN ").unwrap().as_str(),
            "0 2 * * SUN"
        );
    }

    #[test]
    fn cron_reads_0_and_7_as_sunday() {
        let zero = Cron::parse("0 0 * * 0").unwrap();
        let seven = Cron::parse("0 0 * * 7").unwrap();
        let sun = Cron::parse("0 0 * * sun").unwrap();
        assert_eq!(zero.days_of_week, 1);
        assert_eq!(seven.days_of_week, 1);
        assert_eq!(sun.days_of_week, 1);
        assert_eq!(Cron::parse("0 0 * * 5-7").unwrap().days_of_week, 0b110_0001);
    }

    #[test]
    fn cron_refuses_bad_expressions_saying_what_is_wrong() {
        let cases = [
            ("0 25 * * *", "field 2 (hour): 25 is out of range 0-23"),
            ("60 * * * *", "field 1 (minute): 60 is out of range 0-59"),
            (
                "0 0 0 * *",
                "field 3 (day-of-month): 0 is out of range 1-31",
            ),
            ("0 0 * 13 *", "field 4 (month): 13 is out of range 1-12"),
            ("0 0 * * 8", "field 5 (day-of-week): 8 is out of range 0-7"),
            ("0 0 0 * * *", "expected 5 fields"),
            ("0 0 * *", "got 4"),
            ("", "got 0"),
            ("@reboot", "nicknames"),
            ("@daily", "nicknames"),
            ("0 0 L * *", "L and W"),
            ("0 0 15W * *", "L and W"),
            ("0 0 * * 5L", "L and W"),
            ("0 0 * * MON#2", "'#'"),
            ("0 0 ? * MON", "'?'"),
            ("0 0 * JANUARY *", "not a number in 1-12 or a name JAN-DEC"),
            ("0 0 * MON *", "field 4 (month)"),
            ("0 0 * * JAN", "field 5 (day-of-week)"),
            ("0 17-9 * * *", "range 17-9 is backwards"),
            ("*/0 * * * *", "step \"0\" must be a number from 1 to 60"),
            (
                "5/15 * * * *",
                "a step needs * or a range before it: write 5-59/15",
            ),
            ("1,,2 * * * *", "empty list item"),
            ("-1 * * * *", "field 1 (minute)"),
            ("0 0 30 2 *", "field 3 (day-of-month): 30 never occurs"),
            ("0 0 31 4,6 *", "never occurs"),
        ];
        for (expression, expected) in cases {
            let err = Cron::parse(expression).unwrap_err().to_string();
            assert!(err.contains(expected), "{expression:?}: {err}");
        }
        // Reachable once in four years, or through the day of week: accepted.
        Cron::parse("0 0 29 2 *").unwrap();
        Cron::parse("0 0 30 2 MON").unwrap();
    }

    #[test]
    fn cron_matches_either_day_field_when_both_are_restricted() {
        // The 13th (a Monday in September 2027) or any Friday.
        let window = recurring_window("0 12 13 * FRI", "UTC", TimeDelta::hours(1));
        let days: Vec<u32> = starts(&window, "2027-09-01T00:00:00Z", "2027-10-01T00:00:00Z")
            .iter()
            .map(|s| s.day())
            .collect();
        assert_eq!(days, [3, 10, 13, 17, 24]);
    }

    #[test]
    fn cron_matches_both_day_fields_when_one_starts_with_a_star() {
        // Vixie cron: `*/2` counts as unrestricted, so odd days AND Mondays.
        let window = recurring_window("0 0 */2 * MON", "UTC", TimeDelta::hours(1));
        let days: Vec<u32> = starts(&window, "2027-09-01T00:00:00Z", "2027-10-01T00:00:00Z")
            .iter()
            .map(|s| s.day())
            .collect();
        assert_eq!(days, [13, 27]);
    }

    // --- windows ---

    #[test]
    fn occurrences_happen_once_a_day_across_spring_forward() {
        let window = recurring_window("30 2 * * *", "Europe/Berlin", TimeDelta::hours(1));
        let found = window.occurrences(utc("2027-03-26T00:00:00Z"), utc("2027-04-01T00:00:00Z"));
        let expected: Vec<_> = [
            "2027-03-26T01:30:00Z", // 02:30 CET
            "2027-03-27T01:30:00Z", // 02:30 CET
            "2027-03-28T01:30:00Z", // 02:30 does not exist: 03:30 CEST
            "2027-03-29T00:30:00Z", // 02:30 CEST
            "2027-03-30T00:30:00Z",
            "2027-03-31T00:30:00Z",
        ]
        .iter()
        .map(|s| (utc(s), utc(s) + TimeDelta::hours(1)))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn occurrences_happen_once_a_day_across_fall_back() {
        let window = recurring_window("30 2 * * *", "Europe/Berlin", TimeDelta::minutes(30));
        assert_eq!(
            starts(&window, "2027-10-29T00:00:00Z", "2027-11-03T00:00:00Z"),
            [
                utc("2027-10-29T00:30:00Z"), // 02:30 CEST
                utc("2027-10-30T00:30:00Z"), // 02:30 CEST
                utc("2027-10-31T00:30:00Z"), // 02:30 happens twice: the first, CEST
                utc("2027-11-01T01:30:00Z"), // 02:30 CET
                utc("2027-11-02T01:30:00Z"),
            ]
        );
    }

    #[test]
    fn occurrences_of_a_sunday_window_last_two_hours_across_dst() {
        let window = recurring_window("0 2 * * SUN", "Europe/Berlin", TimeDelta::hours(2));
        let found = window.occurrences(utc("2027-03-15T00:00:00Z"), utc("2027-04-10T00:00:00Z"));
        assert_eq!(
            found,
            [
                (utc("2027-03-21T01:00:00Z"), utc("2027-03-21T03:00:00Z")),
                // 02:00 does not exist on the 28th: 03:00 CEST.
                (utc("2027-03-28T01:00:00Z"), utc("2027-03-28T03:00:00Z")),
                (utc("2027-04-04T00:00:00Z"), utc("2027-04-04T02:00:00Z")),
            ]
        );
    }

    #[test]
    fn occurrences_include_one_that_started_before_from() {
        let window = recurring_window("0 2 * * SUN", "Europe/Berlin", TimeDelta::hours(2));
        assert_eq!(
            window.occurrences(utc("2027-04-04T01:00:00Z"), utc("2027-04-04T01:10:00Z")),
            [(utc("2027-04-04T00:00:00Z"), utc("2027-04-04T02:00:00Z"))]
        );
        // Ended exactly at `from`: half-open, so not included.
        assert!(
            window
                .occurrences(utc("2027-04-04T02:00:00Z"), utc("2027-04-04T03:00:00Z"))
                .is_empty()
        );
    }

    #[test]
    fn occurrences_merge_local_times_that_land_on_one_instant() {
        // 02:30 in the gap becomes 03:30 CEST, which 03:30 also names.
        let window = recurring_window("30 2,3 * * *", "Europe/Berlin", TimeDelta::minutes(10));
        assert_eq!(
            starts(&window, "2027-03-28T00:00:00Z", "2027-03-29T00:00:00Z"),
            [utc("2027-03-28T01:30:00Z")]
        );
    }

    #[test]
    fn occurrences_stop_at_the_bound_when_the_range_is_huge() {
        let window = recurring_window("* * * * *", "UTC", TimeDelta::minutes(1));
        let found = window.occurrences(utc("2027-01-01T00:00:00Z"), utc("2127-01-01T00:00:00Z"));
        assert_eq!(found.len(), MAX_OCCURRENCES);
        assert_eq!(found[0].0, utc("2027-01-01T00:00:00Z"));
        assert!(found.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn occurrences_do_not_overflow_at_the_ends_of_time() {
        for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"] {
            let window = recurring_window("0 0 * * *", zone, TimeDelta::days(7));
            let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
            assert!(!window.occurrences(min, max).is_empty(), "{zone}");
            let near_end = max - TimeDelta::days(3);
            assert!(!window.occurrences(near_end, max).is_empty(), "{zone}");
            assert!(window.covers(1, &[], near_end), "{zone}");
        }
    }

    #[test]
    fn occurrences_of_a_one_off_window_overlap_the_range() {
        let schedule =
            Schedule::once(utc("2027-05-01T10:00:00Z"), utc("2027-05-01T12:00:00Z")).unwrap();
        let window = Window::new(schedule, Scope::All).unwrap();
        let once = (utc("2027-05-01T10:00:00Z"), utc("2027-05-01T12:00:00Z"));
        assert_eq!(
            window.occurrences(utc("2027-05-01T11:00:00Z"), utc("2027-05-02T00:00:00Z")),
            [once]
        );
        assert!(
            window
                .occurrences(utc("2027-05-01T12:00:00Z"), utc("2027-05-02T00:00:00Z"))
                .is_empty()
        );
        assert!(
            window
                .occurrences(utc("2027-05-01T11:00:00Z"), utc("2027-05-01T11:00:00Z"))
                .is_empty()
        );
    }

    #[test]
    fn covers_needs_both_the_scope_and_an_open_occurrence() {
        let schedule =
            Schedule::recurring("0 2 * * SUN", "Europe/Berlin", TimeDelta::hours(2)).unwrap();
        let window = Window::new(schedule, Scope::tags(&["team:payments"]).unwrap()).unwrap();
        let payments = tags(&["team:payments", "env:prod"]);
        assert!(window.covers(7, &payments, utc("2027-04-04T00:00:00Z")));
        assert!(window.covers(7, &payments, utc("2027-04-04T01:59:59Z")));
        assert!(!window.covers(7, &payments, utc("2027-04-04T02:00:00Z")));
        assert!(!window.covers(7, &tags(&["team:search"]), utc("2027-04-04T01:00:00Z")));

        let listed = Window {
            scope: Scope::targets(vec![3, 7, 3]).unwrap(),
            ..window
        };
        assert_eq!(listed.scope, Scope::Targets(vec![3, 7]));
        assert!(listed.covers(7, &[], utc("2027-04-04T01:00:00Z")));
        assert!(!listed.covers(8, &payments, utc("2027-04-04T01:00:00Z")));
    }

    #[test]
    fn window_inputs_are_refused_naming_the_field() {
        let hour = TimeDelta::hours(1);
        let at = utc("2027-05-01T10:00:00Z");
        let cases = [
            (
                Schedule::once(at, at - hour).map(drop),
                "until: must be after from",
            ),
            (
                Schedule::once(at, at).map(drop),
                "until: must be after from",
            ),
            (
                Schedule::recurring("0 25 * * *", "UTC", hour).map(drop),
                "cron: field 2 (hour): 25 is out of range 0-23",
            ),
            (
                Schedule::recurring("0 2 * * *", "Europe/Berln", hour).map(drop),
                "timeZone: unknown time zone \"Europe/Berln\"",
            ),
            (
                Schedule::recurring("0 2 * * *", "europe/berlin", hour).map(drop),
                "timeZone: unknown time zone",
            ),
            (
                Schedule::recurring("0 2 * * *", "UTC", TimeDelta::zero()).map(drop),
                "duration: must be positive",
            ),
            (
                Schedule::recurring("0 2 * * *", "UTC", -hour).map(drop),
                "duration: must be positive",
            ),
            (
                Schedule::recurring("0 2 * * *", "UTC", TimeDelta::days(7) + hour).map(drop),
                "duration: must be at most 7 days",
            ),
            (
                Scope::targets(vec![]).map(drop),
                "targetIds: must name at least one",
            ),
            (
                Scope::tags::<&str>(&[]).map(drop),
                "tags: must give at least one",
            ),
            (
                Scope::tags(&["env:prod", "a:b:c"]).map(drop),
                "tags: tag filter \"a:b:c\"",
            ),
            (
                Window {
                    schedule: Schedule::Once {
                        from: at,
                        until: at,
                    },
                    scope: Scope::All,
                }
                .validate(),
                "until: must be after from",
            ),
            (
                Window {
                    schedule: Schedule::Once {
                        from: at,
                        until: at + hour,
                    },
                    scope: Scope::Tags(vec![TagFilter::Exact("bad tag".into())]),
                }
                .validate(),
                "tags: tag filter \"bad tag\"",
            ),
        ];
        for (result, expected) in cases {
            let err = result.unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err}");
        }
        assert!(Schedule::recurring("0 2 * * *", "UTC", TimeDelta::days(7)).is_ok());
    }

    #[test]
    fn merge_joins_overlapping_and_touching_intervals() {
        let t = |h: u32| utc(&format!("2027-05-01T{h:02}:00:00Z"));
        assert_eq!(
            merge(vec![
                (t(5), t(7)),
                (t(1), t(3)),
                (t(2), t(4)),
                (t(4), t(5)),
                (t(9), t(10)),
                (t(8), t(8)),
                (t(12), t(11)),
                (t(9), t(9) + TimeDelta::minutes(30)),
            ]),
            [(t(1), t(7)), (t(9), t(10))]
        );
        assert!(merge(Vec::new()).is_empty());
    }
}
