//! The page handlers. Each parses its input into domain values at the edge (a bad value is a
//! [`WebError::BadRequest`], never a panic), asks the store, and renders.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use onedoor_case::{
    AgencyCode, AgencyKind, Calendar, CaseEvent, CaseId, CaseStatus, EventBody, Resolution,
    ServiceCode,
};
use onedoor_tracker::CaseDetail;
use onedoor_tracker::query::TEXT_FILTER_MAX_BYTES;
use onedoor_tracker::store::RejectedMessage;
use onedoor_tracker::store::{CaseFilter, HeldStat};
use onedoor_tracker::view::{CaseRecord, TaskRecord};
use serde::Deserialize;
use time::{OffsetDateTime, UtcOffset};

use super::auth::{Role, Viewer};
use super::error::WebError;
use super::i18n::{self, LANG_COOKIE, Lang, Msg};
use super::layout::{self, Chrome, Section};
use super::{Names, WebState, timeline};

mod lists;
mod offices;

pub use lists::{overdue, stuck};

/// Recent cases shown on the search page.
const RECENT_CASES: usize = 25;
/// Search results listed before asking for a narrower search.
const SEARCH_RESULTS: usize = 50;

/// An HTML page response: never stored by the browser or a proxy (it shows case data, and is
/// about now), and different per language.
pub struct Page(pub Markup);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::VARY,
            HeaderValue::from_static("Cookie, Accept-Language"),
        );
        response
    }
}

/// Refuses a front-office account (supervisors, and everyone without accounts, may pass).
pub(crate) fn supervisors_only(viewer: &Viewer) -> Result<(), WebError> {
    match viewer.office() {
        Some(_) => Err(WebError::Forbidden {
            what: Msg::ErrorSupervisorsOnly,
        }),
        None => Ok(()),
    }
}

/// Where the language switch returns: this page, with its query.
fn back(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned())
}

/// The frame of a page for this viewer: who is signed in, and which pages to offer.
pub(crate) fn chrome(state: &WebState, lang: Lang, viewer: &Viewer, uri: &Uri) -> Chrome {
    let user = match viewer {
        Viewer::Open => None,
        Viewer::Staff { name, role } => Some(match role {
            Role::FrontOffice(office) => {
                format!("{name} · {}", names(state, lang).agency(office.as_str()))
            }
            Role::Supervisor => format!("{name} · {}", lang.t(Msg::RoleSupervisor)),
        }),
    };
    Chrome {
        lang,
        back: back(uri),
        user,
        supervisor_pages: viewer.office().is_none(),
        nav: true,
    }
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, WebError> {
    query
        .map(|Query(q)| q)
        .map_err(|_| WebError::bad_request(Msg::ErrorBadFilter))
}

fn names(state: &WebState, lang: Lang) -> Names {
    Names {
        registry: state.inner.tracker.registry(),
        lang,
    }
}

fn offset(state: &WebState) -> time::UtcOffset {
    state.inner.tracker.registry().calendar.utc_offset
}

/// An optional agency filter: empty is none; anything else must be an agency of the registry.
fn agency_filter(state: &WebState, text: Option<&str>) -> Result<Option<AgencyCode>, WebError> {
    match text.map(str::trim).unwrap_or_default() {
        "" => Ok(None),
        text => AgencyCode::parse(text)
            .ok()
            .filter(|code| state.inner.tracker.registry().agency(code).is_some())
            .map(Some)
            .ok_or(WebError::bad_request(Msg::ErrorBadFilter)),
    }
}

fn service_filter(state: &WebState, text: Option<&str>) -> Result<Option<ServiceCode>, WebError> {
    match text.map(str::trim).unwrap_or_default() {
        "" => Ok(None),
        text => ServiceCode::parse(text)
            .ok()
            .filter(|code| state.inner.tracker.registry().service(code).is_some())
            .map(Some)
            .ok_or(WebError::bad_request(Msg::ErrorBadFilter)),
    }
}

/// A civil date and time in the short form, as a `<time>` element (machine-readable for
/// assistive tools, kept on one line by the stylesheet).
fn when(at: OffsetDateTime, offset: time::UtcOffset) -> Markup {
    let machine = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    html! { time datetime=(machine) { (i18n::short_datetime(at, offset)) } }
}

fn status_text(lang: Lang, status: CaseStatus) -> (&'static str, &'static str) {
    let (msg, class) = match status {
        CaseStatus::AtFrontOffice => (Msg::StatusAtFrontOffice, "status-office"),
        CaseStatus::InProgress => (Msg::StatusInProgress, "status-progress"),
        CaseStatus::AwaitingInfo => (Msg::StatusAwaitingInfo, "status-waiting"),
        CaseStatus::Resolved(Resolution::Approved) => (Msg::StatusApproved, "status-closed"),
        CaseStatus::Resolved(Resolution::Denied) => (Msg::StatusDenied, "status-closed"),
        CaseStatus::Resolved(Resolution::Withdrawn) => (Msg::StatusWithdrawn, "status-closed"),
    };
    (lang.t(msg), class)
}

fn status_badge(lang: Lang, status: CaseStatus) -> Markup {
    let (text, class) = status_text(lang, status);
    html! { span class={"badge " (class)} { (text) } }
}

// ---------------------------------------------------------------------------------------------
// Search page and search

#[derive(Debug, Default, Deserialize)]
pub struct HomeQuery {
    office: Option<String>,
}

/// `GET /`: the search box and the recent cases of a front office.
pub async fn home(
    State(state): State<WebState>,
    lang: Lang,
    viewer: Viewer,
    uri: Uri,
    params: Result<Query<HomeQuery>, QueryRejection>,
) -> Result<Page, WebError> {
    let params = query(params)?;
    // A front-office account sees its own office's cases, whatever the link says.
    let office = match viewer.office() {
        Some(own) => Some(own.clone()),
        None => agency_filter(&state, params.office.as_deref())?,
    };
    let now = state.inner.tracker.now();
    let filter = CaseFilter {
        origin_agency: office.clone(),
        ..CaseFilter::default()
    };
    let cases = state
        .inner
        .tracker
        .list_cases(&filter, RECENT_CASES, now)
        .await?;
    let names = names(&state, lang);
    let mut offices: Vec<(String, String)> = state
        .inner
        .tracker
        .registry()
        .agencies
        .values()
        .filter(|a| a.kind == AgencyKind::FrontOffice)
        .map(|a| (a.code.to_string(), names.agency(a.code.as_str())))
        .collect();
    offices.sort_by(|a, b| a.1.cmp(&b.1));
    let table = case_table(&state, lang, &cases, now).await?;
    let body = html! {
        h1 { (lang.t(Msg::NavSearch)) }
        (search_form(lang, ""))
        section aria-labelledby="recent-title" {
            h2 #recent-title { (lang.t(Msg::RecentCases)) }
            @if viewer.office().is_none() {
            form.filters method="get" action="/" {
                label for="office" { (lang.t(Msg::FrontOffice)) }
                select #office name="office" {
                    option value="" { (lang.t(Msg::AllFrontOffices)) }
                    @for (code, name) in &offices {
                        @if office.as_ref().is_some_and(|o| o.as_str() == code) {
                            option value=(code) selected { (name) }
                        } @else {
                            option value=(code) { (name) }
                        }
                    }
                }
                button type="submit" { (lang.t(Msg::ShowButton)) }
            }
            }
            (table)
        }
    };
    Ok(Page(layout::page(
        &chrome(&state, lang, &viewer, &uri),
        lang.t(Msg::NavSearch),
        Section::Search,
        body,
    )))
}

fn search_form(lang: Lang, value: &str) -> Markup {
    html! {
        form.search role="search" method="get" action="/search" {
            label for="q" { (lang.t(Msg::SearchLabel)) }
            div.search-row {
                input #q type="search" name="q" value=(value) required autocomplete="off"
                    spellcheck="false" maxlength=(TEXT_FILTER_MAX_BYTES) aria-describedby="q-hint";
                button #search-button type="submit" { (lang.t(Msg::SearchButton)) }
            }
            p #q-hint .hint { (lang.t(Msg::SearchHint)) }
        }
    }
}

/// A table of cases with who holds each now.
async fn case_table(
    state: &WebState,
    lang: Lang,
    cases: &[CaseRecord],
    now: OffsetDateTime,
) -> Result<Markup, WebError> {
    if cases.is_empty() {
        return Ok(html! { p.empty { (lang.t(Msg::NoCases)) } });
    }
    let ids: Vec<String> = cases.iter().map(|c| c.case_id.clone()).collect();
    let open = state.inner.tracker.open_tasks_of(&ids).await?;
    let names = names(state, lang);
    let offset = offset(state);
    Ok(html! {
        div.table-scroll {
            table.cases.stack {
                thead {
                    tr {
                        th scope="col" { (lang.t(Msg::CaseId)) }
                        th scope="col" { (lang.t(Msg::CitizenRef)) }
                        th scope="col" { (lang.t(Msg::Service)) }
                        th scope="col" { (lang.t(Msg::Status)) }
                        th scope="col" { (lang.t(Msg::Opened)) }
                        th scope="col" { (lang.t(Msg::NowWith)) }
                    }
                }
                tbody {
                    @for case in cases {
                        tr {
                            td data-label=(lang.t(Msg::CaseId)) { a.case-link href={"/cases/" (case.case_id)} { code { (case.case_id) } } }
                            td data-label=(lang.t(Msg::CitizenRef)) { bdi { (case.citizen_ref) } }
                            td data-label=(lang.t(Msg::Service)) { (names.service(&case.service)) }
                            td data-label=(lang.t(Msg::Status)) { (status_badge(lang, case.status)) }
                            td data-label=(lang.t(Msg::Opened)) { (when(case.opened_at, offset)) }
                            td data-label=(lang.t(Msg::NowWith)) {
                                @for task in open.iter().filter(|t| t.case_id == case.case_id) {
                                    span.holder.late[task.is_overdue(now)] { (names.agency(&task.agency)) }
                                    " "
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

/// Is this 32 hex digits, i.e. a W3C trace id?
fn as_trace_id(text: &str) -> Option<String> {
    (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// `GET /search?q=`: a case id or a trace id goes straight to the case; other text searches
/// citizen references and summaries, and goes to the case when exactly one matches.
pub async fn search(
    State(state): State<WebState>,
    lang: Lang,
    viewer: Viewer,
    uri: Uri,
    params: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let params = query(params)?;
    let text = params.q.as_deref().unwrap_or_default().trim();
    if text.is_empty() {
        return Err(WebError::bad_request(Msg::ErrorEmptySearch));
    }
    if text.len() > TEXT_FILTER_MAX_BYTES {
        return Err(WebError::bad_request(Msg::ErrorSearchTooLong));
    }
    let tracker = &state.inner.tracker;
    // A case another office's account may not see is "not found", exactly like a missing one:
    // the page does not confirm that it exists.
    if let Ok(case_id) = CaseId::parse(&text.to_ascii_uppercase()) {
        return match tracker.case(&case_id.to_string()).await? {
            Some(case) if viewer.may_see(&case.origin_agency) => Ok(to_case(&case.case_id)),
            _ => Err(WebError::not_found(Msg::ErrorCaseNotFound)),
        };
    }
    if let Some(trace_id) = as_trace_id(text) {
        let case = match tracker.case_by_trace(&trace_id).await? {
            Some(case_id) => tracker.case(&case_id).await?,
            None => None,
        };
        return match case {
            Some(case) if viewer.may_see(&case.origin_agency) => Ok(to_case(&case.case_id)),
            _ => Err(WebError::not_found(Msg::ErrorNoMatch)),
        };
    }
    let filter = CaseFilter {
        origin_agency: viewer.office().cloned(),
        text: Some(text.to_lowercase()),
        ..CaseFilter::default()
    };
    let now = state.inner.tracker.now();
    let found = tracker.list_cases(&filter, SEARCH_RESULTS, now).await?;
    match found.as_slice() {
        [] => Err(WebError::not_found(Msg::ErrorNoMatch)),
        [only] => Ok(to_case(&only.case_id)),
        many => {
            let table = case_table(&state, lang, many, now).await?;
            let body = html! {
                h1 { (lang.t(Msg::CasesFound)) }
                (search_form(lang, text))
                (table)
            };
            Ok(Page(layout::page(
                &chrome(&state, lang, &viewer, &uri),
                lang.t(Msg::CasesFound),
                Section::Search,
                body,
            ))
            .into_response())
        }
    }
}

fn to_case(case_id: &str) -> Response {
    Redirect::to(&format!("/cases/{case_id}")).into_response()
}

// ---------------------------------------------------------------------------------------------
// The case page

/// Parses a case id from a URL; a malformed one is the clerk's typo, not a missing case.
pub(super) fn parse_case_id(path: Result<Path<String>, PathRejection>) -> Result<String, WebError> {
    let Path(text) = path.map_err(|_| WebError::bad_request(Msg::ErrorMalformedCaseId))?;
    CaseId::parse(&text.trim().to_ascii_uppercase())
        .map(|id| id.to_string())
        .map_err(|_| WebError::bad_request(Msg::ErrorMalformedCaseId))
}

/// The case, read consistently (row, tasks and events of one version); "not found" when the
/// tracker does not have it.
pub(super) async fn load_case(state: &WebState, case_id: &str) -> Result<CaseDetail, WebError> {
    state
        .inner
        .tracker
        .case_detail(case_id)
        .await?
        .ok_or(WebError::not_found(Msg::ErrorCaseNotFound))
}

/// `GET /cases/{case_id}`.
pub async fn case_page(
    State(state): State<WebState>,
    lang: Lang,
    viewer: Viewer,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Page, WebError> {
    let case_id = parse_case_id(path)?;
    let Some(data) = state.inner.tracker.case_detail(&case_id).await? else {
        return offices::not_yet_at_capital(&state, lang, &viewer, &uri, &case_id);
    };
    if !viewer.may_see(&data.case.origin_agency) {
        return Err(WebError::not_found(Msg::ErrorCaseNotFound));
    }
    let names = names(&state, lang);
    let service = names.service(&data.case.service);
    let live = case_live(&state, lang, &data, state.inner.tracker.now());
    let body = html! {
        h1 { (service) }
        div #case-live data-version=(data.case.version)
            data-stream={"/cases/" (case_id) "/live"} {
            (live)
        }
        p #live-status role="status" aria-live="polite"
            data-on=(lang.t(Msg::LiveOn)) data-lost=(lang.t(Msg::LiveLost))
            data-updated=(lang.t(Msg::LiveUpdated)) {}
    };
    Ok(Page(layout::page(
        &chrome(&state, lang, &viewer, &uri),
        &format!("{service} · {case_id}"),
        Section::None,
        body,
    )))
}

/// What the live stream replaces: header, who has it now, swimlanes, events.
pub(super) fn case_live(
    state: &WebState,
    lang: Lang,
    data: &CaseDetail,
    now: OffsetDateTime,
) -> Markup {
    let names = names(state, lang);
    let offset = offset(state);
    let calendar = &state.inner.tracker.registry().calendar;
    let case = &data.case;
    let known = data.events.iter().map(|e| e.event_id.to_string()).collect();
    let waiting = offices::waiting_on(&state.inner.tracker.offices(), &case.case_id, &known);
    html! {
        (case_header(lang, &names, case, offset))
        @if case.problem.is_some() {
            p.problem role="alert" { (lang.t(Msg::Problem)) }
        }
        (holders(lang, &names, &data.tasks, calendar, now, offset))
        section aria-labelledby="timeline-heading" {
            h2 #timeline-heading { (lang.t(Msg::WhoHeldIt)) }
            p.hint { (lang.t(Msg::TimelineHelp)) }
            (timeline::swimlanes(&names, case, &data.tasks, calendar, now))
        }
        (offices::waiting_section(lang, &names, &waiting, offset))
        (events_table(lang, &names, &data.events, offset))
        @if !data.quarantined.is_empty() {
            (quarantined_table(lang, &names, &data.quarantined, offset))
        }
    }
}

/// "Messages not accepted": what was published on the case's subjects and not believed. The
/// sender is the subject's (the broker lets an agency publish only as itself); the reason in
/// words may quote the message, so it is text like any other, isolated in `<bdi>`.
fn quarantined_table(
    lang: Lang,
    names: &Names,
    rejected: &[RejectedMessage],
    offset: UtcOffset,
) -> Markup {
    html! {
        section aria-labelledby="quarantined-title" {
            h2 #quarantined-title { (lang.t(Msg::NotAccepted)) }
            p.hint { (lang.t(Msg::NotAcceptedHelp)) }
            div.table-scroll {
                table #quarantined .events.stack {
                    thead {
                        tr {
                            th scope="col" { (lang.t(Msg::Sequence)) }
                            th scope="col" { (lang.t(Msg::Sender)) }
                            th scope="col" { (lang.t(Msg::Reason)) }
                            th scope="col" { (lang.t(Msg::When)) }
                        }
                    }
                    tbody {
                        @for message in rejected {
                            tr data-sequence=(message.stream_sequence) data-reason=[message.label.as_deref()] {
                                td data-label=(lang.t(Msg::Sequence)) { (message.stream_sequence) }
                                td data-label=(lang.t(Msg::Sender)) {
                                    bdi { (message.sender().map(|s| names.agency(s)).unwrap_or_default()) }
                                }
                                td.detail data-label=(lang.t(Msg::Reason)) {
                                    strong.reason { (reason_text(lang, message.label.as_deref())) }
                                    br;
                                    small { bdi { (message.reason) } }
                                }
                                td data-label=(lang.t(Msg::When)) { (when(message.recorded_at, offset)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn reason_text(lang: Lang, label: Option<&str>) -> &'static str {
    lang.t(match label {
        Some("undecodable") => Msg::ReasonUndecodable,
        Some("subject_mismatch") => Msg::ReasonSubjectMismatch,
        Some("bad_signature") => Msg::ReasonBadSignature,
        Some("broken_chain") => Msg::ReasonBrokenChain,
        Some("rules") => Msg::ReasonRules,
        _ => Msg::ReasonOther,
    })
}

fn case_header(lang: Lang, names: &Names, case: &CaseRecord, offset: UtcOffset) -> Markup {
    html! {
        dl.case-header {
            div.id { dt { (lang.t(Msg::CaseId)) } dd { code #case-id { (case.case_id) } } }
            div { dt { (lang.t(Msg::CitizenRef)) } dd #citizen-ref { bdi { (case.citizen_ref) } } }
            div { dt { (lang.t(Msg::Origin)) } dd { (names.agency(&case.origin_agency)) } }
            div { dt { (lang.t(Msg::Status)) } dd #case-status { (status_badge(lang, case.status)) } }
            div { dt { (lang.t(Msg::Opened)) } dd { (i18n::long_datetime(lang, case.opened_at, offset)) } }
            @if let Some(resolved) = case.resolved_at {
                div { dt { (lang.t(Msg::Resolved)) } dd { (i18n::long_datetime(lang, resolved, offset)) } }
            }
            div { dt { (lang.t(Msg::LastChange)) } dd { (i18n::long_datetime(lang, case.updated_at, offset)) } }
            div.id { dt { (lang.t(Msg::TraceId)) } dd { code #trace-id { (case.trace_id) } } }
            div.wide { dt { (lang.t(Msg::Summary)) } dd #summary { bdi { (case.summary) } } }
        }
    }
}

/// "Now with": who holds the case, since when, until when, and how late.
fn holders(
    lang: Lang,
    names: &Names,
    tasks: &[TaskRecord],
    calendar: &Calendar,
    now: OffsetDateTime,
    offset: UtcOffset,
) -> Markup {
    let open: Vec<&TaskRecord> = tasks.iter().filter(|t| t.is_open()).collect();
    html! {
        section aria-labelledby="now-title" {
            h2 #now-title { (lang.t(Msg::NowWith)) }
            @if open.is_empty() {
                p.empty { (lang.t(Msg::NobodyHoldsIt)) }
            } @else {
                ul.holders {
                    @for task in &open {
                        li.late[task.is_overdue(now)] {
                            strong { (names.agency(&task.agency)) }
                            " · " (lang.t(Msg::HandedOff)) " " (when(task.handed_off_at, offset))
                            " (" (i18n::duration(lang, task.held(now))) ")"
                            " · " (lang.t(Msg::Due)) " " (when(task.due_at, offset))
                            @if task.is_overdue(now) {
                                " · " span.late-text { (i18n::working_days_late(lang, calendar.working_days_late(task.due_at, now))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn events_table(lang: Lang, names: &Names, events: &[CaseEvent], offset: UtcOffset) -> Markup {
    html! {
        section aria-labelledby="events-title" {
            h2 #events-title { (lang.t(Msg::Events)) }
            div.table-scroll {
                table #events .events.stack {
                    thead {
                        tr {
                            th scope="col" { (lang.t(Msg::Number)) }
                            th scope="col" { (lang.t(Msg::When)) }
                            th scope="col" { (lang.t(Msg::FromTo)) }
                            th scope="col" { (lang.t(Msg::What)) }
                            th scope="col" { (lang.t(Msg::Detail)) }
                            th scope="col" { (lang.t(Msg::Officer)) }
                        }
                    }
                    tbody {
                        @for event in events {
                            tr data-version=(event.version) {
                                td data-label=(lang.t(Msg::Number)) { (event.version) }
                                td data-label=(lang.t(Msg::When)) { (when(event.occurred_at, offset)) }
                                td data-label=(lang.t(Msg::FromTo)) {
                                    (names.agency_on(event.from.as_str(), event.occurred_at))
                                    @if let Some(to) = &event.to {
                                        " → " (names.agency_on(to.as_str(), event.occurred_at))
                                    }
                                }
                                td.kind data-label=(lang.t(Msg::What)) { (event_kind(lang, &event.body)) }
                                td.detail data-label=(lang.t(Msg::Detail)) { (event_detail(lang, &event.body, offset)) }
                                td data-label=(lang.t(Msg::Officer)) { bdi { (event.actor) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn event_kind(lang: Lang, body: &EventBody) -> &'static str {
    lang.t(match body {
        EventBody::Opened { .. } => Msg::KindOpened,
        EventBody::HandedOff { .. } => Msg::KindHandedOff,
        EventBody::Accepted => Msg::KindAccepted,
        EventBody::Completed { .. } => Msg::KindCompleted,
        EventBody::SentBack { .. } => Msg::KindSentBack,
        EventBody::InfoRequested { .. } => Msg::KindInfoRequested,
        EventBody::Resolved { .. } => Msg::KindResolved,
        EventBody::TaskClosed { .. } => Msg::KindTaskClosed,
        EventBody::Transferred { .. } => Msg::KindTaskTransferred,
        EventBody::TakenBack { .. } => Msg::KindTaskTakenBack,
    })
}

/// The event's own words (typed by officers: escaped by maud like all text, and isolated in
/// `<bdi>` so a right-to-left override in them cannot reorder the text around them).
fn event_detail(lang: Lang, body: &EventBody, offset: time::UtcOffset) -> Markup {
    match body {
        EventBody::Opened { summary, .. } => html! { bdi { (summary) } },
        EventBody::HandedOff {
            instructions,
            due_at,
            ..
        } => html! {
            bdi { (instructions) }
            " " span.due { "(" (lang.t(Msg::Due)) " " (when(*due_at, offset)) ")" }
        },
        EventBody::Accepted => html! {},
        EventBody::Completed { outcome, note, .. } => html! {
            bdi { (outcome) } @if !note.is_empty() { " — " bdi { (note) } }
        },
        EventBody::SentBack { reason } | EventBody::TakenBack { reason } => {
            html! { bdi { (reason) } }
        }
        EventBody::InfoRequested { question } => html! { bdi { (question) } },
        EventBody::Resolved { resolution, note } | EventBody::TaskClosed { resolution, note } => {
            let (text, _) = status_text(lang, CaseStatus::Resolved(*resolution));
            html! { (text) @if !note.is_empty() { " — " bdi { (note) } } }
        }
        EventBody::Transferred {
            registry_version,
            reason,
            due_at,
        } => html! {
            (reason.as_str()) ", " bdi { (registry_version) }
            " " span.due { "(" (lang.t(Msg::Due)) " " (when(*due_at, offset)) ")" }
        },
    }
}

/// `GET /workload`: per agency, open tasks, overdue tasks, median time held per service; then
/// the district offices and their link to the capital.
pub async fn workload(
    State(state): State<WebState>,
    lang: Lang,
    viewer: Viewer,
    uri: Uri,
) -> Result<Page, WebError> {
    // Every agency's load across every office: a supervisor's view.
    supervisors_only(&viewer)?;
    let tracker = &state.inner.tracker;
    let now = tracker.now();
    let load = Workload {
        open: tracker.open_task_counts().await?,
        overdue: tracker.overdue_counts(now).await?,
        held: tracker.median_time_held().await?,
    };
    let names = names(&state, lang);
    let agencies = load.agencies(&names);
    let body = html! {
        h1 { (lang.t(Msg::WorkloadTitle)) }
        p.hint { (lang.t(Msg::WorkloadIntro)) }
        @if agencies.is_empty() {
            p.empty { (lang.t(Msg::NoCases)) }
        } @else {
            div.table-scroll { (workload_table(lang, &names, &load, &agencies)) }
        }
        (offices::section(lang, &names, &tracker.offices(), offset(&state)))
    };
    Ok(Page(layout::page(
        &chrome(&state, lang, &viewer, &uri),
        lang.t(Msg::WorkloadTitle),
        Section::Workload,
        body,
    )))
}

/// Open and overdue tasks per agency, median time held per agency and service.
struct Workload {
    open: BTreeMap<String, u64>,
    overdue: BTreeMap<String, u64>,
    held: Vec<HeldStat>,
}

impl Workload {
    /// Every agency with a number to show, most overdue first, then most open: who needs a
    /// call today.
    fn agencies(&self, names: &Names) -> Vec<String> {
        let mut agencies: Vec<String> = self
            .open
            .keys()
            .chain(self.overdue.keys())
            .chain(self.held.iter().map(|h| &h.agency))
            .cloned()
            .collect();
        agencies.sort();
        agencies.dedup();
        agencies.sort_by_key(|a| {
            (
                std::cmp::Reverse(self.overdue.get(a).copied().unwrap_or(0)),
                std::cmp::Reverse(self.open.get(a).copied().unwrap_or(0)),
                names.agency(a),
            )
        });
        agencies
    }
}

fn workload_table(lang: Lang, names: &Names, load: &Workload, agencies: &[String]) -> Markup {
    html! {
        table #workload .list.stack {
            thead {
                tr {
                    th scope="col" { (lang.t(Msg::Agency)) }
                    th scope="col" .num { (lang.t(Msg::OpenTasks)) }
                    th scope="col" .num { (lang.t(Msg::OverdueTasks)) }
                    th scope="col" { (lang.t(Msg::MedianHeld)) }
                }
            }
            tbody {
                @for agency in agencies {
                    @let late = load.overdue.get(agency).copied().unwrap_or(0);
                    tr data-agency=(agency) {
                        th scope="row" {
                            a href={"/overdue?agency=" (agency)} { (names.agency(agency)) }
                        }
                        td.num data-label=(lang.t(Msg::OpenTasks)) { (load.open.get(agency).copied().unwrap_or(0)) }
                        td.num.late-text[late > 0] data-label=(lang.t(Msg::OverdueTasks)) { (late) }
                        td data-label=(lang.t(Msg::MedianHeld)) {
                            @let stats: Vec<_> = load.held.iter().filter(|h| &h.agency == agency).collect();
                            @if stats.is_empty() {
                                span.sub { (lang.t(Msg::NoFinishedTasks)) }
                            } @else {
                                ul.medians {
                                    @for stat in stats {
                                        li {
                                            (names.service(&stat.service)) ": "
                                            strong { (i18n::duration(lang, stat.median)) }
                                            " (" (stat.tasks) " " (lang.t(Msg::FinishedTasks)) ")"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Language switch and fallback

#[derive(Debug, Deserialize)]
pub struct LangForm {
    lang: String,
    back: Option<String>,
}

/// Only a path on this site may be returned to: never another host (`//evil`, `/\evil`).
pub(super) fn safe_back(back: Option<&str>) -> &str {
    match back {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

/// `POST /lang`: remembers the choice in a cookie for a year and returns to the page.
/// `Lax`, not `Strict`: a link from another site should still open in the reader's language.
pub async fn set_lang(
    State(state): State<WebState>,
    form: Result<Form<LangForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(|_| WebError::bad_request(Msg::ErrorBadFilter))?;
    let lang = Lang::from_code(&form.lang).ok_or(WebError::bad_request(Msg::ErrorBadFilter))?;
    let secure = if state.inner.secure { "; Secure" } else { "" };
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{secure}",
        lang.code()
    );
    let mut response = Redirect::to(safe_back(form.back.as_deref())).into_response();
    let value = HeaderValue::from_str(&cookie).map_err(|e| WebError::Serve(e.to_string()))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

/// Anything no route matched.
pub async fn not_found() -> WebError {
    WebError::not_found(Msg::ErrorPageNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_returns_only_to_this_site() {
        assert_eq!(safe_back(Some("/cases/X?a=1")), "/cases/X?a=1");
        assert_eq!(safe_back(Some("//evil.example/")), "/");
        assert_eq!(safe_back(Some("/\\evil.example")), "/");
        assert_eq!(safe_back(Some("https://evil.example/")), "/");
        assert_eq!(safe_back(Some("/x\r\nSet-Cookie: a=b")), "/");
        assert_eq!(safe_back(None), "/");
    }

    #[test]
    fn trace_ids_are_32_hex_digits() {
        assert_eq!(
            as_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(as_trace_id("4bf92f3577b34da6a3ce929d0e0e473"), None);
        assert_eq!(as_trace_id("zbf92f3577b34da6a3ce929d0e0e4736"), None);
    }
}
