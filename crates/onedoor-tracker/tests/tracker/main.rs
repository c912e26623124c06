//! The tracker's integration tests, in one binary (one link, shared helpers): a real
//! nats-server per test, a real SQLite file or PostgreSQL database per test, the real `run`.

mod histories;

mod access;
mod audit;
mod cache;
mod database_url;
mod deferred;
mod former_names;
mod grpc;
mod migrate;
mod nats_health;
mod projection;
mod quarantine;
mod sla;
mod staff;
mod store_failure;
mod tmpfs;
