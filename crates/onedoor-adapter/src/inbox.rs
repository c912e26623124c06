//! The `Inbox` and `Ack` RPCs over the agency's durable consumer (filled in once the bus inbox
//! lands).

use std::pin::Pin;

use futures::Stream;
use onedoor_proto::v1;
use tonic::Status;

use crate::error::AdapterError;

#[derive(Clone, Default)]
pub struct InboxService {}

impl InboxService {
    pub async fn open_stream(
        &self,
        _request: v1::InboxRequest,
    ) -> Result<
        Pin<Box<dyn Stream<Item = Result<v1::InboxItem, Status>> + Send + 'static>>,
        AdapterError,
    > {
        Err(AdapterError::Config("inbox not wired yet".into()))
    }

    pub async fn ack(&self, _request: v1::AckRequest) -> Result<v1::AckResponse, AdapterError> {
        Err(AdapterError::Config("inbox not wired yet".into()))
    }
}
