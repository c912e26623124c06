//! The store reads the web page uses, under the names its handlers call. The SQL lives in
//! `store::lookup`; this module only keeps the page's call sites unchanged.

use std::collections::BTreeMap;

use crate::error::TrackerError;
use crate::store::Store;

pub async fn case_by_trace(store: &Store, trace_id: &str) -> Result<Option<String>, TrackerError> {
    store.case_by_trace(trace_id).await
}

pub async fn open_task_counts(store: &Store) -> Result<BTreeMap<String, u64>, TrackerError> {
    store.open_task_counts().await
}
