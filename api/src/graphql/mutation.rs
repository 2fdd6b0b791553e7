//! Mutations. Each needs a valid API token (see `auth.rs`).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use sea_orm::DatabaseConnection;

use super::check::{CheckInput, change_of};
use super::notify::{
    ChannelApplyReport, ChannelInput, Delivery, Directory, NotificationChannel, NotificationRoute,
    NotifySettings, RouteInput, TestResult, channel_node, parse_notify_id, route_node,
};
use super::states::{RebuildReport, ThresholdsInput, thresholds_change};
use super::status::{StatusPage, StatusPageInput, parse_page_id};
use super::types::{Target, parse_id};
use super::windows::{
    MaintenanceWindow, MaintenanceWindowInput, WindowApplyReport, parse_window_id,
};
use crate::auth::Caller;
use crate::service::{notify, status, windows};
use async_graphql::ErrorExtensions;

use crate::error::{ApiError, IntoGql};
use crate::service::targets;

pub struct Mutation;

/// One target of a declarative list.
#[derive(InputObject)]
pub struct TargetInput {
    pub url: String,
    /// Minutes: 1, 2, 5, 10, 20 or 30.
    pub frequency: i32,
    #[graphql(default)]
    pub paused: bool,
    /// The whole check (omitted: the default check); it replaces the stored one, and one that
    /// differs counts the target as changed. A header without a value keeps the stored one.
    pub check: Option<CheckInput>,
    /// Its own thresholds (omitted or null fields: the configured defaults).
    pub thresholds: Option<ThresholdsInput>,
    /// Its tags (`key` or `key:value`); omitted: none.
    #[graphql(default)]
    pub tags: Vec<String>,
}

/// What `applyTargets` did.
#[derive(SimpleObject)]
pub struct ApplyReport {
    pub added: Vec<Target>,
    pub changed: Vec<Target>,
    pub removed: Vec<Target>,
    pub unchanged: Vec<Target>,
}

/// Refuses a caller without a valid token (UNAUTHENTICATED).
pub(crate) fn require_token(ctx: &Context<'_>) -> async_graphql::Result<()> {
    match ctx.data_opt::<Caller>() {
        Some(Caller { authorized: true }) => Ok(()),
        _ => Err(ApiError::Unauthenticated.extend()),
    }
}

#[Object]
impl Mutation {
    /// Starts watching `url` every `frequency` minutes (1, 2, 5, 10, 20 or 30), with the
    /// default check changed by `check`.
    async fn add_target(
        &self,
        ctx: &Context<'_>,
        url: String,
        frequency: i32,
        check: Option<CheckInput>,
        thresholds: Option<ThresholdsInput>,
        #[graphql(default)] tags: Vec<String>,
    ) -> async_graphql::Result<Target> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let thresholds = thresholds_change(thresholds);
        let model = targets::add(db, &url, frequency, &change_of(check), &thresholds, &tags)
            .await
            .gql()?;
        Ok(Target::one(db, model))
    }

    /// Changes a target's URL, frequency, paused state, check, thresholds or tags (the whole
    /// list); omitted fields (in `check` and `thresholds` too) stay as they are, and null there
    /// resets a field.
    #[allow(clippy::too_many_arguments)]
    async fn update_target(
        &self,
        ctx: &Context<'_>,
        id: ID,
        url: Option<String>,
        frequency: Option<i32>,
        paused: Option<bool>,
        check: Option<CheckInput>,
        thresholds: Option<ThresholdsInput>,
        tags: Option<Vec<String>>,
    ) -> async_graphql::Result<Target> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_id(&id).gql()?;
        let change = targets::TargetChange {
            url,
            frequency,
            paused,
            check: check.map(Into::into),
            thresholds: thresholds.map(Into::into),
            tags,
        };
        let model = targets::update(db, id, &change).await.gql()?;
        Ok(Target::one(db, model))
    }

    /// Stops watching a target and deletes its results; returns the target as it was.
    async fn remove_target(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Target> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let model = targets::remove(db, parse_id(&id).gql()?).await.gql()?;
        Ok(Target::one(db, model))
    }

    /// Monitoring as code: makes the stored targets equal `targets` (keyed by URL and
    /// frequency) in one transaction — adds what is missing, sets `paused` and the check where
    /// they differ and,
    /// with `prune`, removes targets the list does not name. Applying the same list twice
    /// changes nothing the second time.
    async fn apply_targets(
        &self,
        ctx: &Context<'_>,
        targets: Vec<TargetInput>,
        #[graphql(default)] prune: bool,
    ) -> async_graphql::Result<ApplyReport> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let desired: Vec<targets::Desired> = targets
            .into_iter()
            .map(|t| targets::Desired {
                url: t.url,
                frequency: t.frequency,
                paused: t.paused,
                check: change_of(t.check),
                thresholds: thresholds_change(t.thresholds),
                tags: t.tags,
            })
            .collect();
        let applied = targets::apply(db, &desired, prune).await.gql()?;
        let wrap = |v: Vec<entity::urltargets::Model>| Target::list(db, v);
        Ok(ApplyReport {
            added: wrap(applied.added),
            changed: wrap(applied.changed),
            removed: wrap(applied.removed),
            unchanged: wrap(applied.unchanged),
        })
    }

    /// Recomputes target states and incidents from the stored results with the thresholds as
    /// they are now (after changing them, say): incidents opened from `since` on (by default
    /// every stored result) are replaced by what the results decide, an incident still open at
    /// `since` is resolved again from them; the states are the targets' current ones. Of the
    /// targets `targetIds` (by default all). Safe while results stream in.
    async fn rebuild_states(
        &self,
        ctx: &Context<'_>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        target_ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<RebuildReport> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let period = crate::service::results::Filter::new(None, since, None).gql()?;
        let targets = target_ids
            .map(|ids| ids.iter().map(parse_id).collect::<Result<Vec<_>, _>>())
            .transpose()
            .gql()?;
        let defaults = *ctx.data::<entity::state::Thresholds>()?;
        let rebuilt = crate::service::states::rebuild(db, period.since, targets, defaults)
            .await
            .gql()?;
        Ok(RebuildReport(rebuilt))
    }

    /// Adds a status page.
    async fn add_status_page(
        &self,
        ctx: &Context<'_>,
        page: StatusPageInput,
    ) -> async_graphql::Result<StatusPage> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let spec = page.spec().gql()?;
        Ok(StatusPage(status::add(db, &spec).await.gql()?))
    }

    /// Replaces a status page with `page` (the whole page; its slug may change).
    async fn update_status_page(
        &self,
        ctx: &Context<'_>,
        id: ID,
        page: StatusPageInput,
    ) -> async_graphql::Result<StatusPage> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_page_id(&id).gql()?;
        let spec = page.spec().gql()?;
        Ok(StatusPage(status::update(db, id, &spec).await.gql()?))
    }

    /// Removes a status page; returns it as it was.
    async fn remove_status_page(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<StatusPage> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_page_id(&id).gql()?;
        Ok(StatusPage(status::remove(db, id).await.gql()?))
    }

    /// Adds a maintenance window.
    async fn add_maintenance_window(
        &self,
        ctx: &Context<'_>,
        window: MaintenanceWindowInput,
    ) -> async_graphql::Result<MaintenanceWindow> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let spec = window.spec().gql()?;
        Ok(MaintenanceWindow(windows::add(db, &spec).await.gql()?))
    }

    /// Replaces a maintenance window with `window` (the whole window).
    async fn update_maintenance_window(
        &self,
        ctx: &Context<'_>,
        id: ID,
        window: MaintenanceWindowInput,
    ) -> async_graphql::Result<MaintenanceWindow> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_window_id(&id).gql()?;
        let spec = window.spec().gql()?;
        Ok(MaintenanceWindow(
            windows::update(db, id, &spec).await.gql()?,
        ))
    }

    /// Removes a maintenance window; returns it as it was.
    async fn remove_maintenance_window(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<MaintenanceWindow> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_window_id(&id).gql()?;
        Ok(MaintenanceWindow(windows::remove(db, id).await.gql()?))
    }

    /// Maintenance windows as code, beside `applyTargets`: makes the stored windows equal
    /// `windows` (keyed by name) in one transaction; with `prune`, removes those it does not
    /// name. Applying the same list twice changes nothing the second time.
    async fn apply_maintenance_windows(
        &self,
        ctx: &Context<'_>,
        windows: Vec<MaintenanceWindowInput>,
        #[graphql(default)] prune: bool,
    ) -> async_graphql::Result<WindowApplyReport> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let specs = windows
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                w.spec()
                    .map_err(|e| ApiError::BadInput(format!("windows[{i}]: {}", e.message())))
            })
            .collect::<Result<Vec<_>, _>>()
            .gql()?;
        let applied = windows::apply(db, &specs, prune).await.gql()?;
        let wrap = |v: Vec<states::StoredWindow>| v.into_iter().map(MaintenanceWindow).collect();
        Ok(WindowApplyReport {
            added: wrap(applied.added),
            changed: wrap(applied.changed),
            removed: wrap(applied.removed),
            unchanged: wrap(applied.unchanged),
        })
    }

    /// Adds a notification channel.
    async fn create_channel(
        &self,
        ctx: &Context<'_>,
        input: ChannelInput,
    ) -> async_graphql::Result<NotificationChannel> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let spec = input.spec().gql()?;
        let row = notify::add_channel(db, &spec).await.gql()?;
        channel_node(db, row.id).await.gql()
    }

    /// Replaces a channel with `input` (the whole channel); the secrets `input` leaves out keep
    /// their stored values, unless the kind changes (then the old kind's secrets are dropped).
    async fn update_channel(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ChannelInput,
    ) -> async_graphql::Result<NotificationChannel> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_notify_id(&id, "id").gql()?;
        let spec = input.spec().gql()?;
        notify::update_channel(db, id, &spec).await.gql()?;
        channel_node(db, id).await.gql()
    }

    /// Removes a channel, with its routes and its delivery log; returns it as it was.
    async fn delete_channel(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<NotificationChannel> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_notify_id(&id, "id").gql()?;
        let row = notify::remove_channel(db, id).await.gql()?;
        Ok(Directory::of_removed(vec![row])
            .channel(id)
            .expect("the directory holds it"))
    }

    /// Channels as code, beside `applyMaintenanceWindows`: makes the stored channels equal
    /// `channels` (keyed by name) in one transaction; with `prune`, removes those it does not
    /// name (with their routes). Secrets left out keep their stored values, so a list without
    /// secrets can be applied again and again. Applying the same list twice changes nothing
    /// the second time.
    async fn apply_channels(
        &self,
        ctx: &Context<'_>,
        channels: Vec<ChannelInput>,
        #[graphql(default)] prune: bool,
    ) -> async_graphql::Result<ChannelApplyReport> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let specs = channels
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                c.spec()
                    .map_err(|e| ApiError::BadInput(format!("channels[{i}]: {}", e.message())))
            })
            .collect::<Result<Vec<_>, _>>()
            .gql()?;
        let applied = notify::apply_channels(db, &specs, prune).await.gql()?;
        let dir = Directory::load(db).await.gql()?;
        let removed = Directory::of_removed(applied.removed);
        let wrap = |rows: Vec<notify::ChannelRow>| {
            rows.iter()
                .filter_map(|r| dir.channel(r.id))
                .collect::<Vec<_>>()
        };
        Ok(ChannelApplyReport {
            added: wrap(applied.added),
            changed: wrap(applied.changed),
            removed: removed.all_channels(),
            unchanged: wrap(applied.unchanged),
        })
    }

    /// Adds a notification route.
    async fn create_route(
        &self,
        ctx: &Context<'_>,
        input: RouteInput,
    ) -> async_graphql::Result<NotificationRoute> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let spec = input.spec().gql()?;
        let row = notify::add_route(db, &spec).await.gql()?;
        route_node(db, row.id).await.gql()
    }

    /// Replaces a route with `input` (the whole route).
    async fn update_route(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: RouteInput,
    ) -> async_graphql::Result<NotificationRoute> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_notify_id(&id, "id").gql()?;
        let spec = input.spec().gql()?;
        notify::update_route(db, id, &spec).await.gql()?;
        route_node(db, id).await.gql()
    }

    /// Removes a route; returns it as it was.
    async fn delete_route(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<NotificationRoute> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_notify_id(&id, "id").gql()?;
        let row = notify::remove_route(db, id).await.gql()?;
        let dir = Directory {
            channels: notify::channels(db).await.gql()?,
            routes: vec![row],
        };
        Ok(std::sync::Arc::new(dir)
            .route(id)
            .expect("the directory holds it"))
    }

    /// Sends a test message to a channel now (one attempt, at most 10 s) and logs it as a
    /// delivery (`test: true`, delivered or failed, never retried); returns the receiver's
    /// answer.
    async fn test_channel(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TestResult> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let settings = ctx.data::<NotifySettings>()?;
        let id = parse_notify_id(&id, "id").gql()?;
        let tested = notify::test_channel(db, id, settings.test_timeout, &settings.public_url)
            .await
            .gql()?;
        Ok(TestResult {
            delivered: tested.sent.verdict == worker_notify::send::Verdict::Delivered,
            status: tested.sent.status,
            answer: tested.sent.answer,
            error: tested.sent.error,
            delivery: Delivery::one(db, tested.delivery),
        })
    }

    /// Sends a delivered or failed delivery again: pending, due now, tried for at least 24 h
    /// more. It keeps its message id (the same message): a receiver that drops repeated ids
    /// (`webhook-id`) may drop it, and PagerDuty folds it into the same alert. A pending
    /// delivery is returned as it is; a test message is not sent again (use `testChannel`).
    async fn redeliver(
        &self,
        ctx: &Context<'_>,
        delivery_id: ID,
    ) -> async_graphql::Result<Delivery> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_notify_id(&delivery_id, "deliveryId").gql()?;
        let row = notify::redeliver(db, id).await.gql()?;
        Ok(Delivery::one(db, row))
    }
}
