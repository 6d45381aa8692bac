//! The `stream` assignor: partitions assigned as whole tasks, as Kafka Streams' assignor
//! assigns them.
//!
//! A stream processing application's members send, in their subscription's user data, the
//! map of its sub-topologies to their source topics (a task map). A task is one
//! sub-topology's partition `p`: partition `p` of each of its topics (co-partitioned topics
//! are read together). The assignor gives each task, whole, to one member:
//!
//! - a task stays with the member that owned it at the highest generation, as long as that
//!   member holds no more than its share (tasks hold state: moving one means restoring it);
//! - the others go, in (sub-topology, partition) order, to the member with the fewest tasks of
//!   the same sub-topology, then the fewest in all, then the lowest member id, among members
//!   below their share. Each sub-topology is spread evenly, so members run the different
//!   parts of a topology side by side (one member per sub-topology when a topology of two
//!   reads one partition), which is what lets two stream threads use two cores.
//!
//! Members without a readable task map contribute none; without any map, each subscribed
//! topic is a sub-topology of its own. A task goes only to members subscribed to all its
//! topics; a task no member can take whole is split by topic.
//!
//! The task map: `version:int16 (0)`, then `subtopologies:[id:int32 topics:[string]]`, in
//! the consumer protocol's encodings.

use std::collections::{BTreeMap, BTreeSet};

use super::assignor::Assignor;
use super::protocol::Subscription;
use super::protocol::wire::{Reader, Writer};
use crate::TopicPartition;
use crate::error::Result;

/// The sub-topologies of a stream application: id to its source topics.
pub(crate) type TaskMap = BTreeMap<i32, Vec<String>>;

/// Encodes a task map as the subscription's user data.
#[cfg_attr(not(feature = "streams"), allow(dead_code))]
pub(crate) fn encode_task_map(map: &TaskMap) -> Vec<u8> {
    let mut w = Writer::new("stream task map");
    w.i16(0);
    let n = w.array_len("subtopologies", map.len());
    for (id, topics) in map.iter().take(n) {
        w.i32(*id);
        let m = w.array_len("topics", topics.len());
        for t in topics.iter().take(m) {
            w.string("topics", t);
        }
    }
    w.finish()
}

/// Decodes a task map; any version (later fields ignored).
pub(crate) fn decode_task_map(buf: &[u8]) -> Result<TaskMap> {
    let mut r = Reader::new(buf, "stream task map");
    r.version()?;
    let n = r.array_len("subtopologies", 8)?;
    let mut map = TaskMap::new();
    for _ in 0..n {
        let id = r.i32("id")?;
        let m = r.array_len("topics", 2)?;
        let mut topics = Vec::with_capacity(m);
        for _ in 0..m {
            topics.push(r.string("topics")?);
        }
        map.insert(id, topics);
    }
    Ok(map)
}

/// Kafka Streams' task assignment (the strategy Kafka Streams names `stream`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StreamAssignor;

impl Assignor for StreamAssignor {
    fn name(&self) -> &'static str {
        "stream"
    }

    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let count = |t: &str| partitions_per_topic.get(t).copied().unwrap_or(0).max(0);
        let mut loads: Vec<Load<'_>> = members
            .values()
            .map(|s| Load {
                topics: s.topics.iter().map(String::as_str).collect(),
                total: 0,
                per_group: BTreeMap::new(),
                parts: Vec::new(),
            })
            .collect();
        let all: BTreeSet<&str> = loads
            .iter()
            .flat_map(|l| l.topics.iter().copied())
            .collect();

        // The sub-topologies: the first readable task map (by member id), limited to
        // subscribed topics; every other subscribed topic a sub-topology of its own.
        let map = members
            .values()
            .find_map(|s| decode_task_map(s.user_data.as_deref()?).ok())
            .unwrap_or_default();
        let mut groups: Vec<Vec<&str>> = Vec::new();
        let mut grouped = BTreeSet::new();
        for topics in map.values() {
            let g: Vec<&str> = topics
                .iter()
                .map(String::as_str)
                .filter(|t| all.contains(t) && grouped.insert(*t))
                .collect();
            if !g.is_empty() {
                groups.push(g);
            }
        }
        for t in &all {
            if !grouped.contains(t) {
                groups.push(vec![t]);
            }
        }

        // Tasks, each taken by the members subscribed to all its topics (split by topic when
        // no member is).
        let mut tasks: Vec<Task<'_>> = Vec::new();
        for (group, g) in groups.iter().enumerate() {
            let n = g.iter().map(|t| count(t)).max().unwrap_or(0);
            for p in 0..n {
                let parts: Vec<(&str, i32)> =
                    g.iter().filter(|t| count(t) > p).map(|t| (*t, p)).collect();
                let takers = takers_of(&loads, &parts);
                if takers.is_empty() {
                    for part in parts {
                        let parts = vec![part];
                        let takers = takers_of(&loads, &parts);
                        tasks.push(Task {
                            group,
                            parts,
                            takers,
                        });
                    }
                } else {
                    tasks.push(Task {
                        group,
                        parts,
                        takers,
                    });
                }
            }
        }

        // Earlier owners: claims at the highest generation.
        let newest = members
            .values()
            .map(|s| s.generation_id)
            .max()
            .unwrap_or(-1);
        let mut owner: BTreeMap<(&str, i32), usize> = BTreeMap::new();
        for (m, s) in members.values().enumerate() {
            if s.generation_id == newest {
                for tp in &s.owned_partitions {
                    owner.insert((tp.topic.as_str(), tp.partition), m);
                }
            }
        }

        // Balance as Kafka's: every member holds `T / n` or one more task (at most `T % n`
        // of them one more), and the same within each sub-topology.
        let n = loads.len().max(1);
        let mut total = Quota::new(tasks.len(), n);
        let mut per_group: BTreeMap<usize, Quota> = BTreeMap::new();
        let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
        for task in &tasks {
            *sizes.entry(task.group).or_default() += 1;
        }
        for (g, size) in sizes {
            per_group.insert(g, Quota::new(size, n));
        }
        let fits =
            |l: &Load<'_>, task: &Task<'_>, total: &Quota, per_group: &BTreeMap<usize, Quota>| {
                total.admits(l.total)
                    && per_group
                        .get(&task.group)
                        .is_some_and(|q| q.admits(l.in_group(task.group)))
            };
        let mut left = Vec::new();

        // Pass 1: tasks stay with their earlier owner while it is within its shares.
        for task in &tasks {
            let owner_load = task
                .parts
                .iter()
                .find_map(|p| owner.get(p))
                .filter(|m| task.takers.contains(m))
                .and_then(|&m| loads.get_mut(m));
            match owner_load {
                Some(l) if fits(l, task, &total, &per_group) => {
                    total.count(l.total);
                    if let Some(q) = per_group.get_mut(&task.group) {
                        q.count(l.in_group(task.group));
                    }
                    l.take(task);
                }
                _ => left.push(task),
            }
        }
        // Pass 2: the rest to the emptiest taker that its shares admit (any taker, the
        // emptiest, when none does: every partition is assigned).
        for task in left {
            let best = task.takers.iter().copied().min_by_key(|&m| {
                loads.get(m).map_or((true, usize::MAX, usize::MAX, m), |l| {
                    let over = !fits(l, task, &total, &per_group);
                    (over, l.in_group(task.group), l.total, m)
                })
            });
            if let Some(l) = best.and_then(|m| loads.get_mut(m)) {
                total.count(l.total);
                if let Some(q) = per_group.get_mut(&task.group) {
                    q.count(l.in_group(task.group));
                }
                l.take(task);
            }
        }

        members
            .keys()
            .zip(loads)
            .map(|(id, l)| {
                let mut list: Vec<TopicPartition> = l
                    .parts
                    .into_iter()
                    .map(|(t, p)| TopicPartition::new(t, p))
                    .collect();
                list.sort();
                (id.clone(), list)
            })
            .collect()
    }
}

/// One task: its sub-topology (an index into the groups), its partitions, and the members
/// that may take it.
struct Task<'a> {
    group: usize,
    parts: Vec<(&'a str, i32)>,
    takers: Vec<usize>,
}

/// A balanced share: each member `floor` tasks, `extra` of them one more.
struct Quota {
    floor: usize,
    extra: usize,
}

impl Quota {
    fn new(tasks: usize, members: usize) -> Quota {
        Quota {
            floor: tasks / members,
            extra: tasks % members,
        }
    }

    /// Whether a member holding `held` may take one more.
    fn admits(&self, held: usize) -> bool {
        held < self.floor || (held == self.floor && self.extra > 0)
    }

    /// Records that a member holding `held` takes one more.
    fn count(&mut self, held: usize) {
        if held >= self.floor {
            self.extra = self.extra.saturating_sub(1);
        }
    }
}

/// A member while tasks are dealt: what it subscribes to and what it holds.
struct Load<'a> {
    topics: BTreeSet<&'a str>,
    total: usize,
    per_group: BTreeMap<usize, usize>,
    parts: Vec<(&'a str, i32)>,
}

impl<'a> Load<'a> {
    fn in_group(&self, group: usize) -> usize {
        self.per_group.get(&group).copied().unwrap_or(0)
    }

    fn take(&mut self, task: &Task<'a>) {
        self.total += 1;
        *self.per_group.entry(task.group).or_default() += 1;
        self.parts.extend(task.parts.iter().copied());
    }
}

/// The members subscribed to every topic of `parts`.
fn takers_of(loads: &[Load<'_>], parts: &[(&str, i32)]) -> Vec<usize> {
    loads
        .iter()
        .enumerate()
        .filter(|(_, l)| parts.iter().all(|(t, _)| l.topics.contains(t)))
        .map(|(m, _)| m)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn member(
        topics: &[&str],
        map: Option<&TaskMap>,
        owned: &[(&str, i32)],
        generation: i32,
    ) -> Subscription {
        Subscription {
            topics: topics.iter().map(|t| (*t).to_string()).collect(),
            user_data: map.map(|m| encode_task_map(m).into()),
            owned_partitions: owned
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            generation_id: generation,
            rack_id: None,
        }
    }

    fn wordcount_map() -> TaskMap {
        let mut map = TaskMap::new();
        map.insert(0, vec!["lines".to_string()]);
        map.insert(1, vec!["app-counts-repartition".to_string()]);
        map
    }

    fn counts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| ((*t).to_string(), *n)).collect()
    }

    fn names(v: &[TopicPartition]) -> Vec<String> {
        v.iter()
            .map(|tp| format!("{}-{}", tp.topic, tp.partition))
            .collect()
    }

    #[test]
    fn the_task_map_round_trips() {
        let map = wordcount_map();
        assert_eq!(decode_task_map(&encode_task_map(&map)).unwrap(), map);
        assert!(decode_task_map(&[0, 0, 0, 0, 0, 5]).is_err());
    }

    #[test]
    fn two_members_take_one_sub_topology_each() {
        let map = wordcount_map();
        let topics = ["lines", "app-counts-repartition"];
        let mut members = BTreeMap::new();
        members.insert("a".to_string(), member(&topics, Some(&map), &[], -1));
        members.insert("b".to_string(), member(&topics, Some(&map), &[], -1));
        let out = StreamAssignor.assign(
            &members,
            &counts(&[("lines", 1), ("app-counts-repartition", 1)]),
        );
        assert_eq!(names(&out["a"]), ["lines-0"]);
        assert_eq!(names(&out["b"]), ["app-counts-repartition-0"]);
    }

    #[test]
    fn co_partitioned_topics_go_together_and_each_sub_topology_is_spread() {
        let mut map = TaskMap::new();
        map.insert(0, vec!["orders".to_string(), "users".to_string()]);
        map.insert(1, vec!["r".to_string()]);
        let topics = ["orders", "users", "r"];
        let mut members = BTreeMap::new();
        for id in ["a", "b"] {
            members.insert(id.to_string(), member(&topics, Some(&map), &[], -1));
        }
        let out =
            StreamAssignor.assign(&members, &counts(&[("orders", 4), ("users", 4), ("r", 2)]));
        for (id, list) in &out {
            let orders: Vec<i32> = list
                .iter()
                .filter(|t| t.topic == "orders")
                .map(|t| t.partition)
                .collect();
            let users: Vec<i32> = list
                .iter()
                .filter(|t| t.topic == "users")
                .map(|t| t.partition)
                .collect();
            assert_eq!(orders, users, "{id}: a task's partitions go together");
            assert_eq!(orders.len(), 2, "{id}");
            assert_eq!(list.iter().filter(|t| t.topic == "r").count(), 1, "{id}");
        }
    }

    #[test]
    fn tasks_stay_with_their_owner_when_a_member_joins() {
        let mut map = TaskMap::new();
        map.insert(0, vec!["t".to_string()]);
        let owned_a = [("t", 0), ("t", 1), ("t", 2)];
        let owned_b = [("t", 3), ("t", 4), ("t", 5)];
        let mut members = BTreeMap::new();
        members.insert("a".to_string(), member(&["t"], Some(&map), &owned_a, 4));
        members.insert("b".to_string(), member(&["t"], Some(&map), &owned_b, 4));
        members.insert("c".to_string(), member(&["t"], Some(&map), &[], -1));
        let out = StreamAssignor.assign(&members, &counts(&[("t", 6)]));
        assert_eq!(names(&out["a"]), ["t-0", "t-1"]);
        assert_eq!(names(&out["b"]), ["t-3", "t-4"]);
        assert_eq!(names(&out["c"]), ["t-2", "t-5"]);
    }

    #[test]
    fn a_member_that_joins_gets_its_share_of_tasks_held_by_others() {
        let mut map = TaskMap::new();
        map.insert(0, vec!["lines".to_string()]);
        map.insert(1, vec!["r".to_string()]);
        let topics = ["lines", "r"];
        let mut members = BTreeMap::new();
        let owned_a = [("lines", 0), ("r", 0)];
        let owned_b = [("lines", 1), ("r", 1)];
        members.insert("a".to_string(), member(&topics, Some(&map), &owned_a, 3));
        members.insert("b".to_string(), member(&topics, Some(&map), &owned_b, 3));
        members.insert("c".to_string(), member(&topics, Some(&map), &[], -1));
        let out = StreamAssignor.assign(&members, &counts(&[("lines", 2), ("r", 2)]));
        let sizes: Vec<usize> = out.values().map(Vec::len).collect();
        assert_eq!(sizes, [2, 1, 1], "{out:?}");
        assert_eq!(names(&out["a"]), ["lines-0", "r-0"]);
        assert_eq!(names(&out["b"]), ["lines-1"]);
        assert_eq!(names(&out["c"]), ["r-1"]);
        // One sub-topology of 4 partitions over 3 members: 2, 1, 1.
        let mut map = TaskMap::new();
        map.insert(0, vec!["t".to_string()]);
        let mut members = BTreeMap::new();
        members.insert(
            "a".to_string(),
            member(&["t"], Some(&map), &[("t", 0), ("t", 1)], 2),
        );
        members.insert(
            "b".to_string(),
            member(&["t"], Some(&map), &[("t", 2), ("t", 3)], 2),
        );
        members.insert("c".to_string(), member(&["t"], Some(&map), &[], -1));
        let out = StreamAssignor.assign(&members, &counts(&[("t", 4)]));
        let sizes: Vec<usize> = out.values().map(Vec::len).collect();
        assert_eq!(sizes, [2, 1, 1], "{out:?}");
    }

    #[test]
    fn without_a_task_map_each_topic_is_a_sub_topology_and_all_is_assigned() {
        let mut members = BTreeMap::new();
        members.insert("a".to_string(), member(&["x", "y"], None, &[], -1));
        members.insert("b".to_string(), member(&["y"], None, &[], -1));
        let out = StreamAssignor.assign(&members, &counts(&[("x", 2), ("y", 2)]));
        let mut all: Vec<String> = out.values().flat_map(|l| names(l)).collect();
        all.sort();
        assert_eq!(all, ["x-0", "x-1", "y-0", "y-1"]);
        assert!(names(&out["b"]).iter().all(|n| n.starts_with('y')));
    }
}
