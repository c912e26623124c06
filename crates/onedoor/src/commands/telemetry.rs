//! Process-wide telemetry set-up: structured logs always; OpenTelemetry traces over OTLP only
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard variable, so any collector works).

use anyhow::Context as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Keeps the tracer provider alive; [`Telemetry::shutdown`] flushes what is buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Installs the OTLP exporter as the global tracer provider when the endpoint is configured.
/// Must run inside a multi-thread Tokio runtime (the batch exporter needs one).
pub fn init(service_name: &str) -> anyhow::Result<Telemetry> {
    let configured = std::env::var(OTLP_ENDPOINT_ENV).is_ok_and(|v| !v.trim().is_empty());
    if !configured {
        return Ok(Telemetry { provider: None });
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .context("building the OTLP span exporter")?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    tracing::info!(endpoint = ?std::env::var(OTLP_ENDPOINT_ENV).ok(), "exporting traces over OTLP");
    Ok(Telemetry {
        provider: Some(provider),
    })
}

impl Telemetry {
    /// Flushes and stops the exporter. Runs the blocking flush off the async workers: the batch
    /// processor's flush waits on a worker that needs the runtime to make progress.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "flushing traces failed"),
            Err(err) => tracing::warn!(error = %err, "flushing traces panicked"),
        }
    }
}
