//! The in-process group coordinator: Kafka's classic group protocol (join, sync, heartbeat,
//! leave, generations) with opaque member metadata and assignments, so in-process consumers
//! and network clients can share a group. Calls block the calling thread (join waits for
//! the other members to rejoin, sync for the leader's assignment), as a broker's delayed
//! responses would; an in-process consumer's calls return at its poll's deadline or wake-up
//! with the member still in the round, and its next poll resumes them ([`Patience`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use super::offsets::{OffsetAndMetadata, OffsetStore};
use super::offsets_codec::{GroupMemberMetadata, GroupMetadata};
use super::protocol::Subscription;
use crate::TopicPartition;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::wait::Notifier;

/// The state of a group, as Kafka names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
}

/// A group's live state, as [`Coordinator::describe`] reads it.
pub(crate) struct LiveGroup {
    pub(crate) state: GroupState,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) members: Vec<MemberDescription>,
}

/// A member's view of a completed join.
#[derive(Debug, Clone)]
pub struct JoinResponse {
    /// The new generation.
    pub generation: i32,
    /// This member's id (assigned on first join).
    pub member_id: String,
    /// The leader's member id.
    pub leader: String,
    /// The chosen protocol (assignor) name.
    pub protocol: String,
    /// For the leader: every member's id and metadata for the chosen protocol; else empty.
    pub members: Vec<(String, Bytes)>,
}

/// What a member asks when it joins.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Group id.
    pub group: String,
    /// Existing member id, or empty for a new member.
    pub member_id: String,
    /// Client id, for descriptions.
    pub client_id: String,
    /// Protocol type, `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// (protocol name, metadata) in order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Removed when no heartbeat arrives for this long.
    pub session_timeout: Duration,
    /// How long a rebalance waits for this member to rejoin (for in-process consumers also
    /// the longest time between polls: `max_poll_interval`).
    pub rebalance_timeout: Duration,
}

/// How long a call that waits for the rest of the group may block. A network member's call
/// waits for the round (Kafka's delayed response); an in-process consumer's waits no longer
/// than its poll may, and returns early when the consumer is woken up, the member still in
/// the round: its next poll continues the wait ([`Coordinator::resume_join`], or
/// [`Coordinator::sync`] again).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience<'a> {
    /// Return by then with the round still open.
    pub(crate) until: Option<Instant>,
    /// Return once this is raised (the consumer's wake-up flag; it is left raised).
    pub(crate) woken: Option<&'a AtomicBool>,
}

impl Patience<'_> {
    /// Until the round completes, however long that takes.
    pub(crate) const UNBOUNDED: Patience<'static> = Patience {
        until: None,
        woken: None,
    };

    fn exhausted(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now >= u)
            || self.woken.is_some_and(|w| w.load(Ordering::Acquire))
    }

    /// `t`, or the deadline if that comes first.
    fn cap(&self, t: Instant) -> Instant {
        self.until.map_or(t, |u| t.min(u))
    }
}

/// Where a join stands when the call returns.
#[derive(Debug)]
pub(crate) enum Joining {
    /// The round completed.
    Joined(JoinResponse),
    /// The caller's patience ran out first. The member is in the round under `member_id`
    /// (assigned now if it joined as a new member) and counts as rejoined while it waits; it
    /// continues with [`Coordinator::resume_join`].
    Waiting {
        /// This member's id.
        member_id: String,
    },
}

/// One member, as [`crate::Log::describe_group`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Client id.
    pub client_id: String,
    /// Assigned partitions (decoded from the consumer protocol assignment when possible).
    pub assignment: Vec<TopicPartition>,
    /// The member's metadata for the group's protocol, as it sent it when it joined (for
    /// consumers, an encoded [`crate::Subscription`]); empty before a protocol is chosen.
    pub member_metadata: Bytes,
    /// The member's assignment as the leader encoded it (for consumers, an encoded
    /// [`crate::Assignment`]); empty until the group is stable.
    pub member_assignment: Bytes,
}

#[derive(Debug)]
struct Member {
    client_id: String,
    protocols: Vec<(String, Bytes)>,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    last_heartbeat: Instant,
    last_poll: Instant,
    joined: bool,
    join_generation: i32,
    assignment: Option<Bytes>,
    notifier: Option<Weak<Notifier>>,
    /// Alive while the in-process consumer exists (its "heartbeat thread").
    liveness: Option<Weak<MemberSignal>>,
}

impl Member {
    fn wake(&self) {
        if let Some(signal) = self.liveness.as_ref().and_then(Weak::upgrade) {
            signal.rebalance.store(true, Ordering::Release);
        }
        if let Some(n) = self.notifier.as_ref().and_then(Weak::upgrade) {
            n.notify();
        }
    }
}

/// What an in-process member shares with the coordinator: it is alive while the consumer
/// holds it (the coordinator heartbeats for it meanwhile, as Kafka's heartbeat thread does),
/// and `rebalance` is raised when the group may need it to rejoin, so the consumer asks the
/// coordinator only then (and at its heartbeat interval), not on every poll.
#[derive(Debug, Default)]
pub(crate) struct MemberSignal {
    pub(crate) rebalance: AtomicBool,
}

#[derive(Debug)]
struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    rebalance_deadline: Instant,
}

impl Group {
    fn new(generation: i32) -> Group {
        Group {
            state: GroupState::Empty,
            generation,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            rebalance_deadline: Instant::now(),
        }
    }

    /// The group as its last metadata record left it, for a log that reopens (Kafka's group
    /// load): the members come back with fresh session deadlines, so one that returns within
    /// its session timeout keeps its id and generation and its commits succeed; one that does
    /// not is expired as if it had stopped heartbeating, and the group rebalances. In-process
    /// consumers are not restored: they ended with the process that ran them. A record
    /// written after the leader's assignment restores a stable group; one written when a join
    /// round completed restores the group waiting for that assignment. `None` for a group
    /// without members (its generation is restored from the offsets store on first use).
    fn restore(meta: GroupMetadata, now: Instant) -> Option<Group> {
        if meta.members.is_empty() {
            return None;
        }
        let protocol = meta.protocol.clone().unwrap_or_default();
        let assigned = meta.members.iter().any(|m| !m.assignment.is_empty());
        let ms = |v: i32| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        let members: BTreeMap<String, Member> = meta
            .members
            .into_iter()
            .filter(|m| m.client_host != IN_PROCESS_HOST)
            .map(|m| {
                let member = Member {
                    client_id: m.client_id,
                    protocols: vec![(protocol.clone(), m.subscription)],
                    session_timeout: ms(m.session_timeout_ms),
                    rebalance_timeout: ms(m.rebalance_timeout_ms),
                    last_heartbeat: now,
                    last_poll: now,
                    joined: true,
                    join_generation: meta.generation,
                    assignment: assigned.then_some(m.assignment),
                    notifier: None,
                    liveness: None,
                };
                (m.member_id, member)
            })
            .collect();
        if members.is_empty() {
            return None;
        }
        Some(Group {
            state: if assigned {
                GroupState::Stable
            } else {
                GroupState::CompletingRebalance
            },
            generation: meta.generation,
            protocol_type: Some(meta.protocol_type),
            protocol: meta.protocol,
            leader: meta.leader,
            members,
            rebalance_deadline: now,
        })
    }

    fn start_rebalance(&mut self) {
        self.state = GroupState::PreparingRebalance;
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.rebalance_deadline = Instant::now() + timeout;
        for m in self.members.values_mut() {
            m.joined = false;
            m.assignment = None;
            m.wake();
        }
    }

    /// Removes members whose session or poll interval expired; returns whether any went.
    fn expire(&mut self, now: Instant) -> bool {
        let before = self.members.len();
        let preparing = self.state == GroupState::PreparingRebalance;
        self.members.retain(|_, m| {
            if preparing && m.joined {
                return true;
            }
            let gone = m.liveness.as_ref().is_some_and(|w| w.strong_count() == 0);
            let session = now.saturating_duration_since(m.last_heartbeat) > m.session_timeout;
            let poll = m.liveness.is_some()
                && now.saturating_duration_since(m.last_poll) > m.rebalance_timeout;
            !(gone || session || poll)
        });
        self.members.len() != before
    }

    /// The topics the members subscribe to, by the chosen protocol's subscriptions (during
    /// the first rebalance, before one is chosen, by every protocol a member offered). `None`
    /// when a subscription does not decode: every topic then counts as subscribed.
    fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            for (_, meta) in m
                .protocols
                .iter()
                .filter(|(n, _)| self.protocol.as_ref().is_none_or(|p| p == n))
            {
                topics.extend(Subscription::decode(meta).ok()?.topics);
            }
        }
        Some(topics)
    }

    /// Picks the protocol every member supports, by members' votes (Kafka's rule).
    fn choose_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: HashMap<&String, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(&p)) {
                *votes.entry(n).or_default() += 1;
            }
        }
        candidates
            .iter()
            .max_by_key(|c| {
                (
                    votes.get(*c).copied().unwrap_or(0),
                    std::cmp::Reverse(candidates.iter().position(|x| x == *c)),
                )
            })
            .map(|c| (*c).clone())
    }
}

/// The coordinator of every group of one `Log`.
#[derive(Debug)]
pub(crate) struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    changed: Condvar,
    pub(crate) offsets: OffsetStore,
    next_member: AtomicU64,
}

/// The `client_host` a metadata record gives an in-process consumer: such a member ends with
/// its process, so a reopened log does not restore it.
const IN_PROCESS_HOST: &str = "in-process";
/// The `client_host` of a member outside the process (the adapters do not say where from).
const REMOTE_HOST: &str = "remote";

/// How long a blocked call sleeps between checks of deadlines.
const CHECK_EVERY: Duration = Duration::from_millis(50);

fn stale(group: &str, member: &str, generation: i32, reason: &str) -> Error {
    Error::StaleMember {
        group: group.to_string(),
        member: member.to_string(),
        generation,
        reason: reason.to_string(),
    }
}

impl Coordinator {
    /// The coordinator of `offsets`' groups, with the members their last metadata records
    /// name restored (see [`Group::restore`]).
    pub(crate) fn new(offsets: OffsetStore) -> Coordinator {
        let now = Instant::now();
        let groups = offsets
            .take_loaded()
            .into_iter()
            .filter_map(|(name, meta)| Some((name, Group::restore(meta, now)?)))
            .collect();
        Coordinator {
            groups: Mutex::new(groups),
            changed: Condvar::new(),
            offsets,
            next_member: AtomicU64::new(1),
        }
    }

    fn persist(&self, name: &str, g: &Group) -> Result<()> {
        let meta = GroupMetadata {
            protocol_type: g.protocol_type.clone().unwrap_or_else(|| "consumer".into()),
            generation: g.generation,
            protocol: g.protocol.clone(),
            leader: g.leader.clone(),
            state_timestamp: now_ms(),
            members: g
                .members
                .iter()
                .map(|(id, m)| GroupMemberMetadata {
                    member_id: id.clone(),
                    group_instance_id: None,
                    client_id: m.client_id.clone(),
                    client_host: if m.liveness.is_some() {
                        IN_PROCESS_HOST
                    } else {
                        REMOTE_HOST
                    }
                    .into(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis().min(i32::MAX as u128)
                        as i32,
                    session_timeout_ms: m.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                    subscription: g
                        .protocol
                        .as_ref()
                        .and_then(|p| m.protocols.iter().find(|(n, _)| n == p))
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone().unwrap_or_default(),
                })
                .collect(),
        };
        self.offsets.record_generation(name, &meta)
    }

    /// Completes a join round: drops members that did not rejoin, bumps the generation,
    /// chooses protocol and leader.
    fn complete_join(&self, name: &str, g: &mut Group) -> Result<()> {
        g.members.retain(|_, m| m.joined);
        g.generation += 1;
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            g.protocol = None;
            g.leader = None;
        } else {
            g.protocol = g.choose_protocol();
            if g.protocol.is_none() {
                // No common protocol: Kafka refuses the join of the inconsistent member; here
                // the whole round fails and members retry with their own protocols.
                g.protocol = g
                    .members
                    .values()
                    .next()
                    .and_then(|m| m.protocols.first())
                    .map(|(n, _)| n.clone());
            }
            if !g.leader.as_ref().is_some_and(|l| g.members.contains_key(l)) {
                g.leader = g.members.keys().next().cloned();
            }
            g.state = GroupState::CompletingRebalance;
            let generation = g.generation;
            for m in g.members.values_mut() {
                m.join_generation = generation;
            }
        }
        self.persist(name, g)?;
        self.changed.notify_all();
        Ok(())
    }

    fn upkeep(&self, name: &str, g: &mut Group, now: Instant) -> Result<()> {
        if g.expire(now) {
            match g.state {
                GroupState::Stable | GroupState::CompletingRebalance => g.start_rebalance(),
                GroupState::Empty | GroupState::PreparingRebalance => {}
            }
            self.changed.notify_all();
        }
        if g.state == GroupState::PreparingRebalance
            && (g.members.values().all(|m| m.joined) || now >= g.rebalance_deadline)
        {
            self.complete_join(name, g)?;
        }
        if g.state != GroupState::Empty && g.members.is_empty() {
            g.state = GroupState::Empty;
            g.leader = None;
        }
        Ok(())
    }

    /// Joins (or rejoins) a group; blocks until the round completes or `patience` runs out.
    pub(crate) fn join(
        &self,
        req: &JoinRequest,
        notifier: Option<&Arc<Notifier>>,
        liveness: Option<&Arc<MemberSignal>>,
        patience: Patience<'_>,
    ) -> Result<Joining> {
        let mut groups = self.groups.lock();
        let generation = self.offsets.generation(&req.group);
        let g = groups
            .entry(req.group.clone())
            .or_insert_with(|| Group::new(generation));
        if let Some(pt) = &g.protocol_type
            && !g.members.is_empty()
            && pt != &req.protocol_type
        {
            return Err(Error::invalid_config(
                "protocol_type",
                format!("group '{}' uses protocol type '{pt}'", req.group),
            ));
        }
        g.protocol_type = Some(req.protocol_type.clone());
        let member_id = if req.member_id.is_empty() {
            let n = self.next_member.fetch_add(1, Ordering::Relaxed);
            format!("{}-{n:08x}-{:x}", req.client_id, now_ms())
        } else if g.members.contains_key(&req.member_id) {
            req.member_id.clone()
        } else {
            return Err(stale(&req.group, &req.member_id, -1, "unknown member id"));
        };
        let now = Instant::now();
        let member = g
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                client_id: req.client_id.clone(),
                protocols: Vec::new(),
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                last_heartbeat: now,
                last_poll: now,
                joined: false,
                join_generation: -1,
                assignment: None,
                notifier: None,
                liveness: None,
            });
        member.protocols.clone_from(&req.protocols);
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.last_heartbeat = now;
        member.last_poll = now;
        member.notifier = notifier.map(Arc::downgrade);
        member.liveness = liveness.map(Arc::downgrade);
        if g.state != GroupState::PreparingRebalance {
            g.start_rebalance();
        }
        if let Some(m) = g.members.get_mut(&member_id) {
            m.joined = true;
        }
        self.changed.notify_all();
        self.await_join(&mut groups, &req.group, member_id, patience)
    }

    /// Continues a join that returned [`Joining::Waiting`]: counts as a poll of the member,
    /// and blocks until the round completes or `patience` runs out again. A member whose
    /// round completed meanwhile gets its response at once (a follower then syncs); one that
    /// missed a whole round (removed for it) gets [`Error::StaleMember`] and joins anew.
    pub(crate) fn resume_join(
        &self,
        group: &str,
        member_id: &str,
        patience: Patience<'_>,
    ) -> Result<Joining> {
        let mut groups = self.groups.lock();
        let g = groups
            .get_mut(group)
            .ok_or_else(|| stale(group, member_id, -1, "group removed"))?;
        let me = g
            .members
            .get_mut(member_id)
            .ok_or_else(|| stale(group, member_id, -1, "removed during the rebalance"))?;
        let now = Instant::now();
        me.last_heartbeat = now;
        me.last_poll = now;
        // A round completes without the members that had not rejoined, so one still here
        // either is in the round or completed it; anything else asks for a fresh join.
        if g.state != GroupState::PreparingRebalance && me.join_generation != g.generation {
            return Err(stale(group, member_id, -1, "missed a rebalance"));
        }
        self.await_join(&mut groups, group, member_id.to_string(), patience)
    }

    /// Waits, under the coordinator's lock, until `member_id`'s round completes or
    /// `patience` runs out. The member counts as rejoined throughout, so a round that starts
    /// while it waits does not wait for it.
    fn await_join(
        &self,
        groups: &mut parking_lot::MutexGuard<'_, HashMap<String, Group>>,
        group: &str,
        member_id: String,
        patience: Patience<'_>,
    ) -> Result<Joining> {
        loop {
            let now = Instant::now();
            let g = groups
                .get_mut(group)
                .ok_or_else(|| stale(group, &member_id, -1, "group removed"))?;
            // A new round started while this call waited: this member is rejoining right now.
            if let Some(me) = g.members.get_mut(&member_id) {
                me.joined = true;
                me.last_heartbeat = now;
            }
            self.upkeep(group, g, now)?;
            let Some(me) = g.members.get(&member_id) else {
                return Err(stale(group, &member_id, -1, "removed during the rebalance"));
            };
            if g.state != GroupState::PreparingRebalance && me.join_generation == g.generation {
                let protocol = g.protocol.clone().unwrap_or_default();
                let leader = g.leader.clone().unwrap_or_default();
                let members = if leader == member_id {
                    g.members
                        .iter()
                        .map(|(id, m)| {
                            let meta = m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == protocol)
                                .map(|(_, b)| b.clone())
                                .unwrap_or_default();
                            (id.clone(), meta)
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                return Ok(Joining::Joined(JoinResponse {
                    generation: g.generation,
                    member_id,
                    leader,
                    protocol,
                    members,
                }));
            }
            if patience.exhausted(now) {
                return Ok(Joining::Waiting { member_id });
            }
            // The wake-up flag is checked every `CHECK_EVERY`: it does not notify this
            // condition variable.
            let wait_until = patience
                .cap(g.rebalance_deadline.min(now + CHECK_EVERY))
                .max(now + Duration::from_millis(1));
            self.changed.wait_until(groups, wait_until);
        }
    }

    /// Completes a member's join: the leader hands in every assignment, the others wait for
    /// theirs. Returns this member's assignment bytes, or `None` when `patience` ran out
    /// first (the member calls again, without assignments, to go on waiting). Counts as a
    /// poll of an in-process member.
    pub(crate) fn sync(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: Option<Vec<(String, Bytes)>>,
        patience: Patience<'_>,
    ) -> Result<Option<Bytes>> {
        let mut groups = self.groups.lock();
        let deadline = {
            let g = groups.get_mut(group).ok_or_else(|| Error::GroupNotFound {
                group: group.to_string(),
            })?;
            let m = g
                .members
                .get_mut(member_id)
                .ok_or_else(|| stale(group, member_id, generation, "unknown member id"))?;
            let now = Instant::now();
            m.last_heartbeat = now;
            m.last_poll = now;
            let deadline = now + m.rebalance_timeout.max(m.session_timeout);
            if generation != g.generation {
                return Err(stale(group, member_id, generation, "illegal generation"));
            }
            if g.state == GroupState::PreparingRebalance {
                return Err(Error::RebalanceInProgress {
                    group: group.to_string(),
                });
            }
            if let Some(assign) = assignments
                && g.leader.as_deref() == Some(member_id)
                && g.state == GroupState::CompletingRebalance
            {
                let map: HashMap<String, Bytes> = assign.into_iter().collect();
                for (id, m) in &mut g.members {
                    m.assignment = Some(map.get(id).cloned().unwrap_or_default());
                }
                g.state = GroupState::Stable;
                self.persist(group, g)?;
                self.changed.notify_all();
            }
            deadline
        };
        loop {
            let now = Instant::now();
            let g = groups.get_mut(group).ok_or_else(|| Error::GroupNotFound {
                group: group.to_string(),
            })?;
            self.upkeep(group, g, now)?;
            let Some(m) = g.members.get(member_id) else {
                return Err(stale(
                    group,
                    member_id,
                    generation,
                    "removed while waiting for its assignment",
                ));
            };
            if g.generation != generation || g.state == GroupState::PreparingRebalance {
                return Err(Error::RebalanceInProgress {
                    group: group.to_string(),
                });
            }
            if g.state == GroupState::Stable {
                return Ok(Some(m.assignment.clone().unwrap_or_default()));
            }
            if now >= deadline {
                return Err(Error::RebalanceInProgress {
                    group: group.to_string(),
                });
            }
            if patience.exhausted(now) {
                return Ok(None);
            }
            self.changed
                .wait_until(&mut groups, patience.cap(deadline.min(now + CHECK_EVERY)));
        }
    }

    /// A heartbeat (and, for in-process consumers, a poll). Errors tell the member to rejoin.
    pub(crate) fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        polled: bool,
    ) -> Result<()> {
        let mut groups = self.groups.lock();
        let g = groups.get_mut(group).ok_or_else(|| Error::GroupNotFound {
            group: group.to_string(),
        })?;
        let now = Instant::now();
        if let Some(m) = g.members.get_mut(member_id) {
            m.last_heartbeat = now;
            if polled {
                m.last_poll = now;
            }
        }
        self.upkeep(group, g, now)?;
        if !g.members.contains_key(member_id) {
            return Err(stale(group, member_id, generation, "unknown member id"));
        }
        if generation != g.generation {
            return Err(stale(group, member_id, generation, "illegal generation"));
        }
        if g.state == GroupState::PreparingRebalance {
            return Err(Error::RebalanceInProgress {
                group: group.to_string(),
            });
        }
        Ok(())
    }

    /// Leaves the group; the others rebalance.
    pub(crate) fn leave(&self, group: &str, member_id: &str) -> Result<()> {
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return Ok(());
        };
        if g.members.remove(member_id).is_none() {
            return Err(stale(group, member_id, -1, "unknown member id"));
        }
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            g.leader = None;
            g.generation += 1;
            self.persist(group, g)?;
        } else {
            g.start_rebalance();
            let now = Instant::now();
            self.upkeep(group, g, now)?;
        }
        self.changed.notify_all();
        Ok(())
    }

    /// Periodic upkeep (from the flusher): heartbeats on behalf of live in-process
    /// consumers, session and poll-interval expiry, rebalance deadlines.
    pub(crate) fn tick(&self) {
        let mut groups = self.groups.lock();
        let now = Instant::now();
        let names: Vec<String> = groups.keys().cloned().collect();
        for name in names {
            if let Some(g) = groups.get_mut(&name) {
                for m in g.members.values_mut() {
                    if m.liveness.as_ref().is_some_and(|w| w.strong_count() > 0) {
                        m.last_heartbeat = now;
                    }
                }
                let _ = self.upkeep(&name, g, now);
            }
        }
    }

    /// A topic was created or grew: every consumer group with a member subscribed to it
    /// rebalances now, so the leader assigns the new partitions (Kafka's leader notices the
    /// metadata change and rejoins; here the log tells the coordinator directly). The
    /// members' rebalance signals are raised, so their next poll rejoins without waiting for
    /// a heartbeat. A group still gathering members is left alone: its leader reads the
    /// partition counts after the round completes, and the log changed them before this.
    pub(crate) fn topic_changed(&self, topic: &str) {
        let mut groups = self.groups.lock();
        let mut started = false;
        for g in groups.values_mut() {
            let settled = matches!(
                g.state,
                GroupState::Stable | GroupState::CompletingRebalance
            );
            if settled
                && g.protocol_type.as_deref() == Some("consumer")
                && g.subscribed_topics().is_none_or(|t| t.contains(topic))
            {
                g.start_rebalance();
                started = true;
            }
        }
        if started {
            self.changed.notify_all();
        }
    }

    /// Stores commits inside producer `producer_id`'s transaction, after the same checks as
    /// [`Coordinator::commit`] (KIP-447: the consumer's group metadata comes with them, so a
    /// zombie member's offsets are refused). They become visible when the transaction commits.
    pub(crate) fn commit_txn(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        producer: (i64, i16),
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        self.commit_as(group, member_id, generation, Some(producer), offsets)
    }

    /// Stores commits after checking the member and generation (generation -1 with an empty
    /// member id is a standalone commit, allowed only while the group has no members).
    pub(crate) fn commit(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        self.commit_as(group, member_id, generation, None, offsets)
    }

    fn commit_as(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        producer: Option<(i64, i16)>,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        for (_, om) in offsets {
            if om.metadata.len() > 4096 {
                return Err(Error::invalid_config(
                    "metadata",
                    "offset metadata is limited to 4096 bytes",
                ));
            }
        }
        // Held across the append so a rebalance cannot slip between the check and the write.
        let groups = self.groups.lock();
        match groups.get(group) {
            Some(g) if generation >= 0 || !member_id.is_empty() => {
                if !g.members.contains_key(member_id) {
                    return Err(stale(group, member_id, generation, "unknown member id"));
                }
                if generation != g.generation {
                    return Err(stale(group, member_id, generation, "illegal generation"));
                }
            }
            Some(g) if !g.members.is_empty() => {
                return Err(stale(
                    group,
                    member_id,
                    generation,
                    "the group has active members",
                ));
            }
            None if generation >= 0 || !member_id.is_empty() => {
                return Err(stale(group, member_id, generation, "unknown member id"));
            }
            _ => {}
        }
        match producer {
            Some((id, epoch)) => self.offsets.commit_txn(id, epoch, group, offsets)?,
            None => self.offsets.commit(group, offsets)?,
        }
        drop(groups);
        Ok(())
    }

    /// State, generation, protocol type, protocol and members of a group, if it has live
    /// state.
    pub(crate) fn describe(&self, group: &str) -> LiveGroup {
        let groups = self.groups.lock();
        let Some(g) = groups.get(group) else {
            return LiveGroup {
                state: GroupState::Empty,
                generation: self.offsets.generation(group),
                protocol_type: None,
                protocol: None,
                members: Vec::new(),
            };
        };
        let members = g
            .members
            .iter()
            .map(|(id, m)| MemberDescription {
                member_id: id.clone(),
                client_id: m.client_id.clone(),
                assignment: m
                    .assignment
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .and_then(|a| super::protocol::Assignment::decode(a).ok())
                    .map(|a| a.partitions)
                    .unwrap_or_default(),
                member_metadata: g
                    .protocol
                    .as_ref()
                    .and_then(|p| m.protocols.iter().find(|(n, _)| n == p))
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default(),
                member_assignment: m.assignment.clone().unwrap_or_default(),
            })
            .collect();
        LiveGroup {
            state: g.state,
            generation: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            members,
        }
    }

    /// Deletes `group`'s committed offsets of `partitions`, except those of topics its live
    /// members subscribe to (Kafka's rule for OffsetDelete), each of which gets
    /// [`Error::GroupSubscribedToTopic`]. The check and the delete happen under the group
    /// lock, so no member joins between them. A group with members of another protocol type
    /// than `consumer` (whose subscriptions cannot be read) is refused whole with
    /// [`Error::GroupNotEmpty`]; a member whose subscription does not decode counts as
    /// subscribed to every topic.
    pub(crate) fn delete_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let groups = self.groups.lock();
        // `None`: every topic counts as subscribed.
        let subscribed: Option<BTreeSet<String>> = match groups.get(group) {
            Some(g) if !g.members.is_empty() => {
                if g.protocol_type.as_deref() != Some("consumer") {
                    return Err(Error::GroupNotEmpty {
                        group: group.to_string(),
                    });
                }
                g.subscribed_topics()
            }
            _ => Some(BTreeSet::new()),
        };
        let mut out = Vec::with_capacity(partitions.len());
        let mut delete = Vec::new();
        for tp in partitions {
            if subscribed.as_ref().is_none_or(|s| s.contains(&tp.topic)) {
                let refused = Error::GroupSubscribedToTopic {
                    group: group.to_string(),
                    topic: tp.topic.clone(),
                };
                out.push((tp.clone(), Err(refused)));
            } else {
                delete.push(tp.clone());
                out.push((tp.clone(), Ok(())));
            }
        }
        self.offsets.delete_partitions(group, &delete)?;
        drop(groups);
        Ok(out)
    }

    /// Whether the group has live state (members now or since the log opened).
    pub(crate) fn is_live(&self, group: &str) -> bool {
        self.groups.lock().contains_key(group)
    }

    pub(crate) fn live_groups(&self) -> Vec<String> {
        self.groups.lock().keys().cloned().collect()
    }

    /// Fails unless the group has no members.
    pub(crate) fn ensure_empty(&self, group: &str) -> Result<()> {
        if self
            .groups
            .lock()
            .get(group)
            .is_some_and(|g| !g.members.is_empty())
        {
            return Err(Error::GroupNotEmpty {
                group: group.to_string(),
            });
        }
        Ok(())
    }

    /// Wakes every waiting member (log close).
    pub(crate) fn wake_all(&self) {
        let groups = self.groups.lock();
        for g in groups.values() {
            for m in g.members.values() {
                m.wake();
            }
        }
        self.changed.notify_all();
    }

    /// Forgets a group's live state (after its offsets were deleted).
    pub(crate) fn forget(&self, group: &str) {
        let mut groups = self.groups.lock();
        if groups.get(group).is_some_and(|g| g.members.is_empty()) {
            groups.remove(group);
        }
    }
}
