//! Group membership for members outside this process: the classic group protocol's calls
//! (join, sync, heartbeat, leave, offset commit and fetch) as [`Log`] methods, for adapters
//! that serve network clients. In-process [`crate::Consumer`]s and such members share one
//! coordinator, so they can be members of the same group.

use std::time::Duration;

use bytes::Bytes;

use super::coordinator::{JoinRequest, JoinResponse, Joining, Patience};
use super::offsets::OffsetAndMetadata;
use crate::error::{Error, Result};
use crate::{Log, TopicPartition};

/// Shortest session timeout a member may ask for (Kafka's `group.min.session.timeout.ms` is
/// 6 s; this is lower so that tests and local tools can expire members quickly).
pub const MIN_SESSION_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest session timeout a member may ask for (Kafka's `group.max.session.timeout.ms`).
pub const MAX_SESSION_TIMEOUT: Duration = Duration::from_mins(30);

impl Log {
    /// Joins (or rejoins) a group and blocks until the round completes: every known member
    /// has rejoined, or the rebalance timeout passed. An empty `member_id` joins as a new
    /// member, whose id the response carries. The leader's response lists every member's
    /// metadata for the chosen protocol; it then hands the assignments to
    /// [`Log::sync_group`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty group id, a session timeout outside
    /// [`MIN_SESSION_TIMEOUT`]..=[`MAX_SESSION_TIMEOUT`], no protocols, or a protocol type
    /// other than the group's; [`Error::StaleMember`] for an unknown member id;
    /// [`Error::ReadOnly`]; I/O errors from persisting the generation.
    pub fn join_group(&self, request: &JoinRequest) -> Result<JoinResponse> {
        self.inner.check_writable()?;
        if request.group.is_empty() {
            return Err(Error::invalid_config("group", "the group id is empty"));
        }
        if !(MIN_SESSION_TIMEOUT..=MAX_SESSION_TIMEOUT).contains(&request.session_timeout) {
            return Err(Error::invalid_config(
                "session_timeout",
                format!(
                    "{:?} is outside {MIN_SESSION_TIMEOUT:?}..={MAX_SESSION_TIMEOUT:?}",
                    request.session_timeout
                ),
            ));
        }
        if request.protocols.is_empty() {
            return Err(Error::invalid_config(
                "protocols",
                "a member must offer at least one protocol",
            ));
        }
        match self
            .inner
            .coordinator()
            .join(request, None, None, Patience::UNBOUNDED)?
        {
            Joining::Joined(response) => Ok(response),
            // Without a deadline or a wake-up flag the wait ends only with the round.
            Joining::Waiting { .. } => Err(Error::RebalanceInProgress {
                group: request.group.clone(),
            }),
        }
    }

    /// Completes a join: the leader passes every member's assignment, the others `None`.
    /// Blocks until the leader's assignment arrives; returns this member's assignment bytes
    /// (empty when the leader gave it none).
    ///
    /// # Errors
    /// [`Error::StaleMember`] for an unknown member or an old generation;
    /// [`Error::RebalanceInProgress`] when a new round started (rejoin);
    /// [`Error::GroupNotFound`]; [`Error::ReadOnly`]; I/O errors.
    pub fn sync_group(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: Option<Vec<(String, Bytes)>>,
    ) -> Result<Bytes> {
        self.inner.check_writable()?;
        self.inner
            .coordinator()
            .sync(
                group,
                member_id,
                generation,
                assignments,
                Patience::UNBOUNDED,
            )?
            // Without a deadline or a wake-up flag the wait ends with the assignment or an
            // error.
            .ok_or_else(|| Error::RebalanceInProgress {
                group: group.to_string(),
            })
    }

    /// Tells the coordinator the member is alive. An error tells it to rejoin.
    ///
    /// # Errors
    /// [`Error::RebalanceInProgress`] when a rebalance started; [`Error::StaleMember`] for an
    /// unknown member or an old generation; [`Error::GroupNotFound`].
    pub fn heartbeat_group(&self, group: &str, member_id: &str, generation: i32) -> Result<()> {
        self.inner
            .coordinator()
            .heartbeat(group, member_id, generation, true)
    }

    /// Removes a member; the others rebalance.
    ///
    /// # Errors
    /// [`Error::StaleMember`] for an unknown member; I/O errors from persisting the group.
    pub fn leave_group(&self, group: &str, member_id: &str) -> Result<()> {
        self.inner.coordinator().leave(group, member_id)
    }

    /// Commits offsets for a group. A member passes its id and generation; a standalone
    /// client (no membership) passes an empty id and generation -1, which is allowed only
    /// while the group has no members. Committed offsets are written to `__consumer_offsets`
    /// and fsynced before this returns.
    ///
    /// # Errors
    /// [`Error::StaleMember`] for an unknown member, an old generation, or a standalone
    /// commit to a group with members; [`Error::InvalidConfig`] for metadata over 4096
    /// bytes; [`Error::ReadOnly`]; I/O errors.
    pub fn commit_group_offsets(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        self.inner.check_writable()?;
        if group.is_empty() {
            return Err(Error::invalid_config("group", "the group id is empty"));
        }
        self.inner
            .coordinator()
            .commit(group, member_id, generation, offsets)
    }

    /// A group's committed offsets: for the given partitions (`None` where nothing is
    /// committed), or every partition with a commit when `partitions` is `None`.
    pub fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, Option<OffsetAndMetadata>)> {
        let offsets = &self.inner.coordinator().offsets;
        match partitions {
            Some(tps) => tps
                .iter()
                .map(|tp| (tp.clone(), offsets.committed(group, tp)))
                .collect(),
            None => offsets
                .group_offsets(group)
                .into_iter()
                .map(|(tp, om)| (tp, Some(om)))
                .collect(),
        }
    }
}
