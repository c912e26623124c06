//! A request whose string field holds bytes that are not UTF-8, sent as raw protobuf over a real
//! connection to a real adapter, is INVALID_ARGUMENT naming the field (tonic alone answers
//! INTERNAL), and the adapter keeps serving.

use std::marker::PhantomData;

use onedoor_testkit::{FRONT, TestBus, key, token_for};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

/// `OpenCaseRequest` with its text fields as raw bytes (same tags, same wire type), so a test
/// can put anything in them.
#[derive(Clone, PartialEq, Message)]
struct RawOpenCase {
    #[prost(bytes = "vec", tag = "1")]
    service: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    citizen_ref: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    summary: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    idempotency_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    actor: Vec<u8>,
    #[prost(message, repeated, tag = "6")]
    documents: Vec<RawDocument>,
}

#[derive(Clone, PartialEq, Message)]
struct RawDocument {
    #[prost(bytes = "vec", tag = "1")]
    name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    sha256: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    uri: Vec<u8>,
}

/// Encodes `E`, decodes `D`, with prost: the client side of a raw call.
struct RawCodec<E, D>(PhantomData<(E, D)>);

impl<E: Message + Send + 'static, D: Message + Default + Send + 'static> Codec for RawCodec<E, D> {
    type Encode = E;
    type Decode = D;
    type Encoder = RawCodec<E, D>;
    type Decoder = RawCodec<E, D>;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec(PhantomData)
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec(PhantomData)
    }
}

impl<E: Message, D> Encoder for RawCodec<E, D> {
    type Item = E;
    type Error = Status;
    fn encode(&mut self, item: E, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("test encode: {e}")))
    }
}

impl<E, D: Message + Default> Decoder for RawCodec<E, D> {
    type Item = D;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::decode(buf)
            .map(Some)
            .map_err(|e| Status::internal(format!("test decode: {e}")))
    }
}

/// A valid OpenCase request in raw form.
fn open_case() -> RawOpenCase {
    RawOpenCase {
        service: b"enterprise-registration".to_vec(),
        citizen_ref: b"R-2026-0009".to_vec(),
        summary: "ຮ້ານຄ້າ".as_bytes().to_vec(),
        idempotency_key: key().into_bytes(),
        actor: b"clerk-1".to_vec(),
        documents: vec![],
    }
}

async fn send(bus: &TestBus, request: RawOpenCase) -> anyhow::Result<Result<(), Status>> {
    let mut grpc = tonic::client::Grpc::new(bus.channel(FRONT).await?);
    grpc.ready().await?;
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token_for(FRONT)).parse()?,
    );
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/onedoor.v1.AgencyGateway/OpenCase");
    let codec: RawCodec<RawOpenCase, onedoor_proto::v1::Receipt> = RawCodec(PhantomData);
    Ok(grpc.unary(request, path, codec).await.map(drop))
}

#[tokio::test]
async fn a_string_field_that_is_not_utf8_is_invalid_argument_naming_the_field() -> anyhow::Result<()>
{
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let not_utf8 = vec![b'a', 0xff, 0xfe, b'z'];
    let cases: Vec<(&str, RawOpenCase)> = vec![
        (
            "summary",
            RawOpenCase {
                summary: not_utf8.clone(),
                ..open_case()
            },
        ),
        (
            "actor",
            RawOpenCase {
                actor: not_utf8.clone(),
                ..open_case()
            },
        ),
        (
            "documents.name",
            RawOpenCase {
                documents: vec![RawDocument {
                    name: not_utf8.clone(),
                    sha256: vec![b'a'; 64],
                    uri: b"https://docs.example.la/1".to_vec(),
                }],
                ..open_case()
            },
        ),
    ];
    for (field, request) in cases {
        let status = send(&bus, request)
            .await?
            .expect_err("bytes that are not UTF-8 are refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            status.message(),
            format!("{field}: is not valid UTF-8; send text as UTF-8")
        );
    }
    // The same request with valid text passes: the refusal was the bytes, not the raw form.
    let receipt = send(&bus, open_case()).await?;
    assert!(
        receipt.is_ok(),
        "a valid raw request is served: {receipt:?}"
    );
    Ok(())
}
