//! `ListCasesRequest` → [`CaseFilter`] and a page position, checked once at the edge; and the
//! opaque page tokens.
//!
//! A page token holds where the previous page ended (opened time and case id, the listing's
//! stable order) and a fingerprint of the filters it was made for, so a token sent with other
//! filters is refused rather than silently skipping or repeating cases. It is hex text: opaque
//! to callers, but nothing secret (it names a case id the caller has already seen).

use onedoor_case::{AgencyCode, CaseId, ServiceCode};
use onedoor_proto::v1;

use crate::error::TrackerError;
use crate::store::{CaseFilter, Cursor};

/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Larger requests are served this many.
pub const MAX_PAGE_SIZE: usize = 500;
/// Longest `text` filter, in bytes (the contract's limit).
pub const TEXT_FILTER_MAX_BYTES: usize = 256;

const TOKEN_VERSION: &str = "1";

/// A parsed ListCases request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: CaseFilter,
    pub after: Option<Cursor>,
    pub page_size: usize,
}

impl ListQuery {
    pub fn parse(request: &v1::ListCasesRequest) -> Result<Self, TrackerError> {
        let agency = |field, text: &str| -> Result<Option<AgencyCode>, TrackerError> {
            match text {
                "" => Ok(None),
                text => AgencyCode::parse(text)
                    .map(Some)
                    .map_err(|e| TrackerError::invalid(field, e)),
            }
        };
        let mut statuses = Vec::new();
        for &value in &request.statuses {
            let name = match v1::CaseStatus::try_from(value) {
                Ok(v1::CaseStatus::AtFrontOffice) => "at_front_office",
                Ok(v1::CaseStatus::InProgress) => "in_progress",
                Ok(v1::CaseStatus::AwaitingInfo) => "awaiting_info",
                Ok(v1::CaseStatus::Resolved) => "resolved",
                Ok(v1::CaseStatus::Unspecified) => {
                    return Err(TrackerError::invalid(
                        "statuses",
                        "CASE_STATUS_UNSPECIFIED is not a status to filter on",
                    ));
                }
                Err(_) => {
                    return Err(TrackerError::invalid(
                        "statuses",
                        format!("{value} is not a CaseStatus"),
                    ));
                }
            };
            if !statuses.contains(&name) {
                statuses.push(name);
            }
        }
        // Order does not change the result, so it must not change the fingerprint either.
        statuses.sort_unstable();
        if request.text.len() > TEXT_FILTER_MAX_BYTES {
            return Err(TrackerError::invalid(
                "text",
                format!(
                    "is {} bytes; the limit is {TEXT_FILTER_MAX_BYTES}",
                    request.text.len()
                ),
            ));
        }
        let filter = CaseFilter {
            holding_agency: agency("holding_agency", &request.holding_agency)?,
            statuses,
            overdue_only: request.overdue_only,
            origin_agency: agency("origin_agency", &request.origin_agency)?,
            service: match request.service.as_str() {
                "" => None,
                text => Some(
                    ServiceCode::parse(text).map_err(|e| TrackerError::invalid("service", e))?,
                ),
            },
            text: match request.text.trim() {
                "" => None,
                text => Some(text.to_lowercase()),
            },
            part_of: None,
        };
        let after = match request.page_token.as_str() {
            "" => None,
            token => Some(decode_token(token, fingerprint(&filter))?),
        };
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => usize::try_from(n)
                .unwrap_or(MAX_PAGE_SIZE)
                .min(MAX_PAGE_SIZE),
        };
        Ok(ListQuery {
            filter,
            after,
            page_size,
        })
    }

    /// The token for the page after one that ended at `last`.
    pub fn next_token(&self, last: &Cursor) -> String {
        encode_token(fingerprint(&self.filter), last)
    }
}

/// FNV-1a over a canonical spelling of the filters: stable across processes and versions
/// (unlike `std`'s hasher), which a token handed to a client needs.
fn fingerprint(filter: &CaseFilter) -> u64 {
    let canonical = format!(
        "agency={}|statuses={}|overdue={}|origin={}|service={}|text={}",
        filter
            .holding_agency
            .as_ref()
            .map_or("", AgencyCode::as_str),
        filter.statuses.join(","),
        filter.overdue_only,
        filter.origin_agency.as_ref().map_or("", AgencyCode::as_str),
        filter.service.as_ref().map_or("", ServiceCode::as_str),
        filter.text.as_deref().unwrap_or(""),
    );
    canonical
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

fn encode_token(fingerprint: u64, cursor: &Cursor) -> String {
    let plain = format!(
        "{TOKEN_VERSION}.{fingerprint:016x}.{}.{}",
        cursor.opened_at_ns, cursor.case_id
    );
    plain.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str, expected_fingerprint: u64) -> Result<Cursor, TrackerError> {
    let bad = || {
        TrackerError::invalid(
            "page_token",
            "is not a token from a previous ListCases response; send next_page_token unchanged",
        )
    };
    if !token.len().is_multiple_of(2) || token.len() > 256 {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let plain = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = plain.split('.');
    let (Some(version), Some(fingerprint), Some(opened), Some(case_id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    if version != TOKEN_VERSION {
        return Err(bad());
    }
    let fingerprint = u64::from_str_radix(fingerprint, 16).map_err(|_| bad())?;
    if fingerprint != expected_fingerprint {
        return Err(TrackerError::invalid(
            "page_token",
            "was made for different filters; send the same filters with every page",
        ));
    }
    let opened_at_ns: i64 = opened.parse().map_err(|_| bad())?;
    let case_id = CaseId::parse(case_id).map_err(|_| bad())?;
    Ok(Cursor {
        opened_at_ns,
        case_id: case_id.to_string(),
    })
}

/// Parses a caller's case id, naming the field.
pub fn parse_case_id(text: &str) -> Result<CaseId, TrackerError> {
    CaseId::parse(text).map_err(|e| TrackerError::invalid("case_id", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> v1::ListCasesRequest {
        v1::ListCasesRequest {
            holding_agency: "MOF".into(),
            overdue_only: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_token_round_trips_with_the_same_filters() {
        let query = ListQuery::parse(&request()).expect("valid");
        let cursor = Cursor {
            opened_at_ns: 1_700_000_000_000_000_000,
            case_id: CaseId::generate().to_string(),
        };
        let mut next = request();
        next.page_token = query.next_token(&cursor);
        assert_eq!(ListQuery::parse(&next).expect("valid").after, Some(cursor));
    }

    #[test]
    fn a_token_with_other_filters_or_garbage_is_invalid() {
        let query = ListQuery::parse(&request()).expect("valid");
        let token = query.next_token(&Cursor {
            opened_at_ns: 1,
            case_id: CaseId::generate().to_string(),
        });
        let other = v1::ListCasesRequest {
            page_token: token,
            ..Default::default()
        };
        assert!(matches!(
            ListQuery::parse(&other),
            Err(TrackerError::InvalidArgument {
                field: "page_token",
                ..
            })
        ));
        for garbage in ["zz", "abc", "00", "not a token", &"ab".repeat(200)] {
            let bad = v1::ListCasesRequest {
                page_token: garbage.into(),
                ..request()
            };
            assert!(ListQuery::parse(&bad).is_err(), "{garbage}");
        }
    }

    #[test]
    fn page_sizes_default_and_cap() {
        let size = |n| {
            ListQuery::parse(&v1::ListCasesRequest {
                page_size: n,
                ..Default::default()
            })
            .expect("valid")
            .page_size
        };
        assert_eq!(size(0), DEFAULT_PAGE_SIZE);
        assert_eq!(size(7), 7);
        assert_eq!(size(100_000), MAX_PAGE_SIZE);
    }

    #[test]
    fn unspecified_status_and_bad_codes_are_invalid() {
        let bad = [
            v1::ListCasesRequest {
                statuses: vec![0],
                ..Default::default()
            },
            v1::ListCasesRequest {
                statuses: vec![99],
                ..Default::default()
            },
            v1::ListCasesRequest {
                holding_agency: "mof".into(),
                ..Default::default()
            },
            v1::ListCasesRequest {
                service: "Bad Service".into(),
                ..Default::default()
            },
            v1::ListCasesRequest {
                text: "x".repeat(257),
                ..Default::default()
            },
        ];
        for request in bad {
            assert!(
                matches!(
                    ListQuery::parse(&request),
                    Err(TrackerError::InvalidArgument { .. })
                ),
                "{request:?}"
            );
        }
    }
}
