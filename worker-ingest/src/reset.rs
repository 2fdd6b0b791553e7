//! `pingpipe-ingest reset-positions`: the operator's way out when a stored position is ahead of
//! the log (the topic was recreated, the broker lost data). Sets the group's stored positions
//! on the topic to each partition's low or high watermark — by default only of the partitions
//! whose stored position is ahead of the log's end; nothing else changes.

use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::config::{Config, ResetTo};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Which partitions to reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Those whose stored position is ahead of their log's end.
    Ahead,
    One(i32),
    All,
}

/// Resets the positions and returns (partition, old position, new position) for each.
pub async fn reset_positions(
    config: &Config,
    to: ResetTo,
    which: Which,
) -> anyhow::Result<Vec<(i32, Option<i64>, i64)>> {
    let topic = config.kafka.topic.clone();
    let kafka = entity::kafka::ClientSettings::new(&config.kafka)?;
    // Watermarks from the broker (blocking calls, off the async threads).
    let marks = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(i32, i64, i64)>> {
        let consumer: BaseConsumer = kafka
            .client_config()
            .set("isolation.level", "read_committed")
            .create()
            .context("cannot create a Kafka client")?;
        let metadata = consumer
            .fetch_metadata(Some(&topic), TIMEOUT)
            .with_context(|| format!("cannot read the metadata of topic {topic}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(
            !partitions.is_empty(),
            "topic {topic} has no partitions (does it exist?)"
        );
        partitions
            .into_iter()
            .map(|p| {
                let (low, high) =
                    consumer
                        .fetch_watermarks(&topic, p, TIMEOUT)
                        .with_context(|| {
                            format!("cannot read the watermarks of {topic} partition {p}")
                        })?;
                Ok((p, low, high))
            })
            .collect()
    })
    .await??;

    let db = plumbing::database::connect_lazy(&config.database, 1).await?;
    let mut done = Vec::new();
    for (partition, low, high) in marks {
        let old = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT next_offset FROM consumer_positions WHERE group_id = $1 AND topic = $2 AND partition = $3",
                [config.group.clone().into(), config.kafka.topic.clone().into(), partition.into()],
            ))
            .await?
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()?;
        let wanted = match which {
            Which::Ahead => old.is_some_and(|o| o > high),
            Which::One(p) => p == partition,
            Which::All => true,
        };
        if !wanted {
            continue;
        }
        let target = match to {
            ResetTo::Earliest => low,
            ResetTo::Latest => high,
        };
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO consumer_positions (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
            [config.group.clone().into(), config.kafka.topic.clone().into(), partition.into(), target.into()],
        ))
        .await?;
        done.push((partition, old, target));
    }
    anyhow::ensure!(
        !done.is_empty(),
        "nothing to reset on topic {} for group {}: {}",
        config.kafka.topic,
        config.group,
        match which {
            Which::Ahead =>
                "no stored position is ahead of its log's end (--all resets every partition)"
                    .to_owned(),
            Which::One(p) => format!("the topic has no partition {p}"),
            Which::All => "the topic has no partitions".to_owned(),
        }
    );
    Ok(done)
}
