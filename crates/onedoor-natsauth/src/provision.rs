//! What the operator creates before any adapter connects, because agencies have no right to
//! create anything: the `ONEDOOR` stream, every agency's `inbox-<AGENCY>` consumer, the
//! tracker's durable consumer, and the `ONEDOOR_STUCK` bucket. The auditor needs nothing: it
//! reads by direct get and owns no consumer (`permissions.rs`).
//!
//! [`survey`] compares what the server holds with [`Desired`] and changes nothing;
//! [`apply`] closes the differences, after refusing any that JetStream cannot close in place
//! or that would lose data unless forced. [`provision`] is both, the one path `onedoor up`
//! and `onedoor provision` take.
//!
//! The tracker's consumer configuration belongs to the tracker crate (above this one): the
//! caller adds it with [`Desired::with_consumer`].

use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::context::{ConsumerInfoErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::{self, Stream};
use async_nats::jetstream::{self, ErrorCode, kv};
use onedoor_bus::drift::{
    Change, Drift, Fix, Object, Start, bucket_drift, bucket_update, consumer_drift, consumer_update,
};
use onedoor_bus::inbox::consumer::inbox_consumer_config;
use onedoor_bus::stream::{stream_drift, stream_update};
use onedoor_bus::stuck::stuck_bucket_config;
use onedoor_bus::{BusError, InboxSettings, STREAM_NAME, STUCK_BUCKET, StreamSettings};
use onedoor_case::Registry;

use crate::error::NatsAuthError;

/// Everything provisioning makes, as it should be.
#[derive(Debug, Clone)]
pub struct Desired {
    pub stream: StreamSettings,
    /// Durable pull consumers of the stream, in the order they are made.
    pub consumers: Vec<WantedConsumer>,
}

#[derive(Debug, Clone)]
pub struct WantedConsumer {
    /// Its `durable_name` is the consumer's name.
    pub config: pull::Config,
    pub start: Start,
}

impl Desired {
    /// The stream with `stream`'s settings, one inbox consumer per agency in `registry`
    /// (merged-away agencies included: they still finish their tasks) and the stuck bucket.
    ///
    /// `inbox` must be the settings the adapters use: an adapter checks its consumer on start
    /// and would try to update one that differs, which its credentials refuse.
    pub fn new(
        registry: &Registry,
        stream: StreamSettings,
        inbox: &InboxSettings,
    ) -> Result<Self, NatsAuthError> {
        let bus = |source| NatsAuthError::Bus {
            action: "checking the wanted settings".to_owned(),
            source,
        };
        stream.validate().map_err(bus)?;
        inbox.validate().map_err(bus)?;
        let consumers = registry
            .agencies
            .keys()
            .map(|code| {
                Ok(WantedConsumer {
                    config: inbox_consumer_config(code, inbox).map_err(bus)?,
                    start: Start::Checked,
                })
            })
            .collect::<Result<_, NatsAuthError>>()?;
        Ok(Desired { stream, consumers })
    }

    /// Adds a durable consumer (the tracker's).
    pub fn with_consumer(mut self, config: pull::Config, start: Start) -> Self {
        self.consumers.push(WantedConsumer { config, start });
        self
    }

    /// The stuck bucket keeps as many copies as the stream: a stuck record is as precious as
    /// the event it names.
    fn bucket(&self) -> kv::Config {
        stuck_bucket_config(self.stream.replicas)
    }
}

impl WantedConsumer {
    fn name(&self) -> &str {
        self.config.durable_name.as_deref().unwrap_or_default()
    }
}

/// One object against [`Desired`].
#[derive(Debug, Clone)]
pub struct Surveyed {
    pub object: Object,
    pub drift: Drift,
    /// What the server holds, which an update starts from.
    found: Found,
}

#[derive(Debug, Clone)]
enum Found {
    Nothing,
    Stream(Box<stream::Config>),
    Consumer(Box<consumer::Config>),
}

/// Every object provisioning manages: the stream, then the consumers, then the bucket.
#[derive(Debug, Clone)]
pub struct Survey {
    pub objects: Vec<Surveyed>,
}

impl Survey {
    pub fn in_sync(&self) -> bool {
        self.objects.iter().all(|o| o.drift == Drift::InSync)
    }

    /// Refuses the whole survey, before anything is changed, if any difference cannot be
    /// closed in place, or would lose data and `force` is not given. The error names every
    /// such field.
    pub fn check_allowed(&self, force: bool) -> Result<(), NatsAuthError> {
        let named = |wanted: fn(&Fix) -> Option<String>| -> Vec<String> {
            self.objects
                .iter()
                .flat_map(|o| o.drift.fields().iter().map(move |f| (o, f)))
                .filter_map(|(o, f)| wanted(&f.fix).map(|why| format!("{} {f}{why}", o.object)))
                .collect()
        };
        let impossible = named(|fix| matches!(fix, Fix::NotInPlace).then(String::new));
        if !impossible.is_empty() {
            return Err(NatsAuthError::NotInPlace {
                changes: impossible,
            });
        }
        let losing = named(|fix| match fix {
            Fix::LosesData { why } => Some(format!(" ({why})")),
            _ => None,
        });
        if !force && !losing.is_empty() {
            return Err(NatsAuthError::WouldLoseData { changes: losing });
        }
        Ok(())
    }
}

/// Reads every object provisioning manages and compares it with `desired`; changes nothing.
/// `js` needs read rights only on the stream and its consumers (the operator's connection).
pub async fn survey(js: &jetstream::Context, desired: &Desired) -> Result<Survey, NatsAuthError> {
    let wanted = desired.stream.stream_config();
    let stream_object = Object::Stream(STREAM_NAME.to_owned());
    let mut objects = Vec::with_capacity(desired.consumers.len() + 2);
    let stream = find_stream(js, STREAM_NAME, &stream_object).await?;
    objects.push(match &stream {
        Some(stream) => {
            let info = stream.cached_info();
            surveyed(
                stream_object,
                Drift::from_fields(stream_drift(&info.config, &wanted, info.state.messages)),
                Found::Stream(Box::new(info.config.clone())),
            )
        }
        None => surveyed(stream_object, Drift::Missing, Found::Nothing),
    });
    for consumer in &desired.consumers {
        objects.push(survey_consumer(stream.as_ref(), consumer).await?);
    }
    let bucket_object = Object::Bucket(STUCK_BUCKET.to_owned());
    let bucket_stream = format!("KV_{STUCK_BUCKET}");
    objects.push(
        match find_stream(js, &bucket_stream, &bucket_object).await? {
            Some(found) => {
                let info = found.cached_info();
                surveyed(
                    bucket_object,
                    Drift::from_fields(bucket_drift(
                        &info.config,
                        &desired.bucket(),
                        info.state.messages,
                    )),
                    Found::Stream(Box::new(info.config.clone())),
                )
            }
            None => surveyed(bucket_object, Drift::Missing, Found::Nothing),
        },
    );
    Ok(Survey { objects })
}

fn surveyed(object: Object, drift: Drift, found: Found) -> Surveyed {
    Surveyed {
        object,
        drift,
        found,
    }
}

async fn survey_consumer(
    stream: Option<&Stream>,
    wanted: &WantedConsumer,
) -> Result<Surveyed, NatsAuthError> {
    let object = Object::Consumer(wanted.name().to_owned());
    let Some(stream) = stream else {
        return Ok(surveyed(object, Drift::Missing, Found::Nothing));
    };
    match stream.consumer_info(wanted.name()).await {
        Ok(info) => Ok(surveyed(
            object,
            Drift::from_fields(consumer_drift(&info.config, &wanted.config, wanted.start)),
            Found::Consumer(Box::new(info.config.clone())),
        )),
        Err(err) if err.kind() == ConsumerInfoErrorKind::NotFound => {
            Ok(surveyed(object, Drift::Missing, Found::Nothing))
        }
        Err(err) => Err(nats("looking up", &object, &err)),
    }
}

async fn find_stream(
    js: &jetstream::Context,
    name: &str,
    object: &Object,
) -> Result<Option<Stream>, NatsAuthError> {
    match js.get_stream(name).await {
        Ok(stream) => Ok(Some(stream)),
        Err(err)
            if matches!(err.kind(), GetStreamErrorKind::JetStream(e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            Ok(None)
        }
        Err(err) => Err(nats("looking up", object, &err)),
    }
}

fn nats(
    action: &'static str,
    object: &Object,
    err: &(dyn std::error::Error + 'static),
) -> NatsAuthError {
    NatsAuthError::Bus {
        action: "provisioning".to_owned(),
        source: BusError::nats_on(action, object, err),
    }
}

/// Closes every difference `survey` found (which must come from `desired`): creates what is
/// missing, updates what differs, leaves the rest. Call [`Survey::check_allowed`] first.
pub async fn apply(
    js: &jetstream::Context,
    desired: &Desired,
    survey: Survey,
) -> Result<Vec<(Object, Change)>, NatsAuthError> {
    let mut consumers = desired.consumers.iter();
    let mut changes = Vec::with_capacity(survey.objects.len());
    for surveyed in survey.objects {
        let change = match &surveyed.object {
            Object::Stream(_) => {
                let wanted = desired.stream.stream_config();
                let create = async {
                    js.create_stream(wanted.clone())
                        .await
                        .map(drop)
                        .map_err(|err| nats("creating", &surveyed.object, &err))
                };
                apply_stream_backed(js, &surveyed, create, |actual| {
                    stream_update(actual, &wanted)
                })
                .await?
            }
            Object::Consumer(_) => {
                let wanted = consumers.next().ok_or_else(|| mismatch(&surveyed.object))?;
                apply_consumer(js, wanted, &surveyed).await?
            }
            Object::Bucket(_) => {
                let wanted = desired.bucket();
                let create = async {
                    onedoor_bus::stuck::create_stuck_bucket(js, wanted.clone())
                        .await
                        .map(drop)
                        .map_err(|source| NatsAuthError::Bus {
                            action: "provisioning".to_owned(),
                            source,
                        })
                };
                apply_stream_backed(js, &surveyed, create, |actual| {
                    bucket_update(actual, &wanted)
                })
                .await?
            }
        };
        if change != Change::Unchanged {
            tracing::debug!(object = %surveyed.object, %change, "provisioned");
        }
        changes.push((surveyed.object, change));
    }
    Ok(changes)
}

/// [`survey`], [`Survey::check_allowed`] and [`apply`]: running it again changes nothing.
pub async fn provision(
    js: &jetstream::Context,
    desired: &Desired,
    force: bool,
) -> Result<Vec<(Object, Change)>, NatsAuthError> {
    let found = survey(js, desired).await?;
    found.check_allowed(force)?;
    apply(js, desired, found).await
}

fn mismatch(object: &Object) -> NatsAuthError {
    NatsAuthError::Bus {
        action: "provisioning".to_owned(),
        source: BusError::InvalidSettings {
            field: "survey",
            reason: format!("lists {object}, which the wanted settings do not"),
        },
    }
}

/// The stream, or the bucket (a stream underneath): made by `create` when missing, updated
/// with the configuration `update` makes from the server's when it differs.
async fn apply_stream_backed(
    js: &jetstream::Context,
    surveyed: &Surveyed,
    create: impl Future<Output = Result<(), NatsAuthError>>,
    update: impl FnOnce(&stream::Config) -> stream::Config,
) -> Result<Change, NatsAuthError> {
    match (&surveyed.drift, &surveyed.found) {
        (Drift::InSync, _) => Ok(Change::Unchanged),
        (Drift::Missing, _) => {
            create.await?;
            Ok(Change::Created)
        }
        (Drift::Differs(fields), Found::Stream(actual)) => {
            js.update_stream(update(actual))
                .await
                .map_err(|err| nats("updating", &surveyed.object, &err))?;
            Ok(Change::Updated(fields.clone()))
        }
        (Drift::Differs(_), _) => Err(mismatch(&surveyed.object)),
    }
}

async fn apply_consumer(
    js: &jetstream::Context,
    wanted: &WantedConsumer,
    surveyed: &Surveyed,
) -> Result<Change, NatsAuthError> {
    if surveyed.drift == Drift::InSync {
        return Ok(Change::Unchanged);
    }
    let stream = js
        .get_stream(STREAM_NAME)
        .await
        .map_err(|err| nats("looking up the stream for", &surveyed.object, &err))?;
    match (&surveyed.drift, &surveyed.found) {
        (Drift::Missing, _) => {
            stream
                .create_consumer_strict(wanted.config.clone())
                .await
                .map_err(|err| nats("creating", &surveyed.object, &err))?;
            Ok(Change::Created)
        }
        (Drift::Differs(fields), Found::Consumer(actual)) => {
            stream
                .update_consumer(consumer_update(actual, &wanted.config))
                .await
                .map_err(|err| nats("updating", &surveyed.object, &err))?;
            Ok(Change::Updated(fields.clone()))
        }
        _ => Err(mismatch(&surveyed.object)),
    }
}
