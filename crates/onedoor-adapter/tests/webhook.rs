//! The inbox pushed to a webhook through a real adapter and a real nats-server, to a real HTTP
//! receiver in this process: signed deliveries (checked with the `standardwebhooks` crate as an
//! oracle), acks on 2xx, retries with growing pauses, stuck records, secret rotation.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use onedoor_adapter::webhook::WebhookSecret;
use onedoor_testkit::{DEADLINE, eventually};
use standardwebhooks::Webhook;

mod webhook_common;
use webhook_common::{
    bus_pushing_moic, hand_off_to_moic, inbox, wait_stuck, wait_until_acked, webhook,
};

/// One POST as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Received {
    fn id(&self) -> String {
        header_text(&self.headers, "webhook-id")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[derive(Clone, Default)]
struct ReceiverState {
    /// Status codes to answer, in order; then `then`.
    answers: Arc<Mutex<VecDeque<u16>>>,
    then: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

/// An HTTP server on 127.0.0.1:0 that records every POST and answers as scripted.
struct TestReceiver {
    url: String,
    state: ReceiverState,
    _task: tokio::task::JoinHandle<()>,
}

async fn hook(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    state.received.lock().expect("lock").push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let status = state
        .answers
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(state.then);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_redirection() {
        return (
            status,
            [(header::LOCATION, "http://elsewhere.invalid/inbox")],
        )
            .into_response();
    }
    // A large body on failure: the adapter must read only the first part of it.
    let body = if status.is_success() {
        String::new()
    } else {
        "x".repeat(1 << 20)
    };
    (status, body).into_response()
}

/// TLS on a loopback listener, for an `https` receiver; failed handshakes are skipped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn tls_acceptor(
    server: &onedoor_grpc::devpki::CertifiedKey,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl TestReceiver {
    async fn start(answers: &[u16], then: u16) -> anyhow::Result<Self> {
        Self::start_on(answers, then, None).await
    }

    /// [`TestReceiver::start`] over TLS with `server`'s certificate.
    async fn start_https(
        then: u16,
        server: &onedoor_grpc::devpki::CertifiedKey,
    ) -> anyhow::Result<Self> {
        Self::start_on(&[], then, Some(tls_acceptor(server)?)).await
    }

    async fn start_on(
        answers: &[u16],
        then: u16,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> anyhow::Result<Self> {
        let state = ReceiverState {
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            then,
            received: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/inbox", axum::routing::post(hook))
            .with_state(state.clone());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = tcp.local_addr()?;
        let (scheme, task) = match tls {
            None => (
                "http",
                tokio::spawn(async move {
                    let _ = axum::serve(tcp, app).await;
                }),
            ),
            Some(acceptor) => (
                "https",
                tokio::spawn(async move {
                    let _ = axum::serve(TlsListener { tcp, acceptor }, app).await;
                }),
            ),
        };
        let url = format!("{scheme}://{address}/inbox?token=receivers-own");
        Ok(TestReceiver {
            url,
            state,
            _task: task,
        })
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    async fn wait_for(&self, count: usize) -> anyhow::Result<Vec<Received>> {
        eventually(
            &format!("{count} POSTs at the receiver"),
            DEADLINE,
            || async {
                let received = self.received();
                Ok(if received.len() >= count {
                    Ok(received)
                } else {
                    Err(format!("{} so far", received.len()))
                })
            },
        )
        .await
    }
}

#[tokio::test]
async fn a_hand_off_reaches_the_receiver_signed_and_a_2xx_acknowledges_it() -> anyhow::Result<()> {
    let receiver = TestReceiver::start(&[], 204).await?;
    let secret = WebhookSecret::generate();
    let bus = bus_pushing_moic(webhook(&receiver.url, &[&secret])?, 4).await?;
    let handed = hand_off_to_moic(&bus).await?;

    let post = receiver.wait_for(1).await?.remove(0);
    Webhook::new(&secret.expose())?.verify(&post.body, &post.headers)?;
    assert_eq!(post.id(), handed.event_id, "webhook-id is the event id");
    assert_eq!(
        header_text(&post.headers, "content-type"),
        "application/json"
    );
    let json = post.json();
    assert_eq!(json["event"]["eventId"], handed.event_id.as_str());
    assert_eq!(json["event"]["toAgency"], "MOIC");
    assert_eq!(json["deliveryAttempt"], 1);
    assert_eq!(json["streamSequence"], handed.stream_sequence.to_string());
    let traceparent = header_text(&post.headers, "traceparent");
    assert!(traceparent.contains(&handed.trace_id), "{traceparent}");

    wait_until_acked(&bus).await?;
    assert_eq!(
        receiver.received().len(),
        1,
        "acknowledged, so not sent again"
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_growing_pauses_until_it_answers_2xx()
-> anyhow::Result<()> {
    let receiver = TestReceiver::start(&[500, 503, 500], 200).await?;
    let secret = WebhookSecret::generate();
    let bus = bus_pushing_moic(webhook(&receiver.url, &[&secret])?, 6).await?;
    let handed = hand_off_to_moic(&bus).await?;

    let posts = receiver.wait_for(4).await?;
    wait_until_acked(&bus).await?;
    let oracle = Webhook::new(&secret.expose())?;
    for (n, post) in posts.iter().enumerate() {
        assert_eq!(post.id(), handed.event_id, "the same id on every attempt");
        assert_eq!(post.json()["deliveryAttempt"], n + 1);
        oracle.verify(&post.body, &post.headers)?;
    }
    // Pauses are drawn from [first·2^(n−1)/2, first·2^(n−1)] with first = 200 ms: 100–200,
    // 200–400, 400–800 ms, plus the time a redelivery takes.
    let pauses: Vec<Duration> = posts.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (n, pause) in pauses.iter().enumerate() {
        let floor = Duration::from_millis(100 << n);
        assert!(
            *pause >= floor,
            "pause {n} {pause:?} shorter than {floor:?}"
        );
    }
    assert!(pauses[2] > pauses[0], "pauses grow: {pauses:?}");
    assert_eq!(receiver.received().len(), 4, "nothing after the 2xx");
    Ok(())
}

#[tokio::test]
async fn a_receiver_down_for_every_attempt_leaves_a_stuck_record_and_loses_nothing()
-> anyhow::Result<()> {
    // A port that was just free: nothing listens there.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/inbox", closed.local_addr()?);
    drop(closed);
    let bus = bus_pushing_moic(webhook(&url, &[&WebhookSecret::generate()])?, 3).await?;
    let handed = hand_off_to_moic(&bus).await?;

    let record = wait_stuck(&bus, &handed.event_id).await?;
    assert_eq!(
        (
            record.agency.as_str(),
            record.stream_sequence,
            record.deliveries
        ),
        ("MOIC", handed.stream_sequence, 3)
    );
    assert!(
        record.reason.starts_with("webhook: 3 attempts failed"),
        "{}",
        record.reason
    );
    assert!(
        record.reason.contains("could not be reached"),
        "{}",
        record.reason
    );

    // The last attempt's NAK ends the delivery at once, well before its 5 s ack wait would,
    // so it stops holding a slot of the inbox's window.
    eventually(
        "inbox-MOIC to give the item up",
        Duration::from_secs(3),
        || async {
            let info = bus.inbox_consumer_info("MOIC").await?;
            Ok((info.num_ack_pending == 0).then_some(()))
        },
    )
    .await?;

    // Nothing lost: the event is still in the stream, for staff and a redelivery.
    let stream = bus.js.get_stream(onedoor_bus::STREAM_NAME).await?;
    let stored = stream.direct_get(handed.stream_sequence).await?;
    assert_eq!(
        stored.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(handed.event_id.as_str())
    );
    Ok(())
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_a_failure() -> anyhow::Result<()> {
    let receiver = TestReceiver::start(&[], 307).await?;
    let bus = bus_pushing_moic(webhook(&receiver.url, &[&WebhookSecret::generate()])?, 2).await?;
    let handed = hand_off_to_moic(&bus).await?;

    let record = wait_stuck(&bus, &handed.event_id).await?;
    assert!(
        record.reason.contains("redirects are not followed"),
        "{}",
        record.reason
    );
    assert!(
        record.reason.contains("elsewhere.invalid"),
        "{}",
        record.reason
    );
    assert!(
        !record.reason.contains("receivers-own"),
        "the URL's query is never shown"
    );
    assert_eq!(
        receiver.received().len(),
        2,
        "two attempts, no request to the redirect"
    );
    Ok(())
}

#[tokio::test]
async fn during_a_rotation_each_delivery_verifies_with_either_secret_and_not_a_third()
-> anyhow::Result<()> {
    let receiver = TestReceiver::start(&[], 200).await?;
    let (new, old) = (WebhookSecret::generate(), WebhookSecret::generate());
    let bus = bus_pushing_moic(webhook(&receiver.url, &[&new, &old])?, 4).await?;
    hand_off_to_moic(&bus).await?;
    hand_off_to_moic(&bus).await?;

    for post in receiver.wait_for(2).await? {
        let signatures = header_text(&post.headers, "webhook-signature");
        assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
        Webhook::new(&new.expose())?.verify(&post.body, &post.headers)?;
        Webhook::new(&old.expose())?.verify(&post.body, &post.headers)?;
        let wrong = WebhookSecret::generate();
        assert!(
            Webhook::new(&wrong.expose())?
                .verify(&post.body, &post.headers)
                .is_err(),
            "a wrong secret is refused"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_item_that_failed_before_an_adapter_restart_is_delivered_after_it() -> anyhow::Result<()>
{
    let receiver = TestReceiver::start(&[500], 200).await?;
    let secret = WebhookSecret::generate();
    let mut config = webhook(&receiver.url, &[&secret])?;
    // The retry comes after the crash: the pause is 1–2 s.
    config.retry.first = Duration::from_secs(2);
    let mut bus = bus_pushing_moic(config.clone(), 6).await?;
    let handed = hand_off_to_moic(&bus).await?;
    receiver.wait_for(1).await?;

    bus.abort_adapter("MOIC").await?;
    let mut moic = bus.adapter_config("MOIC")?;
    moic.inbox = inbox(6);
    moic.webhook = Some(config);
    bus.start_with("MOIC", moic).await?;

    let posts = receiver.wait_for(2).await?;
    assert!(posts.iter().all(|p| p.id() == handed.event_id));
    assert_eq!(
        posts[1].json()["deliveryAttempt"],
        2,
        "the bus counted the first attempt"
    );
    wait_until_acked(&bus).await?;
    Ok(())
}

#[tokio::test]
async fn an_https_receiver_is_trusted_through_the_configured_ca_and_refused_without_it()
-> anyhow::Result<()> {
    let pki = onedoor_grpc::devpki::DevPki::generate(["MOIC"])?;
    let receiver = TestReceiver::start_https(200, &pki.server).await?;
    let secret = WebhookSecret::generate();

    // Without the ministry's CA the receiver's certificate is not trusted: nothing is sent.
    let bus = bus_pushing_moic(webhook(&receiver.url, &[&secret])?, 2).await?;
    let refused = hand_off_to_moic(&bus).await?;
    let record = wait_stuck(&bus, &refused.event_id).await?;
    assert!(
        record.reason.contains("could not be reached"),
        "{}",
        record.reason
    );
    assert!(receiver.received().is_empty());
    drop(bus);

    let mut trusting = webhook(&receiver.url, &[&secret])?;
    trusting.ca_pem = Some(pki.ca_cert_pem.clone());
    let bus = bus_pushing_moic(trusting, 2).await?;
    let handed = hand_off_to_moic(&bus).await?;
    let post = receiver.wait_for(1).await?.remove(0);
    assert_eq!(post.id(), handed.event_id);
    Webhook::new(&secret.expose())?.verify(&post.body, &post.headers)?;
    wait_until_acked(&bus).await?;
    Ok(())
}
