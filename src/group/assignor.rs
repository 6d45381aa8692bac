//! The partition assignors Kafka's consumer clients offer, under their Kafka names: `range`,
//! `roundrobin` and `sticky`.
//!
//! In the classic group protocol the group leader runs an assignor over every member's
//! [`Subscription`] and sends the result back in SyncGroup. All assignors here share these rules:
//!
//! - every member of the input appears in the output, possibly with an empty list;
//! - every partition of every topic some member subscribes to is assigned to exactly one member
//!   that subscribes to its topic;
//! - topics missing from `partitions_per_topic` (or with a count of 0 or less) are skipped;
//! - each member's list is sorted by (topic, partition);
//! - the result depends only on the input, never on iteration order of hash maps or on time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::protocol::Subscription;
use crate::TopicPartition;

/// A partition assignment strategy of the classic consumer group protocol.
pub trait Assignor: Send + Sync {
    /// The strategy's name as consumers announce it in JoinGroup
    /// (`partition.assignment.strategy`).
    fn name(&self) -> &'static str;

    /// Assigns the partitions of the subscribed topics to `members` (member id to subscription).
    ///
    /// `partitions_per_topic` gives each topic's partition count; subscribed topics missing from
    /// it are skipped. Every member appears in the result; lists are sorted by (topic, partition).
    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>>;
}

/// Kafka's `range` assignor (the default strategy together with `cooperative-sticky`).
///
/// Works topic by topic: the members subscribed to the topic, sorted by member id, each receive a
/// contiguous range of its partitions in order; with `n` partitions and `m` members, each gets
/// `n / m` and the first `n % m` members one more.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

/// Kafka's `roundrobin` assignor.
///
/// All partitions of all subscribed topics, sorted by (topic, partition), are dealt out one by one
/// to the members sorted by member id, in a circle; a member not subscribed to a partition's topic
/// is skipped for that partition.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

/// Kafka's `sticky` assignor: a balanced assignment that keeps as many of each member's
/// previously owned partitions (`Subscription::owned_partitions`, version 1+) as balance allows.
///
/// Owned partitions count only while still valid: the topic still exists with that partition, the
/// member still subscribes to it, the member's `generation_id` is the highest among the members
/// (claims from members that missed a generation are stale), and no other member of that
/// generation claims the same partition (such conflicting claims are dropped from both, as Kafka
/// does).
///
/// When all members subscribe to the same topics, every member receives `P / M` or `P / M + 1`
/// partitions, the extra ones going to the members that own the most, and the number of owned
/// partitions that change hands is the smallest possible. With differing subscriptions the result
/// is balanced in Kafka's sense: no partition can move from a member to another subscriber of its
/// topic that holds at least two fewer partitions (so members with identical subscriptions differ
/// by at most one); owned partitions are kept first, free ones go to the least-loaded subscriber,
/// and balancing moves prefer partitions that were not owned.
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

/// The strategy names [`assignor_by_name`] knows.
pub const ASSIGNORS: [&str; 3] = ["range", "roundrobin", "sticky"];

/// The assignor for a Kafka strategy name: `range`, `roundrobin` or `sticky`.
///
/// Other names give `None`, Kafka's `cooperative-sticky` among them: its protocol revokes
/// moved partitions in a second rebalance round, which topiclog's in-process consumers do not
/// run, so taking it for `sticky` would promise what is not done. (Network clients that use
/// it run their own assignor; the coordinator only picks a protocol all members name.)
pub fn assignor_by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "range" => Some(Box::new(RangeAssignor)),
        "roundrobin" => Some(Box::new(RoundRobinAssignor)),
        "sticky" => Some(Box::new(StickyAssignor)),
        _ => None,
    }
}

/// The assignor for a strategy name: [`assignor_by_name`]'s, and `stream`, Kafka Streams'
/// task assignor (whole tasks, sub-topologies spread over members), which
/// `topiclog::streams` uses.
pub(crate) fn any_assignor(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "stream" => Some(Box::new(super::task_assignor::StreamAssignor)),
        _ => assignor_by_name(name),
    }
}

/// A partition as (topic, partition), borrowing the topic name.
type Part<'a> = (&'a str, i32);

/// The partition count of `topic`, 0 if unknown or negative.
fn partition_count(partitions_per_topic: &BTreeMap<String, i32>, topic: &str) -> i32 {
    partitions_per_topic.get(topic).copied().unwrap_or(0).max(0)
}

/// The topics `sub` subscribes to that exist with at least one partition, deduplicated.
fn valid_topics<'a>(
    sub: &'a Subscription,
    partitions_per_topic: &BTreeMap<String, i32>,
) -> BTreeSet<&'a str> {
    sub.topics
        .iter()
        .map(String::as_str)
        .filter(|topic| partition_count(partitions_per_topic, topic) > 0)
        .collect()
}

/// Every member with an empty list.
fn empty_assignment(
    members: &BTreeMap<String, Subscription>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    members.keys().map(|id| (id.clone(), Vec::new())).collect()
}

/// Builds the output map from per-member lists (in member-id order), sorting each list.
fn into_output<'a>(
    members: &BTreeMap<String, Subscription>,
    lists: impl IntoIterator<Item = Vec<Part<'a>>>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out = empty_assignment(members);
    for (list, mut parts) in out.values_mut().zip(lists) {
        parts.sort_unstable();
        list.extend(parts.into_iter().map(|(t, p)| TopicPartition::new(t, p)));
    }
    out
}

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut out = empty_assignment(members);
        // Members are visited in id order, so each topic's subscriber list is sorted.
        let mut subscribers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, sub) in members {
            for topic in valid_topics(sub, partitions_per_topic) {
                subscribers.entry(topic).or_default().push(id);
            }
        }
        for (topic, ids) in &subscribers {
            let n = partition_count(partitions_per_topic, topic) as usize;
            let m = ids.len().max(1);
            let (per_member, extra) = (n / m, n % m);
            let mut next = 0usize;
            for (i, id) in ids.iter().enumerate() {
                let len = per_member + usize::from(i < extra);
                if let Some(list) = out.get_mut(*id) {
                    list.extend((next..next + len).map(|p| TopicPartition::new(*topic, p as i32)));
                }
                next += len;
            }
        }
        for list in out.values_mut() {
            list.sort_unstable();
        }
        out
    }
}

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let subs: Vec<BTreeSet<&str>> = members
            .values()
            .map(|sub| valid_topics(sub, partitions_per_topic))
            .collect();
        let all_topics: BTreeSet<&str> = subs.iter().flatten().copied().collect();
        let m = subs.len();
        let mut lists: Vec<Vec<Part<'_>>> = vec![Vec::new(); m];
        let mut cursor = 0usize;
        for topic in all_topics {
            for partition in 0..partition_count(partitions_per_topic, topic) {
                // Skip members not subscribed to the topic; one is, since the topic came from a
                // subscription, so at most `m` steps are needed.
                for _ in 0..m {
                    if subs
                        .get(cursor)
                        .is_some_and(|topics| topics.contains(topic))
                    {
                        break;
                    }
                    cursor = (cursor + 1) % m;
                }
                if let Some(list) = lists.get_mut(cursor) {
                    list.push((topic, partition));
                }
                cursor = (cursor + 1) % m;
            }
        }
        into_output(members, lists)
    }
}

impl Assignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        if members.is_empty() {
            return BTreeMap::new();
        }
        let subs: Vec<BTreeSet<&str>> = members
            .values()
            .map(|sub| valid_topics(sub, partitions_per_topic))
            .collect();
        let mut all: BTreeSet<Part<'_>> = BTreeSet::new();
        for topic in subs.iter().flatten() {
            for partition in 0..partition_count(partitions_per_topic, topic) {
                all.insert((topic, partition));
            }
        }
        let owned = valid_owned(members, &subs, partitions_per_topic);
        let lists = if subs.iter().all(|topics| Some(topics) == subs.first()) {
            assign_identical(&all, owned)
        } else {
            assign_general(&all, &subs, &owned)
        };
        into_output(members, lists)
    }
}

/// Each member's (by index in id order) valid owned partitions; see [`StickyAssignor`].
fn valid_owned<'a>(
    members: &'a BTreeMap<String, Subscription>,
    subs: &[BTreeSet<&'a str>],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Vec<BTreeSet<Part<'a>>> {
    let max_generation = members
        .values()
        .map(|sub| sub.generation_id)
        .max()
        .unwrap_or(-1);
    let mut claims: BTreeMap<Part<'a>, Vec<usize>> = BTreeMap::new();
    for (i, (sub, topics)) in members.values().zip(subs).enumerate() {
        if sub.generation_id < max_generation {
            continue;
        }
        let mine: BTreeSet<Part<'a>> = sub
            .owned_partitions
            .iter()
            .filter(|tp| {
                topics.contains(tp.topic.as_str())
                    && tp.partition >= 0
                    && tp.partition < partition_count(partitions_per_topic, &tp.topic)
            })
            .map(|tp| (tp.topic.as_str(), tp.partition))
            .collect();
        for part in mine {
            claims.entry(part).or_default().push(i);
        }
    }
    let mut owned = vec![BTreeSet::new(); subs.len()];
    for (part, claimants) in claims {
        if let [only] = claimants.as_slice()
            && let Some(set) = owned.get_mut(*only)
        {
            set.insert(part);
        }
    }
    owned
}

/// Sticky assignment when every member subscribes to the same topics: exact quotas, the larger
/// quota going to the members that own the most, so the fewest owned partitions move.
fn assign_identical<'a>(
    all: &BTreeSet<Part<'a>>,
    owned: Vec<BTreeSet<Part<'a>>>,
) -> Vec<Vec<Part<'a>>> {
    let m = owned.len().max(1);
    let (min_quota, extra) = (all.len() / m, all.len() % m);
    let mut by_owned: Vec<(usize, usize)> = owned
        .iter()
        .enumerate()
        .map(|(i, set)| (set.len(), i))
        .collect();
    by_owned.sort_unstable_by_key(|&(len, i)| (Reverse(len), i));
    let mut quota = vec![min_quota; owned.len()];
    for &(_, i) in by_owned.iter().take(extra) {
        if let Some(q) = quota.get_mut(i) {
            *q += 1;
        }
    }
    let mut lists: Vec<Vec<Part<'a>>> = owned
        .into_iter()
        .zip(&quota)
        .map(|(set, &q)| set.into_iter().take(q).collect())
        .collect();
    let kept: BTreeSet<Part<'a>> = lists.iter().flatten().copied().collect();
    let mut free = all.iter().filter(|part| !kept.contains(*part)).copied();
    for (list, &q) in lists.iter_mut().zip(&quota) {
        while list.len() < q {
            match free.next() {
                Some(part) => list.push(part),
                None => break,
            }
        }
    }
    lists
}

/// Sticky assignment for differing subscriptions: keep owned partitions, give each free partition
/// (those with the fewest possible owners first) to its least-loaded subscriber, then move
/// partitions from a member to a subscriber holding at least two fewer until no such move exists.
fn assign_general<'a>(
    all: &BTreeSet<Part<'a>>,
    subs: &[BTreeSet<&'a str>],
    owned: &[BTreeSet<Part<'a>>],
) -> Vec<Vec<Part<'a>>> {
    let mut held: Vec<BTreeSet<Part<'a>>> = owned.to_vec();
    let mut subscribers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, topics) in subs.iter().enumerate() {
        for topic in topics {
            subscribers.entry(topic).or_default().push(i);
        }
    }
    let kept: BTreeSet<Part<'a>> = held.iter().flatten().copied().collect();
    let mut free: Vec<Part<'a>> = all
        .iter()
        .filter(|part| !kept.contains(*part))
        .copied()
        .collect();
    free.sort_by_key(|&(topic, partition)| {
        (subscribers.get(topic).map_or(0, Vec::len), topic, partition)
    });
    for part in free {
        let target = subscribers.get(part.0).and_then(|candidates| {
            candidates
                .iter()
                .copied()
                .min_by_key(|&i| (held.get(i).map_or(0, BTreeSet::len), i))
        });
        if let Some(set) = target.and_then(|i| held.get_mut(i)) {
            set.insert(part);
        }
    }
    // Every move goes from a member with at least two more partitions than the receiver, so the
    // sum of squared counts falls by at least 2 each time and the loop ends.
    while let Some((from, to, part)) = find_move(&held, subs, owned, &subscribers) {
        if let Some(set) = held.get_mut(from) {
            set.remove(&part);
        }
        if let Some(set) = held.get_mut(to) {
            set.insert(part);
        }
    }
    held.into_iter()
        .map(|set| set.into_iter().collect())
        .collect()
}

/// A partition to move from a member to a subscriber of its topic holding at least two fewer
/// partitions: the least-loaded receiver first; a partition its holder did not own before if any
/// such move exists for that receiver, else one from the most-loaded holder.
fn find_move<'a>(
    held: &[BTreeSet<Part<'a>>],
    subs: &[BTreeSet<&'a str>],
    owned: &[BTreeSet<Part<'a>>],
    subscribers: &BTreeMap<&str, Vec<usize>>,
) -> Option<(usize, usize, Part<'a>)> {
    let count = |i: usize| held.get(i).map_or(0, BTreeSet::len);
    let mut receivers: Vec<usize> = (0..held.len()).collect();
    receivers.sort_unstable_by_key(|&i| (count(i), i));
    let max = receivers.last().map_or(0, |&i| count(i));
    for &to in &receivers {
        let to_count = count(to);
        if to_count + 2 > max {
            break;
        }
        let to_topics = subs.get(to)?;
        // Only subscribers of `to`'s topics can hold partitions `to` may take.
        let mut sources: Vec<usize> = to_topics
            .iter()
            .filter_map(|topic| subscribers.get(topic))
            .flatten()
            .copied()
            .filter(|&from| count(from) >= to_count + 2)
            .collect();
        sources.sort_unstable_by_key(|&i| (Reverse(count(i)), i));
        sources.dedup();
        // The partitions of `from` whose topic `to` subscribes to, in (topic, partition) order.
        let movable = |from: usize| {
            let set = held.get(from);
            to_topics.iter().flat_map(move |&topic| {
                set.into_iter()
                    .flat_map(move |set| set.range((topic, i32::MIN)..=(topic, i32::MAX)))
                    .copied()
            })
        };
        for &from in &sources {
            let previously_owned = owned.get(from);
            if let Some(part) =
                movable(from).find(|part| !previously_owned.is_some_and(|set| set.contains(part)))
            {
                return Some((from, to, part));
            }
        }
        for &from in &sources {
            if let Some(part) = movable(from).next() {
                return Some((from, to, part));
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    fn topics(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|&(t, n)| (t.to_string(), n)).collect()
    }

    fn members(list: &[(&str, Subscription)]) -> BTreeMap<String, Subscription> {
        list.iter()
            .map(|(id, sub)| ((*id).to_string(), sub.clone()))
            .collect()
    }

    fn owning(topic_list: &[&str], owned: &[TopicPartition]) -> Subscription {
        Subscription {
            owned_partitions: owned.to_vec(),
            generation_id: 1,
            ..Subscription::new(topic_list.iter().copied())
        }
    }

    /// Checks the rules every assignor shares; returns the owner of each partition.
    fn check_common(
        members: &BTreeMap<String, Subscription>,
        ppt: &BTreeMap<String, i32>,
        result: &BTreeMap<String, Vec<TopicPartition>>,
    ) -> BTreeMap<TopicPartition, String> {
        assert_eq!(
            result.keys().collect::<Vec<_>>(),
            members.keys().collect::<Vec<_>>()
        );
        let mut owner = BTreeMap::new();
        for (id, list) in result {
            let mut sorted = list.clone();
            sorted.sort();
            assert_eq!(&sorted, list, "list of {id} is sorted");
            for p in list {
                assert!(members[id].topics.contains(&p.topic), "{id} subscribes {p}");
                assert!(
                    owner.insert(p.clone(), id.clone()).is_none(),
                    "{p} assigned once"
                );
            }
        }
        let mut expected = BTreeSet::new();
        for sub in members.values() {
            for t in &sub.topics {
                for p in 0..ppt.get(t).copied().unwrap_or(0) {
                    expected.insert(tp(t, p));
                }
            }
        }
        assert_eq!(owner.keys().cloned().collect::<BTreeSet<_>>(), expected);
        owner
    }

    #[test]
    fn names_resolve() {
        for name in ["range", "roundrobin", "sticky"] {
            assert_eq!(assignor_by_name(name).unwrap().name(), name);
        }
        assert!(assignor_by_name("cooperative-sticky").is_none());
        assert!(assignor_by_name("uniform").is_none());
    }

    #[test]
    fn range_matches_kafka_example() {
        let m = members(&[
            ("C0", Subscription::new(["t0", "t1"])),
            ("C1", Subscription::new(["t0", "t1"])),
        ]);
        let ppt = topics(&[("t0", 3), ("t1", 3)]);
        let out = RangeAssignor.assign(&m, &ppt);
        check_common(&m, &ppt, &out);
        assert_eq!(
            out["C0"],
            vec![tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
        );
        assert_eq!(out["C1"], vec![tp("t0", 2), tp("t1", 2)]);
    }

    #[test]
    fn range_gives_extras_to_the_first_members_per_topic() {
        let m = members(&[
            ("a", Subscription::new(["t"])),
            ("b", Subscription::new(["t", "u"])),
            ("c", Subscription::new(["t", "missing"])),
        ]);
        let ppt = topics(&[("t", 8), ("u", 2)]);
        let out = RangeAssignor.assign(&m, &ppt);
        check_common(&m, &ppt, &out);
        assert_eq!(out["a"], (0..3).map(|p| tp("t", p)).collect::<Vec<_>>());
        assert_eq!(
            out["b"],
            vec![tp("t", 3), tp("t", 4), tp("t", 5), tp("u", 0), tp("u", 1)]
        );
        assert_eq!(out["c"], vec![tp("t", 6), tp("t", 7)]);
    }

    #[test]
    fn roundrobin_matches_kafka_example() {
        let m = members(&[
            ("C0", Subscription::new(["t0", "t1"])),
            ("C1", Subscription::new(["t0", "t1"])),
        ]);
        let ppt = topics(&[("t0", 3), ("t1", 3)]);
        let out = RoundRobinAssignor.assign(&m, &ppt);
        check_common(&m, &ppt, &out);
        assert_eq!(out["C0"], vec![tp("t0", 0), tp("t0", 2), tp("t1", 1)]);
        assert_eq!(out["C1"], vec![tp("t0", 1), tp("t1", 0), tp("t1", 2)]);
    }

    #[test]
    fn roundrobin_skips_unsubscribed_members() {
        // Kafka's javadoc example: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2]; t0 1, t1 2, t2 3.
        let m = members(&[
            ("C0", Subscription::new(["t0"])),
            ("C1", Subscription::new(["t0", "t1"])),
            ("C2", Subscription::new(["t0", "t1", "t2"])),
        ]);
        let ppt = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
        let out = RoundRobinAssignor.assign(&m, &ppt);
        check_common(&m, &ppt, &out);
        assert_eq!(out["C0"], vec![tp("t0", 0)]);
        assert_eq!(out["C1"], vec![tp("t1", 0)]);
        assert_eq!(
            out["C2"],
            vec![tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]
        );
    }

    #[test]
    fn empty_inputs() {
        let ppt = topics(&[("t", 3)]);
        for assignor in [
            assignor_by_name("range").unwrap(),
            assignor_by_name("roundrobin").unwrap(),
            assignor_by_name("sticky").unwrap(),
        ] {
            assert!(assignor.assign(&BTreeMap::new(), &ppt).is_empty());
            let m = members(&[
                ("a", Subscription::new(["nope"])),
                ("b", Subscription::default()),
            ]);
            let out = assignor.assign(&m, &ppt);
            assert_eq!(out.len(), 2);
            assert!(out.values().all(Vec::is_empty));
        }
    }

    #[test]
    fn sticky_survivors_keep_everything_when_a_member_leaves() {
        let ppt = topics(&[("t0", 4), ("t1", 2)]);
        let all = ["t0", "t1"];
        let before = members(&[
            ("a", Subscription::new(all)),
            ("b", Subscription::new(all)),
            ("c", Subscription::new(all)),
        ]);
        let first = StickyAssignor.assign(&before, &ppt);
        check_common(&before, &ppt, &first);
        assert!(first.values().all(|l| l.len() == 2));

        let after = members(&[
            ("a", owning(&all, &first["a"])),
            ("c", owning(&all, &first["c"])),
        ]);
        let second = StickyAssignor.assign(&after, &ppt);
        check_common(&after, &ppt, &second);
        for id in ["a", "c"] {
            assert_eq!(second[id].len(), 3);
            assert!(
                first[id].iter().all(|p| second[id].contains(p)),
                "{id} kept its partitions"
            );
        }
    }

    #[test]
    fn sticky_join_moves_the_minimum() {
        let ppt = topics(&[("t", 7)]);
        let a_owned: Vec<_> = (0..4).map(|p| tp("t", p)).collect();
        let b_owned: Vec<_> = (4..7).map(|p| tp("t", p)).collect();
        let m = members(&[
            ("a", owning(&["t"], &a_owned)),
            ("b", owning(&["t"], &b_owned)),
            ("c", owning(&["t"], &[])),
        ]);
        let out = StickyAssignor.assign(&m, &ppt);
        check_common(&m, &ppt, &out);
        let mut counts: Vec<usize> = out.values().map(Vec::len).collect();
        counts.sort_unstable();
        assert_eq!(counts, vec![2, 2, 3]);
        // 7 partitions over 3 members: a keeps 3 of 4, b keeps 2 of 3, c receives exactly 2.
        assert_eq!(out["a"].iter().filter(|p| a_owned.contains(p)).count(), 3);
        assert_eq!(out["b"].iter().filter(|p| b_owned.contains(p)).count(), 2);
        assert_eq!(out["c"].len(), 2);
    }

    #[test]
    fn sticky_ignores_stale_and_conflicting_claims() {
        let ppt = topics(&[("t", 4)]);
        let mut stale = owning(&["t"], &[tp("t", 0), tp("t", 1)]);
        stale.generation_id = 0;
        let m = members(&[
            ("a", owning(&["t"], &[tp("t", 2), tp("t", 3)])),
            ("b", owning(&["t"], &[tp("t", 3)])),
            ("c", stale),
        ]);
        let out = StickyAssignor.assign(&m, &ppt);
        check_common(&m, &ppt, &out);
        // a keeps t-2 (its only uncontested claim); t-3 is contested by a and b in the same
        // generation, c's claims are a generation old.
        assert!(out["a"].contains(&tp("t", 2)));
        assert_eq!(out["a"], vec![tp("t", 0), tp("t", 2)]);
        assert_eq!(out["b"], vec![tp("t", 1)]);
        assert_eq!(out["c"], vec![tp("t", 3)]);
    }

    #[test]
    fn sticky_with_differing_subscriptions_keeps_owned_and_balances() {
        let ppt = topics(&[("t0", 3), ("t1", 3)]);
        let m = members(&[
            (
                "a",
                owning(&["t0"], &[tp("t0", 0), tp("t0", 1), tp("t0", 2)]),
            ),
            ("b", owning(&["t0", "t1"], &[tp("t1", 0)])),
            ("c", owning(&["t1"], &[])),
        ]);
        let out = StickyAssignor.assign(&m, &ppt);
        check_common(&m, &ppt, &out);
        assert_eq!(out["a"], vec![tp("t0", 0), tp("t0", 1), tp("t0", 2)]);
        // The free t1-1 goes to the emptiest subscriber (c), then t1-2 to b (a tie, lower id);
        // 3/2/1 is balanced: a's partitions are of no interest to c.
        assert_eq!(out["b"], vec![tp("t1", 0), tp("t1", 2)]);
        assert_eq!(out["c"], vec![tp("t1", 1)]);
        // Repeating the assignment with the result as owned partitions changes nothing.
        let again = members(&[
            ("a", owning(&["t0"], &out["a"])),
            ("b", owning(&["t0", "t1"], &out["b"])),
            ("c", owning(&["t1"], &out["c"])),
        ]);
        assert_eq!(StickyAssignor.assign(&again, &ppt), out);
    }

    /// Random members: subscriptions over t0..t3 and owned partitions from a random previous
    /// owner per partition (an index that may be a member that has since left).
    fn arb_group() -> impl Strategy<Value = (BTreeMap<String, Subscription>, BTreeMap<String, i32>)>
    {
        (
            proptest::collection::vec(0i32..6, 4),
            1usize..7,
            proptest::collection::vec(proptest::collection::btree_set(0usize..5, 0..4), 7),
            proptest::collection::vec(0usize..9, 24),
            any::<bool>(),
        )
            .prop_map(|(counts, n, subsets, previous, identical)| {
                let names = ["t0", "t1", "t2", "t3", "gone"];
                // "gone" (index 4) is subscribed to but missing from the partition counts.
                let ppt: BTreeMap<String, i32> = names[..4]
                    .iter()
                    .zip(&counts)
                    .map(|(t, c)| ((*t).to_string(), *c))
                    .collect();
                let mut members = BTreeMap::new();
                for i in 0..n {
                    let subset = if identical { &subsets[0] } else { &subsets[i] };
                    let mut sub = Subscription::new(subset.iter().map(|&t| names[t]));
                    sub.generation_id = 3;
                    let mut k = 0;
                    for (t, &c) in names[..4].iter().zip(&counts) {
                        for p in 0..c {
                            if previous[k % previous.len()] == i {
                                sub.owned_partitions.push(tp(t, p));
                            }
                            k += 1;
                        }
                    }
                    // A claim on a partition that no longer exists.
                    if i == 0 {
                        sub.owned_partitions.push(tp("t0", 99));
                    }
                    members.insert(format!("m{i}"), sub);
                }
                (members, ppt)
            })
    }

    proptest! {
        #[test]
        fn all_assignors_cover_each_partition_once((m, ppt) in arb_group()) {
            for assignor in [
                Box::new(RangeAssignor) as Box<dyn Assignor>,
                Box::new(RoundRobinAssignor),
                Box::new(StickyAssignor),
            ] {
                let out = assignor.assign(&m, &ppt);
                check_common(&m, &ppt, &out);
                prop_assert_eq!(&assignor.assign(&m, &ppt), &out, "deterministic");
            }
        }

        #[test]
        fn sticky_is_balanced_and_keeps_what_balance_allows((m, ppt) in arb_group()) {
            let out = StickyAssignor.assign(&m, &ppt);
            check_common(&m, &ppt, &out);
            // Valid owned partitions: subscribed, existing (all claims are disjoint here).
            let owned: BTreeMap<&String, Vec<&TopicPartition>> = m
                .iter()
                .map(|(id, sub)| {
                    let valid = sub
                        .owned_partitions
                        .iter()
                        .filter(|p| {
                            sub.topics.contains(&p.topic)
                                && p.partition < ppt.get(&p.topic).copied().unwrap_or(0)
                        })
                        .collect();
                    (id, valid)
                })
                .collect();
            // Kafka's balance: no partition could move to a subscriber holding two fewer.
            for (x, xs) in &out {
                for (y, ys) in &out {
                    if xs.len() >= ys.len() + 2 {
                        prop_assert!(
                            xs.iter().all(|p| !m[y].topics.contains(&p.topic)),
                            "{} could give a partition to {}", x, y
                        );
                    }
                }
            }
            let first_topics: BTreeSet<&String> =
                m.values().next().unwrap().topics.iter().collect();
            let identical = m.values().all(|s| s.topics.iter().collect::<BTreeSet<_>>() == first_topics);
            if identical {
                let counts: Vec<usize> = out.values().map(Vec::len).collect();
                let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                prop_assert!(hi - lo <= 1);
                // Retention is optimal: the larger quota goes to the members owning the most.
                let total: usize = counts.iter().sum();
                let (q, r) = (total / counts.len(), total % counts.len());
                let mut owned_counts: Vec<usize> = owned.values().map(Vec::len).collect();
                owned_counts.sort_unstable_by(|a, b| b.cmp(a));
                let best: usize = owned_counts
                    .iter()
                    .enumerate()
                    .map(|(i, &o)| o.min(if i < r { q + 1 } else { q }))
                    .sum();
                let kept: usize = owned
                    .iter()
                    .map(|(id, list)| list.iter().filter(|p| out[*id].contains(p)).count())
                    .sum();
                prop_assert_eq!(kept, best);
                // Every member keeps at least as many owned partitions as the minimum quota allows.
                for (id, list) in &owned {
                    let kept_here = list.iter().filter(|p| out[*id].contains(p)).count();
                    prop_assert!(kept_here >= list.len().min(q));
                }
            }
            // Stability: with the result as owned partitions, nothing moves.
            let next: BTreeMap<String, Subscription> = m
                .iter()
                .map(|(id, sub)| {
                    let mut sub = sub.clone();
                    sub.owned_partitions = out[id].clone();
                    sub.generation_id += 1;
                    (id.clone(), sub)
                })
                .collect();
            prop_assert_eq!(StickyAssignor.assign(&next, &ppt), out);
        }
    }
}
