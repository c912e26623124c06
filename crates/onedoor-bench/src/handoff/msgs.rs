//! NATS messages per hand-off on each side, counted by the servers, not guessed: each node's
//! `/connz` says, per client connection, how many messages it sent the server (`in_msgs`:
//! publishes, API requests, pulls, acks) and how many the server sent it (`out_msgs`: replies,
//! publish acks, delivered messages). Adapters name their connection
//! `onedoor-adapter-<CODE>`, so the difference over the hand-off phase splits by agency, and
//! so by side: the front offices' adapters send, the ministries' adapters receive.

use std::collections::HashMap;

use onedoor_case::AgencyCode;
use serde::Serialize;

/// `in_msgs` and `out_msgs` by connection name, summed over connections and nodes.
#[derive(Debug, Clone, Default)]
pub struct ConnMsgs(HashMap<String, (u64, u64)>);

/// Messages per hand-off between the adapters of one side and NATS.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SideMsgs {
    /// Sent by the adapters to NATS.
    pub to_nats: f64,
    /// Sent by NATS to the adapters.
    pub from_nats: f64,
}

/// Both sides, per hand-off sent in the phase (in hot and growth modes a hand-off comes with
/// its send-back, written by the ministry and delivered to the front office).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MsgsPerHandoff {
    pub sending: SideMsgs,
    pub receiving: SideMsgs,
}

impl ConnMsgs {
    /// The counts of every node at `addrs` now; `None` when any node does not answer (a
    /// given server the bench did not start has no known monitoring port).
    pub async fn take(addrs: &[String]) -> Option<ConnMsgs> {
        if addrs.is_empty() {
            return None;
        }
        let mut counts = HashMap::new();
        for addr in addrs {
            let response = onedoor_natsd::monitor::get(addr, "/connz?limit=100000")
                .await
                .ok()
                .filter(onedoor_natsd::monitor::MonitorResponse::is_ok)?;
            let body: serde_json::Value = serde_json::from_str(&response.body).ok()?;
            for connection in body.get("connections")?.as_array()? {
                let name = connection.get("name").and_then(|n| n.as_str());
                let count = |field: &str| connection.get(field).and_then(serde_json::Value::as_u64);
                if let (Some(name), Some(sent), Some(received)) =
                    (name, count("in_msgs"), count("out_msgs"))
                {
                    let entry: &mut (u64, u64) = counts.entry(name.to_owned()).or_default();
                    entry.0 += sent;
                    entry.1 += received;
                }
            }
        }
        Some(ConnMsgs(counts))
    }

    /// Messages to and from NATS of the adapters of `agencies` since `earlier`.
    fn side<'a>(
        &self,
        earlier: &ConnMsgs,
        agencies: impl IntoIterator<Item = &'a AgencyCode>,
    ) -> (u64, u64) {
        let mut total = (0, 0);
        for code in agencies {
            let name = format!("onedoor-adapter-{code}");
            let now = self.0.get(&name).copied().unwrap_or_default();
            let then = earlier.0.get(&name).copied().unwrap_or_default();
            total.0 += now.0.saturating_sub(then.0);
            total.1 += now.1.saturating_sub(then.1);
        }
        total
    }

    /// Per hand-off over `handoffs` hand-offs, sending side `fronts`, receiving `ministries`.
    pub fn per_handoff(
        &self,
        earlier: &ConnMsgs,
        fronts: &[AgencyCode],
        ministries: &[AgencyCode],
        handoffs: u64,
    ) -> MsgsPerHandoff {
        let per = |(to, from): (u64, u64)| SideMsgs {
            to_nats: to as f64 / handoffs.max(1) as f64,
            from_nats: from as f64 / handoffs.max(1) as f64,
        };
        MsgsPerHandoff {
            sending: per(self.side(earlier, fronts)),
            receiving: per(self.side(earlier, ministries)),
        }
    }
}
