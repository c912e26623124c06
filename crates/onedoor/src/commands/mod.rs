pub mod adapter;
pub mod common;
pub mod metrics;
pub mod registry;
pub mod telemetry;
pub mod up;
