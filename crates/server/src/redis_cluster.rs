//! What readiness reports of a Redis Cluster: `CLUSTER INFO` as one node
//! sees it (the client routes the command to a node of its choice), read
//! into `{state, masters}`.
//!
//! `PING` alone cannot tell: on a Cluster it reaches every master, and
//! every master may answer while a slot range has no master at all (its
//! master died and no replica was promoted). Then every store whose keys
//! hash there fails; `cluster_state:fail` says so before a request does.

use std::time::Duration;

use palisade_errors::redis::{RedisConnection, query};
use serde::Serialize;

/// The bound on the `CLUSTER INFO` call of one readiness answer (the user
/// store's own timeout, which bounds readiness's `PING`).
pub const CLUSTER_INFO_TIMEOUT: Duration = crate::users::DEFAULT_USER_STORE_TIMEOUT;

/// `checks.redis_cluster` of `/health/ready`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterCheck {
    /// `ok` (every slot served), `fail` (a node reports a slot without a
    /// master, or cannot reach a majority of masters), or `down` (no node
    /// answered `CLUSTER INFO` in time).
    pub state: &'static str,
    /// The masters serving at least one slot (`cluster_size`), as the node
    /// that answered counts them; `null` when none answered.
    pub masters: Option<u32>,
}

impl ClusterCheck {
    /// Whether the cluster can serve every key.
    pub fn is_ok(&self) -> bool {
        self.state == "ok"
    }

    /// Reads the `CLUSTER INFO` text (`field:value` lines): `cluster_state`
    /// `ok` is `ok`, any other state or none `fail`.
    pub fn from_info(info: &str) -> ClusterCheck {
        let field = |name: &str| {
            info.lines()
                .filter_map(|line| line.trim().split_once(':'))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.trim())
        };
        ClusterCheck {
            state: if field("cluster_state") == Some("ok") {
                "ok"
            } else {
                "fail"
            },
            masters: field("cluster_size").and_then(|size| size.parse().ok()),
        }
    }
}

/// Asks the Cluster behind `connection` for its state; a node that does
/// not answer within [`CLUSTER_INFO_TIMEOUT`] is `down`.
pub async fn check(connection: &RedisConnection) -> ClusterCheck {
    let mut command = redis::cmd("CLUSTER");
    command.arg("INFO");
    match query::<String>(connection, CLUSTER_INFO_TIMEOUT, "cluster info", &command).await {
        Ok(info) => ClusterCheck::from_info(&info),
        Err(error) => {
            tracing::warn!(%error, "readiness: no Redis Cluster node answered CLUSTER INFO");
            ClusterCheck {
                state: "down",
                masters: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterCheck;

    #[test]
    fn cluster_info_is_read_into_state_and_masters() {
        // As Redis 7 answers (CRLF lines).
        let healthy = "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\n\
                       cluster_slots_ok:16384\r\ncluster_known_nodes:6\r\ncluster_size:3\r\n";
        assert_eq!(
            ClusterCheck::from_info(healthy),
            ClusterCheck {
                state: "ok",
                masters: Some(3)
            }
        );
        // A master died and no replica took over yet: the slots it served
        // have no master, and the node says so.
        let failing = "cluster_state:fail\r\ncluster_slots_ok:10923\r\ncluster_size:3\r\n";
        assert!(!ClusterCheck::from_info(failing).is_ok());
        // A reply without a state is never taken for a healthy cluster.
        let garbled = ClusterCheck::from_info("ERR something\r\n");
        assert_eq!(garbled.state, "fail");
        assert_eq!(garbled.masters, None);
    }
}
