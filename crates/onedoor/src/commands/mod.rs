pub mod registry;
pub mod up;
