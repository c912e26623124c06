//! Contract names on NATS (`docs/architecture.md`, "The public contract"). Every other
//! module and crate takes these from here; nothing spells a subject by hand.
//!
//! One event is one message on `onedoor.v1.case.<case_id>.<from_agency>.<to_agency>`, with
//! [`NO_AGENCY`] (`_`) where no agency is addressed. Agency codes are `A–Z 0–9 -`, so `_` can
//! never collide with a real agency.

/// The one stream holding every case event: the legal record.
pub const STREAM_NAME: &str = "ONEDOOR";

/// Prefix of every case subject.
pub const CASE_SUBJECT_PREFIX: &str = "onedoor.v1.case";

/// What the stream captures: every case subject.
pub const STREAM_SUBJECTS: &str = "onedoor.v1.case.>";

/// Stand-in token for "no agency" (e.g. `to` of an opened or resolved event).
pub const NO_AGENCY: &str = "_";

/// Durable consumer of the tracker (all case events).
pub const TRACKER_CONSUMER: &str = "tracker";

/// The consumer `onedoor tracker rebuild` replays the stream through: named, so the tracker's
/// NATS identity can be allowed exactly this one.
pub const TRACKER_REBUILD_CONSUMER: &str = "tracker-rebuild";

/// Why a value cannot be a subject token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenProblem {
    Empty,
    /// `.`, `*`, `>` or whitespace would change the subject's shape or meaning.
    ForbiddenCharacter(char),
}

impl std::fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenProblem::Empty => f.write_str("is empty"),
            TokenProblem::ForbiddenCharacter(c) => write!(f, "contains {c:?}"),
        }
    }
}

/// Checks that `value` is one subject token. Case ids (ULIDs) and agency codes always pass;
/// this guards against a caller passing something unparsed.
pub fn check_token(value: &str) -> Result<(), TokenProblem> {
    if value.is_empty() {
        return Err(TokenProblem::Empty);
    }
    match value
        .chars()
        .find(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace())
    {
        Some(c) => Err(TokenProblem::ForbiddenCharacter(c)),
        None => Ok(()),
    }
}

/// The subject `event`'s writer publishes it on (see [`case_subject`]).
pub fn event_subject(event: &onedoor_case::CaseEvent) -> Result<String, crate::BusError> {
    case_subject(
        &event.case_id.to_string(),
        event.from.as_str(),
        event.to.as_ref().map(|a| a.as_str()),
    )
}

/// `onedoor.v1.case.<case_id>.<from>.<to>`; no `to` agency becomes [`NO_AGENCY`]. The sending
/// agency is always known (it is the one acting), so `from` is not optional.
///
/// Takes strings until `onedoor-case`'s `CaseId`/`AgencyCode` (parsed, hence always valid) are
/// wired in; until then every token is checked here.
pub fn case_subject(
    case_id: &str,
    from_agency: &str,
    to_agency: Option<&str>,
) -> Result<String, crate::BusError> {
    let to = to_agency.unwrap_or(NO_AGENCY);
    for (field, value) in [
        ("case_id", case_id),
        ("from_agency", from_agency),
        ("to_agency", to),
    ] {
        check_token(value).map_err(|problem| crate::BusError::InvalidSubjectToken {
            field,
            value: value.to_owned(),
            problem,
        })?;
    }
    Ok(format!(
        "{CASE_SUBJECT_PREFIX}.{case_id}.{from_agency}.{to}"
    ))
}

/// `onedoor.v1.case.<case_id>.>`: every event of one case. Used as
/// `Nats-Expected-Last-Subject-Sequence-Subject` so that appends to one case are serialised.
pub fn case_filter(case_id: &str) -> Result<String, crate::BusError> {
    check_token(case_id).map_err(|problem| crate::BusError::InvalidSubjectToken {
        field: "case_id",
        value: case_id.to_owned(),
        problem,
    })?;
    Ok(format!("{CASE_SUBJECT_PREFIX}.{case_id}.>"))
}

/// `onedoor.v1.case.*.*.<AGENCY>`: the events addressed to one agency (its inbox filter).
pub fn inbox_filter(agency: &str) -> Result<String, crate::BusError> {
    check_token(agency).map_err(|problem| crate::BusError::InvalidSubjectToken {
        field: "agency",
        value: agency.to_owned(),
        problem,
    })?;
    Ok(format!("{CASE_SUBJECT_PREFIX}.*.*.{agency}"))
}

/// `inbox-<AGENCY>`: the durable pull consumer of one agency's inbox.
pub fn inbox_consumer(agency: &str) -> Result<String, crate::BusError> {
    check_token(agency).map_err(|problem| crate::BusError::InvalidSubjectToken {
        field: "agency",
        value: agency.to_owned(),
        problem,
    })?;
    Ok(format!("inbox-{agency}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = "01JDQ3Z6Y8K9M2N4P5R7S9T1V3";

    #[test]
    fn a_hand_off_subject_names_case_sender_and_receiver() {
        assert_eq!(
            case_subject(CASE, "ODSC-VTE-SAYSETTHA", Some("MOIC")).unwrap(),
            format!("onedoor.v1.case.{CASE}.ODSC-VTE-SAYSETTHA.MOIC")
        );
    }

    #[test]
    fn a_missing_agency_becomes_an_underscore() {
        assert_eq!(
            case_subject(CASE, "ODSC-VTE-SAYSETTHA", None).unwrap(),
            format!("onedoor.v1.case.{CASE}.ODSC-VTE-SAYSETTHA._")
        );
    }

    #[test]
    fn every_case_subject_is_captured_by_the_stream_and_matched_by_its_filters() {
        let subject = case_subject(CASE, "MOF", Some("MOIC")).unwrap();
        let prefix = STREAM_SUBJECTS.trim_end_matches('>');
        assert!(subject.starts_with(prefix));
        assert!(subject.starts_with(case_filter(CASE).unwrap().trim_end_matches('>')));
        assert_eq!(inbox_filter("MOIC").unwrap(), "onedoor.v1.case.*.*.MOIC");
        assert_eq!(inbox_consumer("MOIC").unwrap(), "inbox-MOIC");
    }

    #[test]
    fn tokens_that_would_change_the_subject_shape_are_refused() {
        for bad in ["", "a.b", "*", ">", "MO IC"] {
            assert!(case_subject(bad, "MOF", None).is_err(), "{bad:?}");
            assert!(case_subject(CASE, bad, None).is_err(), "{bad:?}");
            assert!(case_subject(CASE, "MOF", Some(bad)).is_err(), "{bad:?}");
            assert!(inbox_filter(bad).is_err(), "{bad:?}");
            assert!(inbox_consumer(bad).is_err(), "{bad:?}");
        }
    }
}
