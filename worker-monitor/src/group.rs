//! Group mode: the monitors of one instance share the targets through Kafka's group coordinator,
//! the way Kafka Connect spreads its tasks over workers.
//!
//! Every monitor joins the consumer group `pingpipe-monitor.<instance>` on the shards topic
//! (classic protocol, `cooperative-sticky` assignment: a join or a leave moves only the shards
//! that must move). Partition p of that topic stands for shard p; a target belongs to shard
//! [`shard_of`]`(id, S)`. A member probes exactly the targets of the shards it owns.
//!
//! Each shard has its own transactional producer, `pingpipe-monitor.<instance>.group-shard-<p>-of-<S>`,
//! whoever owns it. That is the fence: a member that receives a shard first runs
//! `init_transactions` with the shard's id, which aborts the previous owner's open transaction
//! and makes every later commit of the previous owner for that shard fail (it is a zombie for
//! that id); nothing of the new owner is committed before that. It starts probing at once, from
//! the first slot after it received the shard, its results waiting for the producer.
//!
//! Hand-over, as the group coordinator drives it:
//! - revoked (a rebalance moves the shard, or this member leaves): inside the rebalance
//!   callback, before the coordinator can give the shard to anyone, no new probe of the shard
//!   starts; the probes already running finish and their results are committed with a
//!   `released` marker on the shard's partition; then the callback returns.
//! - lost (the session expired before this member could hand over, e.g. it was frozen or cut
//!   off): the same within 2 s and without a marker, but another member may already own the
//!   shard: its producer fences ours, and what we could not commit is dropped and counted.
//! - assigned: the shard's targets are scheduled from the next slot on, and its producer is
//!   initialised meanwhile (the fence); the first transaction carries an `acquired` marker.
//!   Slots between the previous owner's stop and this start are not probed (no backfill).
//!
//! The markers say how long a shard went without an owner: the new owner reads the last
//! markers of a partition it receives, and a `released` marker before its own `acquired` one is
//! a graceful hand-over (`handover_gap_seconds`); an `acquired` marker of another member with no
//! release is a takeover from a member that died (`takeovers_total`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entity::kafka::ClientSettings;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metric_names as m;
use crate::publisher::{Pending, PublishError, Publisher, PublisherSettings};

/// The shard of a target: a 32-bit integer hash of its id (two xor-shift-multiply rounds, so
/// consecutive ids spread and the shard does not follow the slot offset), modulo `shards`.
/// The same function runs in SQL ([`shard_sql`]).
pub fn shard_of(target_id: i32, shards: u32) -> u32 {
    let mut x = u64::from(target_id as u32);
    x = (((x >> 16) ^ x) * 0x45d9f3b) & 0xffff_ffff;
    x = (((x >> 16) ^ x) * 0x45d9f3b) & 0xffff_ffff;
    x = (x >> 16) ^ x;
    (x % u64::from(shards.max(1))) as u32
}

/// [`shard_of`] as a PostgreSQL expression over an integer `column` (bigint arithmetic: every
/// intermediate stays below 2^59).
pub fn shard_sql(column: &str, shards: u32) -> String {
    let mix = |x: &str| format!("(((({x} >> 16) # {x}) * 73244475) & 4294967295)");
    let x0 = format!("({column}::bigint & 4294967295)");
    let x2 = mix(&mix(&x0));
    format!("((({x2} >> 16) # {x2}) % {})", shards.max(1))
}

/// Which shards this member probes now, and the slots of each that are being probed.
pub struct Ownership {
    shards: u32,
    active: Vec<AtomicBool>,
    /// Slots whose probe started and whose result has not reached the shard's publisher yet.
    outstanding: Vec<AtomicI64>,
    /// When each shard was last started here (ms since the epoch).
    since: Vec<AtomicI64>,
    /// The shard was taken from this member (lost session, fenced), not handed over: its late
    /// results are of slots another member has started probing.
    lost: Vec<AtomicBool>,
    changed: watch::Sender<u64>,
}

impl Ownership {
    pub fn new(shards: u32) -> Arc<Ownership> {
        let shards = shards.max(1);
        Arc::new(Ownership {
            shards,
            active: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            outstanding: (0..shards).map(|_| AtomicI64::new(0)).collect(),
            since: (0..shards).map(|_| AtomicI64::new(0)).collect(),
            lost: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            changed: watch::channel(0).0,
        })
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// Before the probe of a new slot: true (and the slot counted as outstanding until its
    /// result is routed, or [`Ownership::done`] called) when this member owns the target's shard
    /// and the slot comes after the shard's start here (no slot older than that is probed,
    /// even one queued before a revocation and a new assignment).
    pub fn begin(&self, target_id: i32, slot_ms: i64) -> bool {
        let shard = shard_of(target_id, self.shards) as usize;
        // Counted first, checked second: a revocation that clears `active` and then sees no
        // outstanding slot cannot miss this one.
        self.outstanding[shard].fetch_add(1, Ordering::SeqCst);
        if self.active[shard].load(Ordering::SeqCst)
            && slot_ms > self.since[shard].load(Ordering::SeqCst)
        {
            true
        } else {
            self.outstanding[shard].fetch_sub(1, Ordering::SeqCst);
            false
        }
    }

    /// The result of a slot counted by [`Ownership::begin`] has been routed.
    pub fn done(&self, target_id: i32) {
        let shard = shard_of(target_id, self.shards) as usize;
        self.outstanding[shard].fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether this member owns the target's shard now.
    pub fn owns(&self, target_id: i32) -> bool {
        self.active[shard_of(target_id, self.shards) as usize].load(Ordering::SeqCst)
    }

    /// The shards owned now, ascending.
    pub fn owned(&self) -> Vec<u32> {
        (0..self.shards)
            .filter(|p| self.active[*p as usize].load(Ordering::SeqCst))
            .collect()
    }

    /// Bumped whenever the owned set changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// When the target's shard was started here: its first slot is the first after that.
    pub fn since_ms(&self, target_id: i32) -> i64 {
        self.since[shard_of(target_id, self.shards) as usize].load(Ordering::SeqCst)
    }

    /// Whether the shard was taken from this member rather than handed over.
    pub fn was_lost(&self, target_id: i32) -> bool {
        self.lost[shard_of(target_id, self.shards) as usize].load(Ordering::SeqCst)
    }

    /// Stops probing a shard that was taken from this member.
    fn set_lost(&self, shard: u32) -> i64 {
        self.lost[shard as usize].store(true, Ordering::SeqCst);
        self.set_active(shard, false)
    }

    /// Starts or stops probing a shard; returns the time of the change (ms since the epoch).
    fn set_active(&self, shard: u32, active: bool) -> i64 {
        let at = chrono::Utc::now().timestamp_millis();
        if active {
            self.since[shard as usize].store(at, Ordering::SeqCst);
            self.lost[shard as usize].store(false, Ordering::SeqCst);
        }
        self.active[shard as usize].store(active, Ordering::SeqCst);
        metrics::gauge!(m::MONITOR_SHARDS_OWNED).set(self.owned().len() as f64);
        self.changed.send_modify(|n| *n += 1);
        at
    }

    fn outstanding(&self, shard: u32) -> i64 {
        self.outstanding[shard as usize].load(Ordering::SeqCst)
    }
}

/// Where each owned shard's results go: its publisher's queue.
pub type Routes = Arc<Mutex<HashMap<u32, mpsc::Sender<Pending>>>>;

/// The routes, locked (a panic while they were held left them whole: each change is one call).
fn lock(routes: &Routes) -> std::sync::MutexGuard<'_, HashMap<u32, mpsc::Sender<Pending>>> {
    routes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands each result to the publisher of its shard; a result whose shard has moved on is
/// dropped and counted (its slot belongs to the new owner, which probes it too).
pub async fn route(
    mut results: mpsc::Receiver<Pending>,
    routes: Routes,
    ownership: Arc<Ownership>,
) -> anyhow::Result<()> {
    while let Some(item) = results.recv().await {
        let target_id = item.target_id;
        let shard = shard_of(target_id, ownership.shards());
        let sender = lock(&routes).get(&shard).cloned();
        let delivered = match sender {
            Some(sender) => sender.send(item).await.is_ok(),
            None => false,
        };
        if !delivered {
            if ownership.was_lost(target_id) {
                // Taken from this member: the new owner probes these slots too.
                metrics::counter!(m::MONITOR_DROPPED, "reason" => "shard_lost").increment(1);
                metrics::counter!(m::MONITOR_SLOTS_PROBED_TWICE).increment(1);
            } else {
                // Handed over, but the result came after the revocation's budget.
                metrics::counter!(m::MONITOR_DROPPED, "reason" => "handover").increment(1);
            }
            tracing::debug!(
                target_id,
                shard,
                "Result of a shard this member no longer owns; dropped."
            );
        }
        ownership.done(target_id);
    }
    Ok(())
}

/// What the membership callbacks ask of the shard manager.
pub enum Command {
    Assigned(Vec<u32>),
    /// Stop the shards and hand them over; `done` is told when that is finished.
    Revoked {
        shards: Vec<u32>,
        lost: bool,
        done: std::sync::mpsc::SyncSender<()>,
    },
}

/// How group mode is set up.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub instance: String,
    pub member: String,
    pub group_id: String,
    pub shards_topic: String,
    pub shards: u32,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// Longest a revocation waits for the shard's running probes and last commit.
    pub revoke_budget: Duration,
}

/// A hand-over marker on a shard's partition: `event` happened at `at_ms`.
fn marker(settings: &GroupSettings, shard: u32, event: &str, at_ms: i64) -> Pending {
    let payload = serde_json::json!({
        "instance": settings.instance,
        "member": settings.member,
        "event": event,
        "at_ms": at_ms,
    });
    Pending::marker(shard as i32, payload.to_string().into_bytes())
}

/// An owned shard: its publisher's queue and task.
struct Active {
    sender: mpsc::Sender<Pending>,
    give_up: CancellationToken,
    task: JoinHandle<Result<(), PublishError>>,
    epoch: u64,
}

/// Starts and stops the shards' publishers as the group coordinator assigns and revokes them.
pub struct Manager {
    pub settings: GroupSettings,
    /// The producer settings every shard's publisher starts from.
    pub publisher: PublisherSettings,
    /// Makes the transactional.id of a shard.
    pub transactional_id: Arc<dyn Fn(u32) -> String + Send + Sync>,
    pub ownership: Arc<Ownership>,
    pub routes: Routes,
    /// Cancelled when the shutdown deadline has passed.
    pub give_up: CancellationToken,
    pub ready: Arc<AtomicBool>,
}

impl Manager {
    pub async fn run(self, mut commands: mpsc::UnboundedReceiver<Command>) -> anyhow::Result<()> {
        let mut assigned: HashSet<u32> = HashSet::new();
        let mut active: HashMap<u32, Active> = HashMap::new();
        let (ended_tx, mut ended) = mpsc::unbounded_channel::<(u32, u64)>();
        let mut rechecks = tokio::task::JoinSet::new();
        let mut epoch = 0u64;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::Assigned(shards)) => {
                        for shard in shards {
                            assigned.insert(shard);
                            if let std::collections::hash_map::Entry::Vacant(entry) = active.entry(shard) {
                                epoch += 1;
                                entry.insert(self.spawn(shard, epoch, ended_tx.clone()));
                            }
                        }
                    }
                    Some(Command::Revoked { shards, lost, done }) => {
                        for shard in &shards {
                            assigned.remove(shard);
                        }
                        self.release(&shards, &mut active, lost).await;
                        let _ = done.send(());
                    }
                },
                Some((shard, ended_epoch)) = ended.recv() => {
                    // A publisher that ends while its shard is owned could not start (the broker
                    // is away), was fenced (another member initialised the shard's producer) or
                    // failed for good.
                    if active.get(&shard).is_some_and(|a| a.epoch == ended_epoch) {
                        let gone = active.remove(&shard).expect("checked");
                        lock(&self.routes).remove(&shard);
                        let ended = gone.task.await;
                        // Brokers that refuse the producer (its transactional id's ACL, say) do
                        // so for every shard and every retry: stop and say why.
                        if let Ok(Err(e)) = &ended
                            && let Some(hint) = e.refusal_hint()
                        {
                            anyhow::bail!(
                                "the Kafka brokers refuse this monitor's producer of shard {shard}: \
                                 {e}{hint}"
                            );
                        }
                        // Fenced: another member has the shard (its late results are its slots
                        // too). Otherwise this member merely stops until the shard starts again.
                        if matches!(ended, Ok(Err(PublishError::Fenced { .. }))) {
                            self.ownership.set_lost(shard);
                        } else {
                            self.ownership.set_active(shard, false);
                        }
                        let error = match ended {
                            Ok(Err(e)) => e.to_string(),
                            Ok(Ok(())) => "its publisher stopped".to_owned(),
                            Err(e) => e.to_string(),
                        };
                        tracing::warn!(
                            shard,
                            error,
                            "Shard's producer could not start, was fenced or failed: another \
                             member owns the shard, or the broker is away. Probing of the shard \
                             stops; it starts again if the group still gives it to this member \
                             after a session timeout."
                        );
                        rechecks.spawn(recheck(shard, self.settings.session_timeout));
                    }
                }
                Some(Ok(shard)) = rechecks.join_next() => {
                    if let (true, std::collections::hash_map::Entry::Vacant(entry)) =
                        (assigned.contains(&shard), active.entry(shard))
                    {
                        epoch += 1;
                        entry.insert(self.spawn(shard, epoch, ended_tx.clone()));
                    }
                }
            }
        }
        // The membership has ended (leaving the group revoked everything it held).
        let rest: Vec<u32> = active.keys().copied().collect();
        self.release(&rest, &mut active, false).await;
        Ok(())
    }

    /// Starts a shard at once, from the first slot after now: its probes start, and their
    /// results wait in the shard's queue while its producer is initialised — which fences the
    /// shard's previous owner (its open transaction is aborted, its later commits refused)
    /// before anything of this member is committed for the shard. A producer that cannot
    /// start within twice the session timeout (the broker is away) ends the shard here.
    fn spawn(&self, shard: u32, epoch: u64, ended: mpsc::UnboundedSender<(u32, u64)>) -> Active {
        let (sender, mut receiver) = mpsc::channel(4096);
        lock(&self.routes).insert(shard, sender.clone());
        let since = self.ownership.set_active(shard, true);
        // The first record of the shard's first transaction: who started it, and when.
        let _ = sender.try_send(marker(&self.settings, shard, "acquired", since));
        let mut settings = self.publisher.clone();
        settings.transactional_id = (self.transactional_id)(shard);
        let ready = self.ready.clone();
        let give_up = self.give_up.child_token();
        let limit = self.settings.session_timeout * 2;
        let token = give_up.clone();
        let task = tokio::spawn(async move {
            let connect = Publisher::connect(settings, ready, give_up.clone());
            let started = match tokio::time::timeout(limit, connect).await {
                Ok(started) => started,
                Err(_) => {
                    give_up.cancel();
                    Err(PublishError::Cancelled)
                }
            };
            let result = match started {
                Ok(publisher) => publisher.run(receiver).await,
                Err(e) => {
                    // Never published: the results that waited for the producer are dropped,
                    // and counted.
                    receiver.close();
                    let mut waiting = 0u64;
                    while let Ok(item) = receiver.try_recv() {
                        waiting += u64::from(item.marker_partition.is_none());
                    }
                    metrics::counter!(m::MONITOR_DROPPED, "reason" => "unstarted")
                        .increment(waiting);
                    Err(e)
                }
            };
            let _ = ended.send((shard, epoch));
            result
        });
        tracing::info!(
            shard,
            member = self.settings.member,
            "Shard started: probing its targets from their next slot."
        );
        Active {
            sender,
            give_up: token,
            task,
            epoch,
        }
    }

    /// Stops probing `shards`, waits for their running probes, commits their results with a
    /// `released` marker (unless lost) and lets their producers close, within the revoke budget.
    async fn release(&self, shards: &[u32], active: &mut HashMap<u32, Active>, lost: bool) {
        if shards.is_empty() {
            return;
        }
        let stopped: HashMap<u32, i64> = shards
            .iter()
            .map(|&shard| {
                let at = if lost {
                    self.ownership.set_lost(shard)
                } else {
                    self.ownership.set_active(shard, false)
                };
                (shard, at)
            })
            .collect();
        // A lost shard may be another member's already, and the broker may be away (which is
        // why the session expired): what can be committed at once is, the rest is dropped,
        // and the member is free to rejoin.
        let budget = if lost {
            LOST_BUDGET.min(self.settings.revoke_budget)
        } else {
            self.settings.revoke_budget
        };
        let deadline = tokio::time::Instant::now() + budget;
        // (Past the shutdown deadline nothing more will be committed: no use waiting.)
        while shards.iter().any(|p| self.ownership.outstanding(*p) > 0)
            && tokio::time::Instant::now() < deadline
            && !self.give_up.is_cancelled()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut closing = Vec::new();
        for &shard in shards {
            lock(&self.routes).remove(&shard);
            let Some(entry) = active.remove(&shard) else {
                continue;
            };
            // A lost shard was not handed over: no `released` marker (its next owner counts a
            // takeover, and its gap is not a graceful one).
            if !lost {
                let _ = tokio::time::timeout_at(
                    deadline,
                    entry
                        .sender
                        .send(marker(&self.settings, shard, "released", stopped[&shard])),
                )
                .await;
            }
            drop(entry.sender);
            closing.push((shard, entry.give_up, entry.task));
        }
        for (shard, give_up, mut task) in closing {
            let ended = tokio::select! {
                ended = &mut task => ended,
                () = tokio::time::sleep_until(deadline) => {
                    // Past the budget: what is still uncommitted is dropped (and counted).
                    give_up.cancel();
                    match tokio::time::timeout(Duration::from_secs(2), &mut task).await {
                        Ok(ended) => ended,
                        Err(_) => {
                            task.abort();
                            Ok(Err(PublishError::Cancelled))
                        }
                    }
                }
            };
            match ended {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(shard, error = %e, "The shard's last results were not committed.")
                }
                Err(_) => {}
            }
        }
        tracing::info!(
            shards = ?shards,
            lost,
            member = self.settings.member,
            "Shards handed over: no probe of them starts here any more."
        );
    }
}

/// How long a lost shard's last results may take to commit before they are dropped.
const LOST_BUDGET: Duration = Duration::from_secs(2);

async fn recheck(shard: u32, after: Duration) -> u32 {
    tokio::time::sleep(after).await;
    shard
}

/// Checks that the shards topic has `shards` partitions, creating it first when it is missing
/// (a monitor needs no Create ACL when the topic exists); retried while the broker cannot be
/// reached or the topic is missing.
pub async fn ensure_topic(
    kafka: &ClientSettings,
    settings: &GroupSettings,
    cancel: &CancellationToken,
) -> anyhow::Result<bool> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let mut backoff = plumbing::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(&settings.shards_topic), Duration::from_secs(10));
        let exists = match &metadata {
            Ok(metadata) => match metadata.topics().first() {
                Some(topic) if topic.error().is_none() && !topic.partitions().is_empty() => {
                    Some(topic.partitions().len() as u32)
                }
                _ => None,
            },
            Err(e) => {
                tracing::warn!(error = %e, "Cannot reach Kafka to check the shards topic.");
                if !backoff.wait(cancel).await {
                    return Ok(false);
                }
                continue;
            }
        };
        if let Some(partitions) = exists {
            if partitions == settings.shards {
                return Ok(true);
            }
            anyhow::bail!(
                "the shards topic {:?} has {partitions} partitions but PINGPIPE_MONITOR_SHARDS \
                 is {}: every monitor of an instance must use the topic's partition count",
                settings.shards_topic,
                settings.shards
            );
        }
        let topic = NewTopic::new(
            &settings.shards_topic,
            settings.shards as i32,
            // The broker's default replication factor.
            TopicReplication::Fixed(-1),
        );
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        match admin.create_topics([&topic], &options).await {
            Ok(results) => {
                let mut made = false;
                for result in results {
                    match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => made = true,
                        Err((name, RDKafkaErrorCode::TopicAuthorizationFailed)) => tracing::warn!(
                            topic = name,
                            "The shards topic is missing and this monitor may not create it: \
                             create it with PINGPIPE_MONITOR_SHARDS partitions, or allow Create \
                             on it."
                        ),
                        Err((name, code)) => {
                            tracing::warn!(topic = name, error = %code, "Cannot create the shards topic.")
                        }
                    }
                }
                if made {
                    // Checked again at once: it exists now.
                    continue;
                }
            }
            Err(e) => tracing::warn!(error = %e, "Cannot reach Kafka to create the shards topic."),
        }
        if !backoff.wait(cancel).await {
            return Ok(false);
        }
    }
}

/// The membership consumer's callbacks: they tell the shard manager and, on revocation, wait
/// until it has handed the shards over (the coordinator gives them to nobody meanwhile).
struct Membership {
    commands: mpsc::UnboundedSender<Command>,
    topic: String,
    revoke_wait: Duration,
    ready: Arc<AtomicBool>,
}

/// Markers read back from the end of a received shard's partition.
const MARKER_TAIL: i64 = 16;

impl ClientContext for Membership {}

impl ConsumerContext for Membership {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let shards: Vec<u32> = tpl
            .elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition() as u32)
            .collect();
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                for shard in &shards {
                    // Read the partition's last markers: who had the shard, and whether it let go.
                    let _ = tpl.set_partition_offset(
                        &self.topic,
                        *shard as i32,
                        Offset::OffsetTail(MARKER_TAIL),
                    );
                }
                let assigned = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = assigned {
                    tracing::error!(error = %e, "Cannot take the assigned shards.");
                }
                self.ready.store(true, Ordering::Relaxed);
                if !shards.is_empty() {
                    metrics::counter!(m::MONITOR_REBALANCES, "event" => "assigned").increment(1);
                    tracing::info!(shards = ?shards, "Shards assigned by the group coordinator.");
                    let _ = self.commands.send(Command::Assigned(shards));
                }
            }
            _ => {
                let lost = err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS
                    || consumer.assignment_lost();
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::error!(error = ?err, "Rebalance error: handing every shard over.");
                }
                if !shards.is_empty() {
                    let event = if lost { "lost" } else { "revoked" };
                    metrics::counter!(m::MONITOR_REBALANCES, "event" => event).increment(1);
                    if lost {
                        tracing::warn!(
                            shards = ?shards,
                            "Shards lost: the session expired before they could be handed over \
                             (another member may own them already)."
                        );
                    }
                    let (done, finished) = std::sync::mpsc::sync_channel(1);
                    let asked = self.commands.send(Command::Revoked { shards, lost, done });
                    if asked.is_ok() && finished.recv_timeout(self.revoke_wait).is_err() {
                        tracing::warn!("Handing the shards over took longer than allowed.");
                    }
                }
                let unassigned = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = unassigned {
                    tracing::error!(error = %e, "Cannot give the revoked shards back.");
                }
            }
        }
    }
}

/// What the membership has learnt from the markers of the shards' partitions.
struct Markers {
    instance: String,
    member: String,
    last: HashMap<i32, (String, String, i64)>,
    seen: HashMap<i32, i64>,
}

impl Markers {
    fn observe(&mut self, partition: i32, offset: i64, payload: &[u8]) {
        if self
            .seen
            .get(&partition)
            .is_some_and(|seen| *seen >= offset)
        {
            return;
        }
        self.seen.insert(partition, offset);
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return;
        };
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(instance), Some(member), Some(event), Some(at)) = (
            field("instance"),
            field("member"),
            field("event"),
            value.get("at_ms").and_then(|v| v.as_i64()),
        ) else {
            return;
        };
        if instance != self.instance {
            return;
        }
        if member == self.member && event == "acquired" {
            match self.last.get(&partition) {
                Some((from, previous, released))
                    if *from != self.member && previous == "released" =>
                {
                    let gap_ms = (at - released).max(0);
                    metrics::histogram!(m::MONITOR_HANDOVER_GAP).record(gap_ms as f64 / 1000.0);
                    tracing::info!(
                        shard = partition,
                        from,
                        gap_ms,
                        "Shard received from its previous owner."
                    );
                }
                Some((from, previous, _)) if *from != self.member && previous == "acquired" => {
                    metrics::counter!(m::MONITOR_TAKEOVERS).increment(1);
                    tracing::info!(
                        shard = partition,
                        from,
                        "Shard taken over from a member that never released it."
                    );
                }
                _ => {}
            }
        }
        self.last.insert(partition, (member, event, at));
    }
}

/// Runs the group membership until `cancel`: joins the group, keeps polling (rebalance
/// callbacks only run inside a poll), and on the way out leaves the group, which hands every
/// shard over first. A fatal error (the shards topic disagrees with the configuration) stops
/// the monitor.
pub async fn run_membership(
    kafka: ClientSettings,
    settings: GroupSettings,
    commands: mpsc::UnboundedSender<Command>,
    ready: Arc<AtomicBool>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    if !ensure_topic(&kafka, &settings, &cancel).await? {
        return Ok(());
    }
    let handle = tokio::task::spawn_blocking(move || {
        let context = Membership {
            commands,
            topic: settings.shards_topic.clone(),
            revoke_wait: settings.revoke_budget + Duration::from_secs(1),
            ready,
        };
        let consumer: BaseConsumer<Membership> = kafka
            .client_config()
            .set("group.id", &settings.group_id)
            .set("client.id", &settings.member)
            .set("group.protocol", "classic")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "session.timeout.ms",
                settings.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                settings.heartbeat_interval.as_millis().to_string(),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .create_with_context(context)?;
        consumer.subscribe(&[&settings.shards_topic])?;
        tracing::info!(
            group = settings.group_id,
            member = settings.member,
            shards = settings.shards,
            session_timeout = ?settings.session_timeout,
            "Joining the monitors' group."
        );
        let mut markers = Markers {
            instance: settings.instance.clone(),
            member: settings.member.clone(),
            last: HashMap::new(),
            seen: HashMap::new(),
        };
        let mut last_error: Option<std::time::Instant> = None;
        while !cancel.is_cancelled() {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    if let Some(payload) = message.payload() {
                        markers.observe(message.partition(), message.offset(), payload);
                    }
                }
                // The broker refuses the session timeout: nothing will change that but the
                // configuration.
                Some(Err(e))
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::InvalidSessionTimeout) =>
                {
                    anyhow::bail!(
                        "the broker refuses a session timeout of {:?} \
                         (PINGPIPE_MONITOR_SESSION_TIMEOUT): it must lie within the broker's \
                         group.min.session.timeout.ms and group.max.session.timeout.ms (6s and \
                         30min by default): {e}",
                        settings.session_timeout
                    );
                }
                Some(Err(e)) => {
                    // The brokers' ACLs refuse the group or the shards topic.
                    if let Some(hint) = entity::kafka::consumer_refusal(&e) {
                        anyhow::bail!(
                            "the Kafka brokers refuse this monitor's group membership (group {}, \
                             topic {}): {e}{hint}",
                            settings.group_id,
                            settings.shards_topic
                        );
                    }
                    if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "Group membership: Kafka error (retrying).");
                        last_error = Some(std::time::Instant::now());
                    }
                }
                None => {}
            }
        }
        tracing::info!("Leaving the monitors' group: handing every shard over.");
        // Closing revokes everything through the rebalance callback, then leaves the group.
        drop(consumer);
        Ok::<_, anyhow::Error>(())
    });
    handle.await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::slot_offset_ms;

    #[test]
    fn shards_spread_evenly_and_do_not_follow_the_slot_offset() {
        // 64,000 consecutive ids over 64 shards: each gets 1,000 ± 10%.
        let mut counts = [0u32; 64];
        for id in 1..=64_000 {
            counts[shard_of(id, 64) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (900..=1100).contains(c)),
            "{counts:?}"
        );
        // The targets of one shard are due all over the period, not in one slice of it: a
        // member's load is spread over the minute like the whole monitor's.
        let period = 60_000;
        let mut tenths = [0u32; 10];
        for id in (1..=64_000).filter(|id| shard_of(*id, 64) == 7) {
            tenths[(slot_offset_ms(id, period) * 10 / period) as usize] += 1;
        }
        assert!(tenths.iter().all(|c| (70..=130).contains(c)), "{tenths:?}");
        // Stable: the documented function, pinned.
        assert_eq!(
            (1..=8).map(|id| shard_of(id, 64)).collect::<Vec<_>>(),
            (1..=8)
                .map(|id| reference_shard(id, 64))
                .collect::<Vec<_>>()
        );
        assert_eq!(shard_of(5, 1), 0);
    }

    /// The README's definition, written out step by step.
    fn reference_shard(id: i32, shards: u32) -> u32 {
        let mut x = id as u32;
        x = ((x >> 16) ^ x).wrapping_mul(0x45d9f3b);
        x = ((x >> 16) ^ x).wrapping_mul(0x45d9f3b);
        x = (x >> 16) ^ x;
        x % shards
    }

    #[test]
    fn a_slot_is_counted_only_while_its_shard_is_owned() {
        let ownership = Ownership::new(4);
        let target = (1..100).find(|id| shard_of(*id, 4) == 2).unwrap();
        let shard = 2;
        assert!(!ownership.begin(target, i64::MAX), "not owned yet");
        assert_eq!(ownership.outstanding(shard), 0);
        let since = ownership.set_active(shard, true);
        assert_eq!(ownership.since_ms(target), since);
        assert_eq!(ownership.owned(), vec![2]);
        assert!(ownership.begin(target, since + 1));
        assert!(ownership.begin(target, since + 1000));
        assert!(
            !ownership.begin(target, since),
            "a slot from before the shard's start here is not probed"
        );
        assert_eq!(ownership.outstanding(shard), 2);
        ownership.set_active(shard, false);
        assert!(
            !ownership.begin(target, since + 2000),
            "revoked: no new probe starts"
        );
        assert!(!ownership.was_lost(target));
        ownership.set_lost(shard);
        assert!(ownership.was_lost(target));
        assert!(!ownership.owns(target));
        ownership.done(target);
        ownership.done(target);
        assert_eq!(ownership.outstanding(shard), 0);
    }

    fn marker_bytes(member: &str, event: &str, at_ms: i64) -> Vec<u8> {
        serde_json::json!({"instance": "i", "member": member, "event": event, "at_ms": at_ms})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn markers_tell_a_graceful_hand_over_from_a_takeover() {
        let metrics = plumbing::metrics_handle();
        let mut markers = Markers {
            instance: "i".into(),
            member: "me".into(),
            last: HashMap::new(),
            seen: HashMap::new(),
        };
        // Shard 0: released by a at 1,000, started here at 1,250: a gap of 250 ms.
        markers.observe(0, 0, &marker_bytes("a", "acquired", 100));
        markers.observe(0, 2, &marker_bytes("a", "released", 1_000));
        markers.observe(0, 4, &marker_bytes("me", "acquired", 1_250));
        // Read again (the partition re-assigned): not counted twice.
        markers.observe(0, 4, &marker_bytes("me", "acquired", 1_250));
        // Shard 1: b never released it.
        markers.observe(1, 0, &marker_bytes("b", "acquired", 100));
        markers.observe(1, 2, &marker_bytes("me", "acquired", 9_000));
        // Another instance's markers are not ours to judge.
        markers.observe(2, 0, &marker_bytes("c", "released", 100));
        markers.observe(2, 1, b"not json");
        let rendered = metrics.render();
        let line = |prefix: &str| {
            rendered
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} missing:\n{rendered}"))
                .to_owned()
        };
        assert!(line(&format!("{}_count", m::MONITOR_HANDOVER_GAP)).ends_with(" 1"));
        assert!(line(&format!("{}_sum", m::MONITOR_HANDOVER_GAP)).ends_with(" 0.25"));
        assert!(line(m::MONITOR_TAKEOVERS).ends_with(" 1"));
    }
}
