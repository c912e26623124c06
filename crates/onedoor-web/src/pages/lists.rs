//! The staff lists: overdue tasks and stuck deliveries. Both share one frame — agency and service
//! filters, sortable column headers, and a pager — so a clerk learns one way to read them.
//!
//! The overdue list grows with the cases (hundreds of thousands of rows among a million cases),
//! so its sorts by time or case id are paged by the database: a page reads one page of rows.
//! Sorts by names in the reader's language, which the database does not know, and the stuck
//! list (read from a bucket, short) are sorted in memory. Only one page of rows is rendered, so
//! a long list stays a page a phone can open.

use std::cmp::Ordering;
use std::ops::Range;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::Uri;
use maud::{Markup, html};
use onedoor_case::{AgencyCode, ServiceCode};
use onedoor_tracker::store::{OverdueFilter, OverdueOrder, TaskView};
use onedoor_tracker::stuck::StuckRecord;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Page, agency_filter, chrome, names, offset, query, service_filter, when};
use crate::WebState;
use crate::auth::Viewer;
use crate::error::WebError;
use crate::i18n::{self, Lang, Msg};
use crate::layout::{self, Section};

/// Rows on one page of a list: enough to scan, few enough to render at once on a phone.
pub const PAGE_ROWS: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    agency: Option<String>,
    service: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    /// 1-based; past the last page shows the last page.
    page: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Asc,
    Desc,
}

impl Direction {
    fn parse(text: Option<&str>, default: Direction) -> Result<Direction, WebError> {
        match text.unwrap_or_default() {
            "" => Ok(default),
            "asc" => Ok(Direction::Asc),
            "desc" => Ok(Direction::Desc),
            _ => Err(WebError::bad_request(Msg::ErrorBadFilter)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Direction::Asc => "asc",
            Direction::Desc => "desc",
        }
    }

    fn flip(self) -> Direction {
        match self {
            Direction::Asc => Direction::Desc,
            Direction::Desc => Direction::Asc,
        }
    }

    fn apply(self, ordering: Ordering) -> Ordering {
        match self {
            Direction::Asc => ordering,
            Direction::Desc => ordering.reverse(),
        }
    }
}

/// What a list page is: its texts, the URL its filters submit to, its sorts.
struct ListSpec {
    title: Msg,
    intro: Msg,
    nothing: Msg,
    action: &'static str,
    section: Section,
    sort_keys: &'static [&'static str],
    default_sort: (&'static str, Direction),
}

const OVERDUE: ListSpec = ListSpec {
    title: Msg::OverdueTitle,
    intro: Msg::OverdueIntro,
    nothing: Msg::NothingOverdue,
    action: "/overdue",
    section: Section::Overdue,
    sort_keys: &["case", "service", "agency", "handed", "due", "late", "held"],
    default_sort: ("late", Direction::Desc),
};

const STUCK: ListSpec = ListSpec {
    title: Msg::StuckTitle,
    intro: Msg::StuckIntro,
    nothing: Msg::NothingStuck,
    action: "/stuck",
    section: Section::Stuck,
    sort_keys: &["recorded", "agency", "service", "case", "attempts"],
    default_sort: ("recorded", Direction::Desc),
};

/// A list request, parsed at the edge: filters that exist in the registry, a sort the list
/// offers, a page number of at least 1.
struct ListRequest {
    spec: &'static ListSpec,
    agency: Option<AgencyCode>,
    service: Option<ServiceCode>,
    sort_key: &'static str,
    dir: Direction,
    page: usize,
}

impl ListRequest {
    fn parse(
        state: &WebState,
        spec: &'static ListSpec,
        params: Result<Query<ListParams>, QueryRejection>,
    ) -> Result<ListRequest, WebError> {
        let params = query(params)?;
        let bad = || WebError::bad_request(Msg::ErrorBadFilter);
        let sort_key = match params.sort.as_deref().unwrap_or_default() {
            "" => spec.default_sort.0,
            text => spec
                .sort_keys
                .iter()
                .copied()
                .find(|k| *k == text)
                .ok_or_else(bad)?,
        };
        let page = match params.page {
            None => 1,
            Some(0) => return Err(bad()),
            Some(n) => n as usize,
        };
        Ok(ListRequest {
            spec,
            agency: agency_filter(state, params.agency.as_deref())?,
            service: service_filter(state, params.service.as_deref())?,
            sort_key,
            dir: Direction::parse(params.dir.as_deref(), spec.default_sort.1)?,
            page,
        })
    }

    /// This list's URL with these filters, a sort and a page. Filter values are registry codes
    /// (checked on the way in), so they need no escaping in a query string.
    fn href(&self, sort_key: &str, dir: Direction, page: usize) -> String {
        let mut href = format!(
            "{}?agency={}&service={}&sort={sort_key}&dir={}",
            self.spec.action,
            self.agency.as_ref().map_or("", AgencyCode::as_str),
            self.service.as_ref().map_or("", ServiceCode::as_str),
            dir.name()
        );
        if page > 1 {
            href.push_str(&format!("&page={page}"));
        }
        href
    }

    fn order(&self, ordering: Ordering) -> Ordering {
        self.dir.apply(ordering)
    }
}

/// Which rows of a sorted list this page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pager {
    page: usize,
    pages: usize,
    total: usize,
}

impl Pager {
    fn new(total: usize, asked: usize) -> Pager {
        let pages = total.div_ceil(PAGE_ROWS).max(1);
        Pager {
            page: asked.clamp(1, pages),
            pages,
            total,
        }
    }

    fn rows(&self) -> Range<usize> {
        let start = (self.page - 1) * PAGE_ROWS;
        start..(start + PAGE_ROWS).min(self.total)
    }
}

/// `(code, name)` pairs for a `<select>`.
type Options = Vec<(String, String)>;

/// Options for the agency and service filters, named in the page's language, alphabetical.
fn filter_options(state: &WebState, lang: Lang) -> (Options, Options) {
    let names = names(state, lang);
    let mut agencies: Options = state
        .inner
        .tracker
        .registry()
        .agencies
        .keys()
        .map(|code| (code.to_string(), names.agency(code.as_str())))
        .collect();
    agencies.sort_by(|a, b| a.1.cmp(&b.1));
    let mut services: Options = state
        .inner
        .tracker
        .registry()
        .services
        .keys()
        .map(|code| (code.to_string(), names.service(code.as_str())))
        .collect();
    services.sort_by(|a, b| a.1.cmp(&b.1));
    (agencies, services)
}

/// The agency and service filter form of a list page (plain GET: works without JavaScript).
/// Filtering starts again at page 1.
fn filter_form(state: &WebState, lang: Lang, request: &ListRequest) -> Markup {
    let (agencies, services) = filter_options(state, lang);
    html! {
        form.filters method="get" action=(request.spec.action) {
            div.field {
                label for="agency" { (lang.t(Msg::Agency)) }
                select #agency name="agency" {
                    option value="" { (lang.t(Msg::AllAgencies)) }
                    @for (code, name) in &agencies {
                        option value=(code) selected[request.agency.as_ref().is_some_and(|a| a.as_str() == code)] { (name) }
                    }
                }
            }
            div.field {
                label for="service" { (lang.t(Msg::Service)) }
                select #service name="service" {
                    option value="" { (lang.t(Msg::AllServices)) }
                    @for (code, name) in &services {
                        option value=(code) selected[request.service.as_ref().is_some_and(|s| s.as_str() == code)] { (name) }
                    }
                }
            }
            input type="hidden" name="sort" value=(request.sort_key);
            input type="hidden" name="dir" value=(request.dir.name());
            button type="submit" { (lang.t(Msg::FilterButton)) }
        }
    }
}

/// A sortable column header: a link that sorts by this column (flipping the direction when it
/// already does), with `aria-sort` for screen readers. A new sort starts at page 1.
fn sort_header(lang: Lang, label: Msg, key: &str, request: &ListRequest) -> Markup {
    let active = request.sort_key == key;
    let dir = if active {
        request.dir.flip()
    } else {
        Direction::Asc
    };
    let (aria, arrow) = match (active, request.dir) {
        (false, _) => ("none", ""),
        (true, Direction::Asc) => ("ascending", " ▲"),
        (true, Direction::Desc) => ("descending", " ▼"),
    };
    html! {
        th scope="col" aria-sort=(aria) {
            a.sort href=(request.href(key, dir, 1)) data-sort=(key) { (lang.t(label)) (arrow) }
        }
    }
}

/// "Rows 101–200 of 1,234" with links to the neighbouring pages; nothing when one page holds
/// every row.
fn pager_nav(lang: Lang, request: &ListRequest, pager: Pager) -> Markup {
    let rows = pager.rows();
    html! {
        @if pager.pages > 1 {
            nav.pager aria-label=(lang.t(Msg::Pages)) data-page=(pager.page) data-pages=(pager.pages) {
                @if pager.page > 1 {
                    a rel="prev" href=(request.href(request.sort_key, request.dir, pager.page - 1)) {
                        "← " (lang.t(Msg::PreviousPage))
                    }
                }
                span.rows-shown { (i18n::rows_shown(lang, rows.start + 1, rows.end, pager.total)) }
                @if pager.page < pager.pages {
                    a rel="next" href=(request.href(request.sort_key, request.dir, pager.page + 1)) {
                        (lang.t(Msg::NextPage)) " →"
                    }
                }
            }
        }
    }
}

/// A whole list page: title, filters, then either "nothing" or the table of this page's rows
/// between two pagers, then `after` (notes below the table).
#[allow(clippy::too_many_arguments)]
fn list_page(
    state: &WebState,
    lang: Lang,
    viewer: &Viewer,
    uri: &Uri,
    request: &ListRequest,
    pager: Pager,
    table: Markup,
    after: Markup,
) -> Page {
    let spec = request.spec;
    let body = html! {
        h1 { (lang.t(spec.title)) }
        p.hint { (lang.t(spec.intro)) }
        (filter_form(state, lang, request))
        @if pager.total == 0 {
            p.empty #nothing { (lang.t(spec.nothing)) }
        } @else {
            (pager_nav(lang, request, pager))
            div.table-scroll { (table) }
            (pager_nav(lang, request, pager))
        }
        (after)
    };
    Page(layout::page(
        &chrome(state, lang, viewer, uri),
        lang.t(spec.title),
        spec.section,
        body,
    ))
}

/// The database order that gives the overdue list's `sort_key` in `dir`, as (order, descending);
/// `None` for sorts by names in the reader's language.
fn overdue_order(sort_key: &str, dir: Direction) -> Option<(OverdueOrder, bool)> {
    let descending = dir == Direction::Desc;
    match sort_key {
        // Most working days late first is earliest due first: lateness only grows as the due
        // time moves back.
        "late" => Some((OverdueOrder::Due, !descending)),
        "due" => Some((OverdueOrder::Due, descending)),
        "handed" => Some((OverdueOrder::HandedOff, descending)),
        // Held longest is handed off earliest.
        "held" => Some((OverdueOrder::HandedOff, !descending)),
        "case" => Some((OverdueOrder::Case, descending)),
        _ => None,
    }
}

/// `GET /overdue`: open tasks past due, with working days late.
pub async fn overdue(
    State(state): State<WebState>,
    lang: Lang,
    viewer: Viewer,
    uri: Uri,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Page, WebError> {
    let request = ListRequest::parse(&state, &OVERDUE, params)?;
    let now = state.inner.tracker.now();
    let filter = OverdueFilter {
        agency: request.agency.clone(),
        service: request.service.clone(),
        origin: viewer.office().cloned(),
    };
    let (rows, pager) = overdue_rows(&state, lang, &request, &filter, now).await?;
    let table = overdue_table(&state, lang, &request, &rows, now);
    Ok(list_page(
        &state,
        lang,
        &viewer,
        &uri,
        &request,
        pager,
        table,
        html! {},
    ))
}

/// This page of the overdue list, and its pager: paged by the database for sorts it knows,
/// sorted by names in the reader's language here otherwise.
async fn overdue_rows(
    state: &WebState,
    lang: Lang,
    request: &ListRequest,
    filter: &OverdueFilter,
    now: OffsetDateTime,
) -> Result<(Vec<TaskView>, Pager), WebError> {
    let tracker = &state.inner.tracker;
    if let Some(order) = overdue_order(request.sort_key, request.dir) {
        let total = tracker.overdue_count(filter, now).await?;
        let pager = Pager::new(usize::try_from(total).unwrap_or(usize::MAX), request.page);
        let shown = pager.rows();
        let rows = tracker
            .overdue_page(filter, order, shown.start as u64, shown.len() as u64, now)
            .await?;
        return Ok((rows, pager));
    }
    let mut rows = tracker
        .overdue_page(filter, (OverdueOrder::Due, false), 0, u64::MAX, now)
        .await?;
    let names = names(state, lang);
    rows.sort_by(|a, b| {
        request.order(match request.sort_key {
            "service" => names
                .service(&a.task.service)
                .cmp(&names.service(&b.task.service)),
            _ => names
                .agency(&a.task.agency)
                .cmp(&names.agency(&b.task.agency)),
        })
    });
    let pager = Pager::new(rows.len(), request.page);
    let shown = pager.rows();
    rows.truncate(shown.end);
    rows.drain(..shown.start);
    Ok((rows, pager))
}

fn overdue_table(
    state: &WebState,
    lang: Lang,
    request: &ListRequest,
    rows: &[TaskView],
    now: OffsetDateTime,
) -> Markup {
    let names = names(state, lang);
    let offset = offset(state);
    let header = |label, key| sort_header(lang, label, key, request);
    html! {
        table #overdue .list.stack {
            thead {
                tr {
                    (header(Msg::CaseId, "case"))
                    (header(Msg::Service, "service"))
                    (header(Msg::Agency, "agency"))
                    (header(Msg::HandedOff, "handed"))
                    (header(Msg::Due, "due"))
                    (header(Msg::Late, "late"))
                    (header(Msg::TimeHeld, "held"))
                }
            }
            tbody {
                @for row in rows {
                    tr {
                        td data-label=(lang.t(Msg::CaseId)) {
                            a.case-link href={"/cases/" (row.task.case_id)} { code { (row.task.case_id) } }
                            br;
                            span.sub { bdi { (row.citizen_ref) } }
                        }
                        td data-label=(lang.t(Msg::Service)) { (names.service(&row.task.service)) }
                        td data-label=(lang.t(Msg::Agency)) { (names.agency(&row.task.agency)) }
                        td data-label=(lang.t(Msg::HandedOff)) { (when(row.task.handed_off_at, offset)) }
                        td data-label=(lang.t(Msg::Due)) { (when(row.task.due_at, offset)) }
                        td.late-text data-label=(lang.t(Msg::Late)) data-working-days-late=(row.working_days_late) {
                            (i18n::working_days_late(lang, row.working_days_late))
                        }
                        td data-label=(lang.t(Msg::TimeHeld)) { (i18n::duration(lang, row.task.held(now))) }
                    }
                }
            }
        }
    }
}

/// A stuck delivery with its case's service (the bucket knows the case, not its service).
type StuckRow = (StuckRecord, Option<String>);

/// `GET /stuck`: deliveries an agency's inbox gave up on.
pub async fn stuck(
    State(state): State<WebState>,
    lang: Lang,
    viewer: Viewer,
    uri: Uri,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Page, WebError> {
    let request = ListRequest::parse(&state, &STUCK, params)?;
    let report = state.inner.tracker.stuck_deliveries().await?;
    let mut rows = stuck_rows(&state, &viewer, &request, report.deliveries).await?;
    let names = names(&state, lang);
    rows.sort_by(|(a, a_service), (b, b_service)| {
        request.order(match request.sort_key {
            "agency" => names.agency(&a.agency).cmp(&names.agency(&b.agency)),
            "service" => a_service
                .as_deref()
                .map(|s| names.service(s))
                .cmp(&b_service.as_deref().map(|s| names.service(s))),
            "case" => a.case_id.cmp(&b.case_id),
            "attempts" => a.deliveries.cmp(&b.deliveries),
            _ => (a.recorded_at, a.stream_sequence).cmp(&(b.recorded_at, b.stream_sequence)),
        })
    });
    let pager = Pager::new(rows.len(), request.page);
    let table = stuck_table(&state, lang, &request, &rows[pager.rows()]);
    let unreadable = html! {
        @if !report.unreadable.is_empty() {
            section.unreadable {
                h2 { (lang.t(Msg::UnreadableEntries)) }
                ul {
                    @for entry in &report.unreadable {
                        li { code { (entry.key) } ": " (entry.why) }
                    }
                }
            }
        }
    };
    Ok(list_page(
        &state, lang, &viewer, &uri, &request, pager, table, unreadable,
    ))
}

/// The deliveries the filters keep and the viewer may see, each with its case's service.
async fn stuck_rows(
    state: &WebState,
    viewer: &Viewer,
    request: &ListRequest,
    deliveries: Vec<StuckRecord>,
) -> Result<Vec<StuckRow>, WebError> {
    let mut rows = Vec::new();
    for delivery in deliveries {
        if request
            .agency
            .as_ref()
            .is_some_and(|a| a.as_str() != delivery.agency)
        {
            continue;
        }
        let case = match delivery.case_id.as_str() {
            "" => None,
            id => state.inner.tracker.case(id).await?,
        };
        // A front-office account sees deliveries of its own cases only.
        if viewer.office().is_some()
            && !case
                .as_ref()
                .is_some_and(|c| viewer.may_see(&c.origin_agency))
        {
            continue;
        }
        let case_service = case.map(|c| c.service);
        if let Some(wanted) = &request.service
            && case_service.as_deref() != Some(wanted.as_str())
        {
            continue;
        }
        rows.push((delivery, case_service));
    }
    Ok(rows)
}

fn stuck_table(state: &WebState, lang: Lang, request: &ListRequest, rows: &[StuckRow]) -> Markup {
    let names = names(state, lang);
    let offset = offset(state);
    let header = |label, key| sort_header(lang, label, key, request);
    html! {
        table #stuck .list.stack {
            thead {
                tr {
                    (header(Msg::Recorded, "recorded"))
                    (header(Msg::Inbox, "agency"))
                    (header(Msg::CaseId, "case"))
                    (header(Msg::Service, "service"))
                    th scope="col" { (lang.t(Msg::EventId)) }
                    (header(Msg::Attempts, "attempts"))
                    th scope="col" { (lang.t(Msg::Reason)) }
                }
            }
            tbody {
                @for (delivery, case_service) in rows {
                    tr {
                        td data-label=(lang.t(Msg::Recorded)) { (when(delivery.recorded_at, offset)) }
                        td data-label=(lang.t(Msg::Inbox)) { (names.agency(&delivery.agency)) }
                        td data-label=(lang.t(Msg::CaseId)) {
                            @if delivery.case_id.is_empty() { "—" } @else {
                                a.case-link href={"/cases/" (delivery.case_id)} { code { (delivery.case_id) } }
                            }
                        }
                        td data-label=(lang.t(Msg::Service)) { @if let Some(s) = case_service { (names.service(s)) } @else { "—" } }
                        td data-label=(lang.t(Msg::EventId)) { code { (delivery.event_id) } }
                        td data-label=(lang.t(Msg::Attempts)) { (delivery.deliveries) }
                        td data-label=(lang.t(Msg::Reason)) { (delivery.reason) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pager_shows_every_row_exactly_once_across_its_pages() {
        for total in [
            0,
            1,
            PAGE_ROWS - 1,
            PAGE_ROWS,
            PAGE_ROWS + 1,
            3 * PAGE_ROWS + 7,
        ] {
            let pages = Pager::new(total, 1).pages;
            let shown: Vec<usize> = (1..=pages)
                .flat_map(|page| Pager::new(total, page).rows())
                .collect();
            assert_eq!(shown, (0..total).collect::<Vec<_>>(), "total {total}");
        }
    }

    #[test]
    fn a_page_past_the_end_shows_the_last_page() {
        let pager = Pager::new(2 * PAGE_ROWS + 1, 99);
        assert_eq!((pager.page, pager.pages), (3, 3));
        assert_eq!(pager.rows(), 2 * PAGE_ROWS..2 * PAGE_ROWS + 1);
    }
}
