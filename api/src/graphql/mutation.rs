//! Mutations. Each needs a valid API token (see `auth.rs`).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use sea_orm::DatabaseConnection;

use super::types::{Target, parse_id};
use crate::auth::Caller;
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
}

/// What `applyTargets` did.
#[derive(SimpleObject)]
pub struct ApplyReport {
    pub added: Vec<Target>,
    pub changed: Vec<Target>,
    pub removed: Vec<Target>,
    pub unchanged: Vec<Target>,
}

fn require_token(ctx: &Context<'_>) -> async_graphql::Result<()> {
    match ctx.data_opt::<Caller>() {
        Some(Caller { authorized: true }) => Ok(()),
        _ => Err(ApiError::Unauthenticated.extend()),
    }
}

#[Object]
impl Mutation {
    /// Starts watching `url` every `frequency` minutes (1, 2, 5, 10, 20 or 30).
    async fn add_target(
        &self,
        ctx: &Context<'_>,
        url: String,
        frequency: i32,
    ) -> async_graphql::Result<Target> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let model = targets::add(db, &url, frequency).await.gql()?;
        Ok(Target::one(db, model))
    }

    /// Changes a target's URL, frequency or paused state; omitted fields stay as they are.
    async fn update_target(
        &self,
        ctx: &Context<'_>,
        id: ID,
        url: Option<String>,
        frequency: Option<i32>,
        paused: Option<bool>,
    ) -> async_graphql::Result<Target> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_id(&id).gql()?;
        let model = targets::update(db, id, url.as_deref(), frequency, paused)
            .await
            .gql()?;
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
    /// frequency) in one transaction — adds what is missing, sets `paused` where it differs and,
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
}
