//! Queries.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use entity::Frequency;
use sea_orm::DatabaseConnection;

use super::Limits;
use super::types::{Target, TargetCursor, parse_id};
use crate::error::{ApiError, IntoGql};
use crate::service::targets;

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
        Ok(Target(targets::get(db, parse_id(&id).gql()?).await.gql()?))
    }

    /// Targets by id, optionally of one frequency or with `search` in their URL.
    async fn targets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        frequency: Option<i32>,
        search: Option<String>,
    ) -> async_graphql::Result<Connection<TargetCursor, Target>> {
        let db = ctx.data::<DatabaseConnection>()?;
        let max = ctx.data::<Limits>()?.max_page;
        let first = first.unwrap_or(50);
        let first = usize::try_from(first)
            .ok()
            .filter(|f| *f <= max)
            .ok_or_else(|| {
                ApiError::BadInput(format!("first must be between 0 and {max}, got {first}"))
            })
            .gql()?;
        let after = after
            .as_deref()
            .map(<TargetCursor as async_graphql::connection::CursorType>::decode_cursor)
            .transpose()
            .map_err(ApiError::from)
            .gql()?;
        let frequency = frequency
            .map(targets::validate_frequency)
            .transpose()
            .gql()?;
        let rows = targets::list(
            db,
            first as u64,
            after.as_ref().map(|c| c.0),
            frequency,
            search.as_deref(),
        )
        .await
        .gql()?;
        let mut connection = Connection::new(after.is_some(), rows.len() > first);
        connection.edges.extend(
            rows.into_iter()
                .take(first)
                .map(|m| Edge::new(TargetCursor(m.urltargets_pk), Target(m))),
        );
        Ok(connection)
    }
}
