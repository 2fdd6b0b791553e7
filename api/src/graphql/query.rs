//! Queries.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ErrorExtensions, ID, Object};
use entity::Frequency;
use sea_orm::DatabaseConnection;

use super::loaders::ResultBatch;
use super::mutation::require_token;
use super::notify::{
    Delivery, DeliveryConnection, DeliveryCursor, Directory, MAX_DELIVERIES_PAGE,
    NotificationChannel, NotificationRoute, Status, parse_notify_id,
};
use super::states::{Incident, IncidentConnection, IncidentCursor, TargetState};
use super::types::{
    ResultConnection, ResultCursor, Target, TargetCursor, TargetOrder, page_args, parse_id,
    result_page,
};
use super::windows::MaintenanceWindow;
use crate::error::ApiError;
use crate::error::IntoGql;
use crate::service::{results, states, targets};

pub struct Query;

#[Object]
impl Query {
    /// The frequencies a target may have, in minutes.
    async fn frequencies(&self) -> Vec<i32> {
        Frequency::ALL.iter().map(|f| f.minutes()).collect()
    }

    /// One target.
    async fn target(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Target> {
        let db = ctx.data::<DatabaseConnection>()?;
        let model = targets::get(db, parse_id(&id).gql()?).await.gql()?;
        Ok(Target::one(db, model))
    }

    /// The target list, sorted and paged on the server: by id (the default), URL, state (worst
    /// first) or last change, ascending or `descending` (default false); optionally only of one frequency, with
    /// `search` in their URL, selected by a tag filter (`key`, `key:value`, `key:*`) or showing
    /// one of `states`. A page is one statement whatever its size or the list's; a cursor
    /// belongs to its order.
    #[allow(clippy::too_many_arguments)]
    async fn targets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        frequency: Option<i32>,
        search: Option<String>,
        tag: Option<String>,
        states: Option<Vec<TargetState>>,
        order_by: Option<TargetOrder>,
        descending: Option<bool>,
    ) -> async_graphql::Result<Connection<TargetCursor, Target>> {
        let db = ctx.data::<DatabaseConnection>()?;
        let order_by = order_by.unwrap_or_default();
        let descending = descending.unwrap_or(false);
        let (first, after) = page_args::<TargetCursor>(ctx, first, after)?;
        if let Some(after) = after.as_ref().filter(|a| a.order != order_by) {
            return Err(ApiError::BadInput(format!(
                "the cursor is for the {:?} order, not {:?}",
                after.order, order_by
            ))
            .extend());
        }
        let frequency = frequency
            .map(targets::validate_frequency)
            .transpose()
            .gql()?;
        let tag = tag
            .as_deref()
            .map(targets::parse_tag_filter)
            .transpose()
            .gql()?;
        let query = targets::ListQuery {
            limit: first as u64,
            after: after.map(|a| targets::ListCursor {
                key: a.key,
                id: a.id,
            }),
            frequency,
            search: search.as_deref(),
            tag: tag.as_ref(),
            states: states.map(|states| {
                states
                    .into_iter()
                    .map(|s| s.as_stored().to_owned())
                    .collect()
            }),
            order: Some(order_by.service()),
            descending,
        };
        let rows = targets::list(db, &query).await.gql()?;
        let mut connection = Connection::new(query.after.is_some(), rows.len() > first);
        let (models, keys): (Vec<_>, Vec<_>) = rows.into_iter().take(first).unzip();
        let page = Target::list(db, models);
        connection
            .edges
            .extend(page.into_iter().zip(keys).map(|(t, key)| {
                let cursor = TargetCursor {
                    order: order_by,
                    id: t.model.urltargets_pk,
                    key,
                };
                Edge::new(cursor, t)
            }));
        Ok(connection)
    }

    /// Results of every target at `frequency`, newest first, from the original design's view
    /// of that frequency (`view_1m` … `view_30m`); optionally of one target, within
    /// [since, until).
    #[allow(clippy::too_many_arguments)]
    async fn results(
        &self,
        ctx: &Context<'_>,
        frequency: i32,
        first: Option<i32>,
        after: Option<String>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
        target_id: Option<ID>,
    ) -> async_graphql::Result<ResultConnection> {
        let db = ctx.data::<DatabaseConnection>()?;
        let frequency = targets::validate_frequency(frequency).gql()?;
        let (first, after) = page_args::<ResultCursor>(ctx, first, after)?;
        let target = target_id.as_ref().map(parse_id).transpose().gql()?;
        let filter = results::Filter::new(target, since, until).gql()?;
        let rows = results::of_frequency(
            db,
            frequency,
            first as u64,
            after.as_ref().map(|c| c.0),
            &filter,
        )
        .await
        .gql()?;
        let batch = ResultBatch::new(db.clone(), &rows);
        Ok(result_page(rows, first, after.is_some(), &batch))
    }

    /// Incidents newest first (by when they opened): only open ones (`open: true`) or only
    /// resolved ones (`false`), those that overlap [since, until), of one target, of the
    /// targets a tag filter selects.
    #[allow(clippy::too_many_arguments)]
    async fn incidents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        open: Option<bool>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
        target_id: Option<ID>,
        tag: Option<String>,
    ) -> async_graphql::Result<IncidentConnection> {
        let db = ctx.data::<DatabaseConnection>()?;
        let (first, after) = page_args::<IncidentCursor>(ctx, first, after)?;
        let target = target_id.as_ref().map(parse_id).transpose().gql()?;
        // The same bounds and messages as the results' period.
        let period = results::Filter::new(target, since, until).gql()?;
        let filter = states::IncidentFilter {
            open,
            since: period.since,
            until: period.until,
            target,
            tag: tag
                .as_deref()
                .map(targets::parse_tag_filter)
                .transpose()
                .gql()?,
        };
        let rows = states::incidents(db, first as u64, after.as_ref().map(|c| c.0), &filter)
            .await
            .gql()?;
        let mut connection = Connection::new(after.is_some(), rows.len() > first);
        let page = Incident::list(db, rows.into_iter().take(first).collect());
        connection.edges.extend(page.into_iter().map(|i| {
            let cursor = IncidentCursor(states::After {
                opened_at: i.row.opened_at,
                id: i.row.incident_pk,
            });
            Edge::new(cursor, i)
        }));
        Ok(connection)
    }

    /// Every status page, by id. Needs a token (pages that are not public are not listed to
    /// anyone else).
    async fn status_pages(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::status::StatusPage>> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let pages = crate::service::status::list(db).await.gql()?;
        Ok(pages.into_iter().map(super::status::StatusPage).collect())
    }

    /// The status page at `slug` (null if none). Needs a token.
    async fn status_page(
        &self,
        ctx: &Context<'_>,
        slug: String,
    ) -> async_graphql::Result<Option<super::status::StatusPage>> {
        require_token(ctx)?;
        if !crate::service::status::valid_slug(&slug) {
            return Err(ApiError::BadInput(format!(
                "slug: {slug:?} is not a page address (1 to 63 of a-z, 0-9 and '-')"
            ))
            .extend());
        }
        let db = ctx.data::<DatabaseConnection>()?;
        let page = crate::service::status::by_slug(db, &slug).await.gql()?;
        Ok(page.map(super::status::StatusPage))
    }

    /// Every maintenance window, by id.
    async fn maintenance_windows(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<MaintenanceWindow>> {
        let db = ctx.data::<DatabaseConnection>()?;
        let windows = crate::service::windows::list(db).await.gql()?;
        Ok(windows.into_iter().map(MaintenanceWindow).collect())
    }

    /// Every notification channel, by id. Needs a token: channels show addresses.
    async fn channels(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<NotificationChannel>> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(Directory::load(db).await.gql()?.all_channels())
    }

    /// Every notification route, by id. Needs a token.
    async fn routes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<NotificationRoute>> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(Directory::load(db).await.gql()?.all_routes())
    }

    /// The delivery log, newest first (by when a delivery was made): every message to a
    /// channel, its status, its attempts and the receivers' answers; of one status, of one
    /// channel. At most 200 a page. Needs a token: it shows what receivers answered.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        status: Option<Status>,
        channel_id: Option<ID>,
    ) -> async_graphql::Result<DeliveryConnection> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let max = ctx
            .data::<super::Limits>()?
            .max_page
            .min(MAX_DELIVERIES_PAGE);
        let first = usize::try_from(first)
            .ok()
            .filter(|f| *f <= max)
            .ok_or_else(|| {
                ApiError::BadInput(format!("first must be between 0 and {max}, got {first}"))
            })
            .gql()?;
        let after = after
            .as_deref()
            .map(<DeliveryCursor as async_graphql::connection::CursorType>::decode_cursor)
            .transpose()
            .map_err(ApiError::from)
            .gql()?;
        let filter = crate::service::notify::DeliveryFilter {
            status: status.map(Into::into),
            channel: channel_id
                .as_ref()
                .map(|id| parse_notify_id(id, "channelId"))
                .transpose()
                .gql()?,
        };
        let rows = crate::service::notify::deliveries(
            db,
            first as u64,
            after.as_ref().map(|c| c.0),
            filter,
        )
        .await
        .gql()?;
        let mut connection = Connection::new(after.is_some(), rows.len() > first);
        let page = Delivery::list(db, rows.into_iter().take(first).collect());
        connection.edges.extend(page.into_iter().map(|d| {
            let cursor = DeliveryCursor(crate::service::notify::After {
                created_at: d.row().created_at,
                id: d.row().delivery_pk,
            });
            Edge::new(cursor, d)
        }));
        Ok(connection)
    }
}
