//! The district offices' line on the workload page: which offices the capital hears from, which
//! are disconnected and since when, and how many steps wait at each for the link
//! (`onedoor_tracker::offices`).

use maud::{Markup, html};
use onedoor_tracker::OfficeLink;

use super::when;
use crate::Names;
use crate::i18n::{Lang, Msg};

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
}
