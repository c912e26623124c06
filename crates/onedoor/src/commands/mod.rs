pub mod adapter;
pub mod audit;
pub mod common;
pub mod keys;
pub mod metrics;
pub mod registry;
pub mod telemetry;
pub mod up;
