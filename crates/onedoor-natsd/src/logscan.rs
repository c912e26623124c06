//! Reading facts out of nats-server's log text: which ports it bound and whether it says it is
//! ready.
//!
//! Reading the ports back from the log is what lets us start on random ports (`-1`) instead of
//! probing for a free port and hoping nobody takes it before the server binds it. The phrases
//! matched here have been stable across nats-server 2.x (nats.rs's own harness relies on them).

/// What one launch's log has said so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LogFacts {
    pub client_port: Option<u16>,
    pub http_port: Option<u16>,
    pub route_port: Option<u16>,
    /// "Server is ready" was logged. Note the server logs this *before* it opens the route
    /// listener, so for a cluster node it is not enough on its own.
    pub ready: bool,
}

const CLIENT: &str = "Listening for client connections on ";
const HTTP: &str = "Starting http monitor on ";
const ROUTE: &str = "Listening for route connections on ";
const READY: &str = "Server is ready";

pub(crate) fn scan(log: &str) -> LogFacts {
    let mut facts = LogFacts::default();
    for line in log.lines() {
        if let Some(addr) = after(line, CLIENT) {
            facts.client_port = facts.client_port.or(port_of(addr));
        } else if let Some(addr) = after(line, HTTP) {
            facts.http_port = facts.http_port.or(port_of(addr));
        } else if let Some(addr) = after(line, ROUTE) {
            facts.route_port = facts.route_port.or(port_of(addr));
        } else if line.contains(READY) {
            facts.ready = true;
        }
    }
    facts
}

fn after<'a>(line: &'a str, phrase: &str) -> Option<&'a str> {
    line.split_once(phrase).map(|(_, rest)| rest.trim())
}

/// `127.0.0.1:4222` or `[::1]:4222` → 4222.
fn port_of(addr: &str) -> Option<u16> {
    let token = addr.split_whitespace().next()?;
    token.rsplit_once(':')?.1.parse().ok()
}

/// The last `lines` lines of `log`, for error messages.
pub(crate) fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER_NODE_LOG: &str = "\
[10405] 2026/11/27 16:55:09.048147 [INF] Starting http monitor on 127.0.0.1:40899
[10405] 2026/11/27 16:55:09.048252 [INF] Starting JetStream
[10405] 2026/11/27 16:55:09.049566 [INF] Listening for client connections on 127.0.0.1:35399
[10405] 2026/11/27 16:55:09.049580 [INF] Server is ready
[10405] 2026/11/27 16:55:09.049590 [INF] Cluster name is c
[10405] 2026/11/27 16:55:09.049600 [INF] Listening for route connections on 127.0.0.1:52237
";

    #[test]
    fn ports_and_readiness_are_read_from_a_cluster_node_log() {
        let facts = scan(CLUSTER_NODE_LOG);
        assert_eq!(
            facts,
            LogFacts {
                client_port: Some(35399),
                http_port: Some(40899),
                route_port: Some(52237),
                ready: true,
            }
        );
    }

    #[test]
    fn ready_without_a_route_listener_is_visible() {
        // What a node whose route port is taken logs before it exits.
        let log = "[1] x [INF] Server is ready\n[1] x [FTL] Error listening on router port: 33093 - listen tcp 127.0.0.1:33093: bind: address already in use\n";
        let facts = scan(log);
        assert!(facts.ready);
        assert!(facts.route_port.is_none());
    }

    #[test]
    fn ipv6_addresses_give_their_port() {
        assert_eq!(port_of("[::1]:4222"), Some(4222));
        assert_eq!(port_of("0.0.0.0:8222 extra"), Some(8222));
        assert_eq!(port_of("nonsense"), None);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
