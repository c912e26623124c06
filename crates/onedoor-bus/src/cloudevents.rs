//! CloudEvents attributes as NATS headers, in binary content mode (NATS protocol binding 1.0.3):
//! each attribute is a `ce-<name>` header whose value is percent-encoded, so a
//! CloudEvents-aware consumer in any language can read the stream without our code.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// The binding requires encoding space, double quote, percent and everything outside printable
/// ASCII (U+0021–U+007E). `CONTROLS` covers U+0000–U+001F and U+007F; non-ASCII bytes are
/// always encoded by the crate.
const HEADER_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

pub const SPECVERSION: &str = "ce-specversion";
pub const ID: &str = "ce-id";
pub const SOURCE: &str = "ce-source";
pub const TYPE: &str = "ce-type";
pub const TIME: &str = "ce-time";
pub const SUBJECT: &str = "ce-subject";
pub const DATACONTENTTYPE: &str = "ce-datacontenttype";
/// Correlation extension: the case id, shared by every event of the case.
pub const CORRELATIONID: &str = "ce-correlationid";
/// Correlation extension: the event that caused this one.
pub const CAUSATIONID: &str = "ce-causationid";

pub const SPEC_VERSION: &str = "1.0";
pub const DATA_CONTENT_TYPE: &str = "application/protobuf";

/// `onedoor/<agency>`: the CloudEvents source of an agency's events.
pub fn source(agency: &str) -> String {
    format!("onedoor/{agency}")
}

pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, HEADER_VALUE).to_string()
}

/// [`encode`], keeping `value`'s own buffer when nothing in it needs encoding (ids, codes and
/// times never do).
pub fn encode_owned(value: String) -> String {
    match Cow::from(utf8_percent_encode(&value, HEADER_VALUE)) {
        Cow::Borrowed(_) => value,
        Cow::Owned(encoded) => encoded,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("header value {value:?} is not valid percent-encoded UTF-8")]
pub struct HeaderValueError {
    pub value: String,
}

/// Decodes a received header value: first undoes RFC 7230 double-quoting (older senders), then
/// one round of percent-decoding; invalid UTF-8 (e.g. the overlong `%C0%A0`) is refused.
pub fn decode(value: &str) -> Result<String, HeaderValueError> {
    let unquoted = unquote(value.trim());
    percent_decode_str(&unquoted)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| HeaderValueError {
            value: value.to_owned(),
        })
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_example_encodes_as_the_spec_shows() {
        assert_eq!(
            encode("Euro \u{20AC} \u{1F600}"),
            "Euro%20%E2%82%AC%20%F0%9F%98%80"
        );
    }

    #[test]
    fn printable_ascii_other_than_space_quote_and_percent_is_left_alone() {
        assert_eq!(
            encode("onedoor/ODSC-VTE-SAYSETTHA"),
            "onedoor/ODSC-VTE-SAYSETTHA"
        );
        assert_eq!(encode("a \"b\" 100%"), "a%20%22b%22%20100%25");
    }

    #[test]
    fn encoding_an_owned_value_agrees_with_encoding_a_borrowed_one() {
        for value in ["onedoor/MOF", "a \"b\" 100%", "ກະຊວງການເງິນ", ""] {
            assert_eq!(encode_owned(value.to_owned()), encode(value));
        }
    }

    #[test]
    fn lao_text_round_trips() {
        let text = "ກະຊວງການເງິນ";
        assert_eq!(decode(&encode(text)).as_deref(), Ok(text));
    }

    #[test]
    fn decoding_accepts_lower_case_quoted_and_needlessly_encoded_values() {
        assert_eq!(decode("%e2%82%ac").as_deref(), Ok("\u{20AC}"));
        assert_eq!(decode("\"a \\\"b\\\"\"").as_deref(), Ok("a \"b\""));
        assert_eq!(decode("%41BC").as_deref(), Ok("ABC"));
    }

    #[test]
    fn overlong_utf8_is_refused() {
        assert!(decode("%C0%A0").is_err());
    }
}
