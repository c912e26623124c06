//! Whether NATS still answers, for gRPC health: the client's own connection state alone misses
//! a server that is frozen (stopped, swapping, partitioned without a reset), since the socket
//! stays open, and the client only notices after its pings go unanswered. So a watcher asks
//! JetStream about the `ONEDOOR` stream every second, with a short timeout; an agency, whose
//! user may not ask about the stream (it would name every case), asks about its own inbox
//! consumer instead, which also needs the stream's leader (it runs there) to answer.

use std::time::Duration;

use async_nats::Client;
use async_nats::connection::State;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often to ask, how long to wait for each answer, and how many missed answers in a row
/// make NATS "not answering". With the defaults (1 s, 1.5 s, 2) a frozen server is reported
/// within about 4 s (worst case: just after an answer, then two probes timing out), a closed
/// connection at the next probe, and a recovered one at the first answer after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessSettings {
    pub every: Duration,
    pub timeout: Duration,
    pub misses: u32,
}

impl Default for LivenessSettings {
    fn default() -> Self {
        LivenessSettings {
            every: Duration::from_secs(1),
            timeout: Duration::from_millis(1500),
            misses: 2,
        }
    }
}

/// A running watcher. [`Liveness::answering`] follows NATS; dropping the watcher stops it.
pub struct Liveness {
    answering: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Liveness {
    /// Starts watching `client` (taken as answering: it has just connected). `what` names the
    /// process in the log lines written when NATS stops or starts answering again.
    pub fn watch(client: Client, settings: LivenessSettings, what: &'static str) -> Self {
        Self::watch_into(client, settings, what, watch::channel(true).0)
    }

    /// [`Liveness::watch`] for an agency: asks about its inbox consumer `consumer`.
    pub fn watch_inbox(
        client: Client,
        settings: LivenessSettings,
        what: &'static str,
        consumer: String,
    ) -> Self {
        let answering = watch::channel(true).0;
        let receiver = answering.subscribe();
        let probe = Probe::Consumer(consumer);
        let task = tokio::spawn(probe_loop(client, settings, answering, what, probe));
        Liveness {
            answering: receiver,
            task,
        }
    }

    /// [`Liveness::watch`], reporting into `answering` (set to `true` now), for a caller that
    /// handed out its receivers before the client existed.
    pub fn watch_into(
        client: Client,
        settings: LivenessSettings,
        what: &'static str,
        answering: watch::Sender<bool>,
    ) -> Self {
        answering.send_replace(true);
        let receiver = answering.subscribe();
        let task = tokio::spawn(probe_loop(client, settings, answering, what, Probe::Stream));
        Liveness {
            answering: receiver,
            task,
        }
    }

    /// `true` while NATS answers; changes as it stops and starts again.
    pub fn answering(&self) -> watch::Receiver<bool> {
        self.answering.clone()
    }
}

impl Drop for Liveness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a probe asks JetStream about.
enum Probe {
    Stream,
    Consumer(String),
}

async fn probe_loop(
    client: Client,
    settings: LivenessSettings,
    tx: watch::Sender<bool>,
    what: &'static str,
    target: Probe,
) {
    let mut jetstream = async_nats::jetstream::new(client.clone());
    jetstream.set_timeout(settings.timeout);
    let mut misses = 0u32;
    let mut ticks = tokio::time::interval(settings.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let outcome = probe(&client, &jetstream, &target, settings.timeout).await;
        let answering = match &outcome {
            Ok(()) => {
                misses = 0;
                true
            }
            // A connection the client knows is gone needs no second look.
            Err(Miss::Disconnected) => {
                misses = settings.misses;
                false
            }
            Err(_) => {
                misses = misses.saturating_add(1);
                misses < settings.misses
            }
        };
        if answering != *tx.borrow() {
            match &outcome {
                Ok(()) => tracing::info!(what, "NATS answers again; reporting SERVING"),
                Err(miss) => {
                    tracing::warn!(what, reason = %miss, misses, "NATS stopped answering; reporting NOT_SERVING")
                }
            }
        }
        tx.send_if_modified(|now| std::mem::replace(now, answering) != answering);
        if tx.is_closed() {
            return;
        }
    }
}

/// Why one probe did not count as an answer.
#[derive(Debug)]
enum Miss {
    Disconnected,
    TimedOut(Duration),
    Failed(String),
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::Disconnected => f.write_str("the connection is down"),
            Miss::TimedOut(after) => {
                write!(f, "no answer in {} ms", after.as_millis())
            }
            Miss::Failed(why) => write!(f, "asking JetStream failed: {why}"),
        }
    }
}

/// One stream-info request: the stream must have a leader to answer, which is also what a
/// write needs.
async fn probe(
    client: &Client,
    jetstream: &async_nats::jetstream::Context,
    target: &Probe,
    timeout: Duration,
) -> Result<(), Miss> {
    if client.connection_state() != State::Connected {
        return Err(Miss::Disconnected);
    }
    let asked = async {
        match target {
            Probe::Stream => jetstream
                .get_stream(onedoor_bus::STREAM_NAME)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Probe::Consumer(name) => {
                let stream = jetstream
                    .get_stream_no_info(onedoor_bus::STREAM_NAME)
                    .await
                    .map_err(|e| e.to_string())?;
                stream
                    .consumer_info(name)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        }
    };
    match tokio::time::timeout(timeout, asked).await {
        Err(_) => Err(Miss::TimedOut(timeout)),
        Ok(Err(error)) => Err(Miss::Failed(error)),
        Ok(Ok(())) => Ok(()),
    }
}
