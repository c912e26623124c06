//! The district offices' line on the workload page: which offices the capital hears from, which
//! are disconnected and since when, and how many steps wait at each for the link
//! (`onedoor_tracker::offices`); and on a case page, the steps of that case an office last
//! said wait there for the link.

use std::collections::HashSet;

use axum::http::Uri;
use maud::{Markup, html};
use onedoor_tracker::OfficeLink;
use onedoor_tracker::WaitingStep;

use super::{Page, chrome, names, offset, when};
use crate::auth::Viewer;
use crate::error::WebError;
use crate::i18n::{Lang, Msg};
use crate::layout::{self, Section};
use crate::{Names, WebState};

/// The offices' section: a count of those disconnected, then one row per office,
/// disconnected first.
pub(super) fn section(
    lang: Lang,
    names: &Names,
    offices: &[OfficeLink],
    offset: time::UtcOffset,
) -> Markup {
    let disconnected = offices.iter().filter(|o| !o.connected).count();
    html! {
        section #offices {
            h2 { (lang.t(Msg::OfficesTitle)) }
            p.hint { (lang.t(Msg::OfficesIntro)) }
            @if offices.is_empty() {
                p.empty { (lang.t(Msg::NoOffices)) }
            } @else {
                p #offices-disconnected data-count=(disconnected) {
                    (lang.t(Msg::OfficesDisconnected)) ": "
                    strong.late-text[disconnected > 0] { (disconnected) }
                }
                div.table-scroll { (table(lang, names, offices, offset)) }
            }
        }
    }
}

fn table(lang: Lang, names: &Names, offices: &[OfficeLink], offset: time::UtcOffset) -> Markup {
    html! {
        table.list.stack {
            thead {
                tr {
                    th scope="col" { (lang.t(Msg::FrontOffice)) }
                    th scope="col" { (lang.t(Msg::OfficeLink)) }
                    th scope="col" .num { (lang.t(Msg::OfficeWaiting)) }
                }
            }
            tbody {
                @for office in offices {
                    tr data-office=(office.office) data-connected=(office.connected) {
                        th scope="row" { (names.agency(&office.office)) }
                        td data-label=(lang.t(Msg::OfficeLink)) {
                            @if office.connected {
                                (lang.t(Msg::OfficeConnected))
                            } @else {
                                span.late-text {
                                    (lang.t(Msg::OfficeDisconnectedSince)) " "
                                    (when(office.last_heard, offset))
                                }
                            }
                        }
                        td.num data-label=(lang.t(Msg::OfficeWaiting)) {
                            (office.status.pending)
                            @if let Some(oldest) = office.status.oldest_pending {
                                " (" (lang.t(Msg::OfficeOldestWaiting)) " " (when(oldest, offset)) ")"
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One step of a case waiting at an office, as the office last said.
pub(crate) struct Waiting {
    pub office: String,
    pub step: WaitingStep,
}

/// The steps of `case_id` that offices last said wait for their link, less those the tracker
/// already has (`known` event ids: the status that listed them is older than their delivery).
pub(crate) fn waiting_on(
    offices: &[OfficeLink],
    case_id: &str,
    known: &HashSet<String>,
) -> Vec<Waiting> {
    offices
        .iter()
        .flat_map(|office| {
            office
                .status
                .waiting
                .iter()
                .filter(|step| step.case_id == case_id && !known.contains(&step.event_id))
                .map(|step| Waiting {
                    office: office.office.clone(),
                    step: step.clone(),
                })
        })
        .collect()
}

/// The event kind (`onedoor_case::EventBody::kind`) in words; an unknown one as it came.
fn kind_text(lang: Lang, kind: &str) -> String {
    let msg = match kind {
        "opened" => Msg::KindOpened,
        "handed_off" => Msg::KindHandedOff,
        "accepted" => Msg::KindAccepted,
        "completed" => Msg::KindCompleted,
        "sent_back" => Msg::KindSentBack,
        "info_requested" => Msg::KindInfoRequested,
        "resolved" => Msg::KindResolved,
        "task_closed" => Msg::KindTaskClosed,
        "task_transferred" => Msg::KindTaskTransferred,
        other => return other.to_owned(),
    };
    lang.t(msg).to_owned()
}

/// "Waiting at a district office for the link": nothing when nothing waits.
pub(crate) fn waiting_section(
    lang: Lang,
    names: &Names,
    waiting: &[Waiting],
    offset: time::UtcOffset,
) -> Markup {
    if waiting.is_empty() {
        return html! {};
    }
    html! {
        section #waiting-at-office aria-labelledby="waiting-title" {
            h2 #waiting-title { (lang.t(Msg::WaitingAtOffice)) }
            p.hint { (lang.t(Msg::WaitingAtOfficeIntro)) }
            div.table-scroll {
                table.list.stack {
                    thead {
                        tr {
                            th scope="col" { (lang.t(Msg::StoredAtOffice)) }
                            th scope="col" { (lang.t(Msg::FromTo)) }
                            th scope="col" { (lang.t(Msg::What)) }
                        }
                    }
                    tbody {
                        @for waiting in waiting {
                            tr data-waiting-event=(waiting.step.event_id) {
                                td data-label=(lang.t(Msg::StoredAtOffice)) { (when(waiting.step.stored_at, offset)) }
                                td data-label=(lang.t(Msg::FromTo)) {
                                    (names.agency(&waiting.office))
                                    @if let Some(to) = &waiting.step.to {
                                        " → " (names.agency(to))
                                    }
                                }
                                td.kind data-label=(lang.t(Msg::What)) { (kind_text(lang, &waiting.step.kind)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /cases/{case_id}` for a case the tracker does not have: opened at a district office
/// whose steps wait for the link, as the office last said; else not found (also for a
/// front-office account of another office).
pub(super) fn not_yet_at_capital(
    state: &WebState,
    lang: Lang,
    viewer: &Viewer,
    uri: &Uri,
    case_id: &str,
) -> Result<Page, WebError> {
    let waiting: Vec<Waiting> =
        waiting_on(&state.inner.tracker.offices(), case_id, &HashSet::new())
            .into_iter()
            .filter(|w| viewer.may_see(&w.office))
            .collect();
    if waiting.is_empty() {
        return Err(WebError::not_found(Msg::ErrorCaseNotFound));
    }
    let names = names(state, lang);
    let body = html! {
        h1 { (lang.t(Msg::CaseNumber)) " " code { (case_id) } }
        p #not-yet-at-capital { (lang.t(Msg::NotYetAtCapital)) }
        (waiting_section(lang, &names, &waiting, offset(state)))
    };
    Ok(Page(layout::page(
        &chrome(state, lang, viewer, uri),
        case_id,
        Section::None,
        body,
    )))
}

#[cfg(test)]
mod tests {
    use onedoor_bus::office_status::OfficeStatus;
    use onedoor_tracker::built_in_registry;
    use time::macros::{datetime, offset};

    use super::*;

    fn office(code: &str, connected: bool, pending: u64) -> OfficeLink {
        OfficeLink {
            office: code.to_owned(),
            last_heard: datetime!(2026-12-05 07:05 UTC),
            connected,
            status: OfficeStatus {
                pending,
                oldest_pending: (pending > 0).then_some(datetime!(2026-12-05 07:01 UTC)),
                conflicts: 0,
                sent_at: datetime!(2026-12-05 07:05 UTC),
                waiting: Vec::new(),
            },
        }
    }

    #[test]
    fn a_disconnected_office_says_since_when_and_what_waits() {
        let registry = std::sync::Arc::new(built_in_registry().expect("registry"));
        let offices = [
            office("ODSC-VTE-SAYSETTHA", false, 3),
            office("ODSC-CPS-PAKSE", true, 0),
        ];
        for (lang, since) in [
            (Lang::En, "Disconnected since"),
            (Lang::Lo, "ຂາດການເຊື່ອມຕໍ່ນັບແຕ່"),
        ] {
            let names = Names {
                registry: registry.clone(),
                lang,
            };
            let html = section(lang, &names, &offices, offset!(+7)).into_string();
            assert!(html.contains(r#"data-count="1""#), "{html}");
            assert!(html.contains(since), "{html}");
            assert!(html.contains("05/12/2026 14:05"), "{html}");
            assert!(html.contains("05/12/2026 14:01"), "{html}");
            assert!(html.contains(r#"data-office="ODSC-CPS-PAKSE" data-connected="true""#));
        }
        let names = Names {
            registry: registry.clone(),
            lang: Lang::En,
        };
        let none = section(Lang::En, &names, &[], offset!(+7)).into_string();
        assert!(
            none.contains("No district office has reported yet."),
            "{none}"
        );
    }

    #[test]
    fn a_case_lists_only_its_own_steps_the_tracker_does_not_have() {
        let step = |case: &str, event: &str| WaitingStep {
            case_id: case.to_owned(),
            event_id: event.to_owned(),
            kind: "handed_off".to_owned(),
            to: Some("MOIC".to_owned()),
            stored_at: datetime!(2026-12-05 07:01 UTC),
        };
        let mut link = office("ODSC-VTE-SAYSETTHA", false, 3);
        link.status.waiting = vec![step("C1", "E1"), step("C2", "E2"), step("C1", "E3")];
        let known: HashSet<String> = ["E3".to_owned()].into();
        let found: Vec<String> = waiting_on(&[link], "C1", &known)
            .into_iter()
            .map(|w| w.step.event_id)
            .collect();
        assert_eq!(found, ["E1"]);
        let registry = std::sync::Arc::new(built_in_registry().expect("registry"));
        let names = Names {
            registry,
            lang: Lang::En,
        };
        let none = waiting_section(Lang::En, &names, &[], offset!(+7)).into_string();
        assert!(none.is_empty(), "nothing waits, nothing shown: {none}");
    }
}
