//! Mutations. Each needs a valid API token (see `auth.rs`).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use sea_orm::DatabaseConnection;

use super::check::{CheckInput, change_of};
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
    /// The whole check (omitted: the default check); it replaces the stored one, and one that
    /// differs counts the target as changed. A header without a value keeps the stored one.
    pub check: Option<CheckInput>,
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
    /// Starts watching `url` every `frequency` minutes (1, 2, 5, 10, 20 or 30), with the
    /// default check changed by `check`.
    async fn add_target(
        &self,
        ctx: &Context<'_>,
        url: String,
        frequency: i32,
        check: Option<CheckInput>,
    ) -> async_graphql::Result<Target> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let model = targets::add(db, &url, frequency, &change_of(check))
            .await
            .gql()?;
        Ok(Target::one(db, model))
    }

    /// Changes a target's URL, frequency, paused state or check; omitted fields (in `check`
    /// too) stay as they are, and null in `check` resets a field.
    async fn update_target(
        &self,
        ctx: &Context<'_>,
        id: ID,
        url: Option<String>,
        frequency: Option<i32>,
        paused: Option<bool>,
        check: Option<CheckInput>,
    ) -> async_graphql::Result<Target> {
        require_token(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let id = parse_id(&id).gql()?;
        let check = check.map(Into::into);
        let model = targets::update(db, id, url.as_deref(), frequency, paused, check.as_ref())
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
