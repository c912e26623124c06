//! The one error type of the gRPC crate: what its helpers refuse at start-up (never per call).

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// A setting is unusable; `key` names it as the CLI and the config file do.
    #[error("{key}: {why}")]
    Config { key: &'static str, why: String },

    /// A key or certificate could not be made or read (`devpki`: `onedoor up`, `onedoor certs`).
    #[error("certificates, {what}: {source}")]
    Pki {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },

    /// The server could not be built (TLS identity, reflection).
    #[error("building the gRPC server, {what}: {why}")]
    Build { what: &'static str, why: String },
}
