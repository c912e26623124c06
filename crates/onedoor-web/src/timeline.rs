//! The case's swimlanes as inline SVG: one lane per agency, a bar for each stretch the agency
//! held the case, the part past the due time in red with the working days late, and the front
//! office's own lane showing when no agency held the case.
//!
//! Pure: rows in, markup out, with the moment of the question passed in (overdue grows with
//! time alone). The same held times are also written out as a table under the drawing, for
//! screen readers and narrow screens.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};
use onedoor_case::Calendar;
use onedoor_case::case::TaskEnd;
use time::{Duration, OffsetDateTime, Time};

use super::Names;
use super::i18n::{self, Lang, Msg};
use onedoor_tracker::view::{CaseRecord, TaskRecord};

/// Drawing units; the SVG scales to its box, which CSS keeps at least 720 px wide (narrower
/// screens scroll it sideways rather than shrinking the text).
const WIDTH: f64 = 1000.0;
const SIDE: f64 = 8.0;
const AXIS: f64 = 30.0;
const LANE: f64 = 58.0;
const BAR_TOP: f64 = 26.0;
const BAR_HEIGHT: f64 = 22.0;
/// Rough width of one character at the labels' size, to decide whether a label fits in a bar.
const CHAR_WIDTH: f64 = 7.2;

/// One stretch on a lane.
#[derive(Debug, Clone, PartialEq)]
struct Stretch {
    start: OffsetDateTime,
    end: OffsetDateTime,
    /// Where red begins (the due time), when the stretch ran past it.
    late_from: Option<OffsetDateTime>,
    working_days_late: u32,
    title: String,
    kind: StretchKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StretchKind {
    Task,
    AtFrontOffice,
}

struct Lane {
    agency: String,
    label: String,
    stretches: Vec<Stretch>,
}

/// Where the drawing's time axis starts and ends.
struct Span {
    start: OffsetDateTime,
    end: OffsetDateTime,
}

impl Span {
    fn x(&self, at: OffsetDateTime) -> f64 {
        let total = (self.end - self.start).as_seconds_f64().max(1.0);
        let offset = (at - self.start).as_seconds_f64().clamp(0.0, total);
        SIDE + offset / total * (WIDTH - 2.0 * SIDE)
    }
}

/// The end of a stretch that is still going: `now`, but never before it began (a clock set
/// behind the events, as in tests, must not draw negative bars).
fn open_end(start: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
    now.max(start)
}

fn lanes(
    names: &Names,
    case: &CaseRecord,
    tasks: &[TaskRecord],
    calendar: &Calendar,
    now: OffsetDateTime,
) -> Vec<Lane> {
    // Lanes in the order agencies first got the case; the front office first of all.
    let mut ordered: Vec<&TaskRecord> = tasks.iter().collect();
    ordered.sort_by(|a, b| {
        (a.handed_off_at, &a.handoff_event_id).cmp(&(b.handed_off_at, &b.handoff_event_id))
    });
    let mut lanes = vec![Lane {
        agency: case.origin_agency.clone(),
        label: names.agency_on(&case.origin_agency, case.opened_at),
        stretches: Vec::new(),
    }];
    for task in &ordered {
        let stretch = task_stretch(names.lang, task, calendar, now);
        match lanes.iter_mut().find(|lane| lane.agency == task.agency) {
            Some(lane) => lane.stretches.push(stretch),
            None => lanes.push(Lane {
                agency: task.agency.clone(),
                label: names.agency_on(&task.agency, task.handed_off_at),
                stretches: vec![stretch],
            }),
        }
    }
    lanes[0].stretches = front_office_stretches(names.lang, case, &ordered, calendar, now);
    lanes
}

/// When a task stopped holding the case; `now` while it still does.
fn task_end(task: &TaskRecord, now: OffsetDateTime) -> OffsetDateTime {
    task.ended
        .map_or_else(|| open_end(task.handed_off_at, now), |(at, _)| at)
}

/// A task's bar: from its hand-off to its end, red past its due time, titled with its dates.
fn task_stretch(
    lang: Lang,
    task: &TaskRecord,
    calendar: &Calendar,
    now: OffsetDateTime,
) -> Stretch {
    let offset = calendar.utc_offset;
    let end = task_end(task, now);
    let late_from = (end > task.due_at).then_some(task.due_at.max(task.handed_off_at));
    let working_days_late = if late_from.is_some() {
        calendar.working_days_late(task.due_at, end)
    } else {
        0
    };
    let ended = match task.ended {
        Some((at, how)) => format!(
            "{} {}",
            lang.t(match how {
                TaskEnd::Completed => Msg::EndCompleted,
                TaskEnd::SentBack => Msg::EndSentBack,
                TaskEnd::ClosedByResolution => Msg::EndClosedByResolution,
                TaskEnd::Transferred => Msg::EndTransferred,
                TaskEnd::TakenBack => Msg::EndTakenBack,
            }),
            i18n::short_datetime(at, offset)
        ),
        None => lang.t(Msg::StillHeld).to_owned(),
    };
    let mut title = format!(
        "{}: {} {} → {} ({}); {} {}",
        task.agency,
        lang.t(Msg::HandedOff),
        i18n::short_datetime(task.handed_off_at, offset),
        ended,
        i18n::duration(lang, end - task.handed_off_at),
        lang.t(Msg::Due),
        i18n::short_datetime(task.due_at, offset),
    );
    if late_from.is_some() {
        let _ = write!(
            title,
            "; {}",
            i18n::working_days_late(lang, working_days_late)
        );
    }
    Stretch {
        start: task.handed_off_at,
        end,
        late_from,
        working_days_late,
        title,
        kind: StretchKind::Task,
    }
}

/// The front office holds the case whenever no agency does: the gaps between the tasks
/// (`ordered` by hand-off), from opening to resolution or `now`.
fn front_office_stretches(
    lang: Lang,
    case: &CaseRecord,
    ordered: &[&TaskRecord],
    calendar: &Calendar,
    now: OffsetDateTime,
) -> Vec<Stretch> {
    let offset = calendar.utc_offset;
    let case_end = case
        .resolved_at
        .unwrap_or_else(|| open_end(case.opened_at, now));
    let mut busy: Vec<(OffsetDateTime, OffsetDateTime)> = ordered
        .iter()
        .map(|t| (t.handed_off_at, task_end(t, now)))
        .collect();
    busy.sort();
    let mut free_from = case.opened_at;
    let mut gaps = Vec::new();
    for (start, end) in busy {
        if start > free_from {
            gaps.push((free_from, start));
        }
        free_from = free_from.max(end);
    }
    if case_end > free_from {
        gaps.push((free_from, case_end));
    }
    gaps.into_iter()
        .map(|(start, end)| Stretch {
            start,
            end,
            late_from: None,
            working_days_late: 0,
            title: format!(
                "{}: {} → {} ({})",
                lang.t(Msg::LegendAtFrontOffice),
                i18n::short_datetime(start, offset),
                i18n::short_datetime(end, offset),
                i18n::duration(lang, end - start)
            ),
            kind: StretchKind::AtFrontOffice,
        })
        .collect()
}

/// Axis ticks: a step from the list that gives at most eight ticks, aligned to civil time.
fn ticks(span: &Span, calendar: &Calendar) -> Vec<(OffsetDateTime, String)> {
    let offset = calendar.utc_offset;
    let total = span.end - span.start;
    let steps = [
        Duration::hours(1),
        Duration::hours(3),
        Duration::hours(6),
        Duration::hours(12),
        Duration::days(1),
        Duration::days(2),
        Duration::days(7),
        Duration::days(14),
        Duration::days(30),
        Duration::days(91),
    ];
    let step = steps
        .into_iter()
        .find(|step| total / *step <= 8.0)
        .unwrap_or(Duration::days(365));
    let civil = span.start.to_offset(offset);
    // First tick: the civil midnight (day steps) or whole hour (hour steps) before the start.
    let mut at = if step >= Duration::days(1) {
        civil.replace_time(Time::MIDNIGHT)
    } else {
        civil.replace_time(Time::from_hms(civil.hour(), 0, 0).unwrap_or(Time::MIDNIGHT))
    };
    let mut ticks = Vec::new();
    while at <= span.end && ticks.len() < 20 {
        if at >= span.start {
            let label = if step >= Duration::days(1) {
                i18n::day_month(at, offset)
            } else {
                format!(
                    "{} {:02}:00",
                    i18n::day_month(at, offset),
                    at.to_offset(offset).hour()
                )
            };
            ticks.push((at, label));
        }
        at += step;
    }
    ticks
}

/// The swimlanes of one case at `now`, with the table of time held by agency under them.
pub fn swimlanes(
    names: &Names,
    case: &CaseRecord,
    tasks: &[TaskRecord],
    calendar: &Calendar,
    now: OffsetDateTime,
) -> Markup {
    let lang = names.lang;
    let lanes = lanes(names, case, tasks, calendar, now);
    let span = span_of(&lanes, case, now);
    let svg = draw(&lanes, case, &span, calendar, now, lang);
    let held_table = held_rows(&lanes);
    html! {
        div.timeline-scroll tabindex="0" role="group" aria-label=(lang.t(Msg::WhoHeldIt)) {
            (PreEscaped(svg))
        }
        ul.legend {
            li { span.swatch.held {} (lang.t(Msg::LegendHeld)) }
            li { span.swatch.office {} (lang.t(Msg::LegendAtFrontOffice)) }
            li { span.swatch.late {} (lang.t(Msg::LegendPastDue)) }
        }
        @if !held_table.is_empty() {
            table.held-table {
                caption { (lang.t(Msg::TimeHeldByAgency)) }
                thead { tr { th scope="col" { (lang.t(Msg::Agency)) } th scope="col" { (lang.t(Msg::TimeHeld)) } th scope="col" { (lang.t(Msg::Late)) } } }
                tbody {
                    @for (label, held, late, was_late) in &held_table {
                        tr {
                            th scope="row" { (label) }
                            td { (i18n::duration(lang, *held)) }
                            td { @if *was_late { span.late-text { (i18n::working_days_late(lang, *late)) } } @else { "—" } }
                        }
                    }
                }
            }
        }
    }
}

/// The time axis: from the opening to the latest stretch end (or `now` while the case is
/// open), at least an hour, with room on the right for the last label.
fn span_of(lanes: &[Lane], case: &CaseRecord, now: OffsetDateTime) -> Span {
    let latest = lanes
        .iter()
        .flat_map(|lane| lane.stretches.iter().map(|s| s.end))
        .chain([case.updated_at, case.resolved_at.unwrap_or(case.opened_at)])
        .max()
        .unwrap_or(case.opened_at);
    let mut end = latest.max(if case.resolved_at.is_some() {
        case.opened_at
    } else {
        now
    });
    if end - case.opened_at < Duration::hours(1) {
        end = case.opened_at + Duration::hours(1);
    }
    end += (end - case.opened_at) * 0.04;
    Span {
        start: case.opened_at,
        end,
    }
}

/// The SVG: lane backgrounds, the axis with its grid, each lane, and the "now" line.
fn draw(
    lanes: &[Lane],
    case: &CaseRecord,
    span: &Span,
    calendar: &Calendar,
    now: OffsetDateTime,
    lang: Lang,
) -> String {
    // Room under the last lane for the "now" label, clear of the axis labels.
    let height = AXIS + LANE * lanes.len() as f64 + 22.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="timeline" class="swimlanes" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="timeline-title timeline-desc" data-version="{}" data-lanes="{}" preserveAspectRatio="xMinYMin meet">"#,
        case.version,
        lanes.len()
    );
    let _ = write!(
        svg,
        r#"<title id="timeline-title">{}</title><desc id="timeline-desc">{}</desc>"#,
        esc(lang.t(Msg::WhoHeldIt)),
        esc(lang.t(Msg::TimelineHelp))
    );
    for (index, _) in lanes.iter().enumerate() {
        if index % 2 == 1 {
            let y = AXIS + LANE * index as f64;
            let _ = write!(
                svg,
                r#"<rect class="lane-bg" x="0" y="{y}" width="{WIDTH}" height="{LANE}"/>"#
            );
        }
    }
    draw_axis(&mut svg, span, calendar, height);
    for (index, lane) in lanes.iter().enumerate() {
        draw_lane(&mut svg, span, AXIS + LANE * index as f64, lane, lang);
    }
    if case.resolved_at.is_none() && now >= span.start && now <= span.end {
        let x = span.x(now);
        let _ = write!(
            svg,
            r#"<line class="now" x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}"/><text class="now-label" x="{x:.1}" y="{}" text-anchor="{}">{}</text>"#,
            AXIS - 4.0,
            height - 16.0,
            height - 4.0,
            if x > WIDTH / 2.0 { "end" } else { "start" },
            esc(lang.t(Msg::Now))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The ticks along the top, each with its grid line down the lanes.
fn draw_axis(svg: &mut String, span: &Span, calendar: &Calendar, height: f64) {
    for (at, label) in &ticks(span, calendar) {
        let x = span.x(*at);
        // Labels start at their line; the last ones end at it, so none runs off the right.
        let (label_x, anchor) = if x + label.chars().count() as f64 * CHAR_WIDTH > WIDTH - SIDE {
            (x - 3.0, "end")
        } else {
            (x + 3.0, "start")
        };
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}"/><text class="tick" x="{label_x:.1}" y="18" text-anchor="{anchor}">{}</text>"#,
            AXIS - 6.0,
            height - 18.0,
            esc(label)
        );
    }
}

/// One lane at height `y`: its label with the time its tasks held the case, and its bars.
fn draw_lane(svg: &mut String, span: &Span, y: f64, lane: &Lane, lang: Lang) {
    let held: Duration = lane
        .stretches
        .iter()
        .filter(|s| s.kind == StretchKind::Task)
        .map(|s| s.end - s.start)
        .sum();
    let _ = write!(
        svg,
        r#"<g class="lane" data-agency="{}"><text class="lane-label" x="{SIDE}" y="{:.1}">{}"#,
        esc(&lane.agency),
        y + 18.0,
        esc(&lane.label)
    );
    if held > Duration::ZERO {
        let _ = write!(
            svg,
            r#"<tspan class="lane-held"> · {}</tspan>"#,
            esc(&i18n::duration(lang, held))
        );
    }
    svg.push_str("</text>");
    for stretch in &lane.stretches {
        draw_stretch(svg, span, y + BAR_TOP, stretch, lang);
    }
    svg.push_str("</g>");
}

/// Per agency lane (the front office's left out): label, time held, most working days late,
/// and whether any of its stretches ran late.
fn held_rows(lanes: &[Lane]) -> Vec<(String, Duration, u32, bool)> {
    lanes
        .iter()
        .skip(1)
        .map(|lane| {
            let held = lane.stretches.iter().map(|s| s.end - s.start).sum();
            let late = lane
                .stretches
                .iter()
                .map(|s| s.working_days_late)
                .max()
                .unwrap_or(0);
            let was_late = lane.stretches.iter().any(|s| s.late_from.is_some());
            (lane.label.clone(), held, late, was_late)
        })
        .collect()
}

fn draw_stretch(svg: &mut String, span: &Span, y: f64, stretch: &Stretch, lang: Lang) {
    let x0 = span.x(stretch.start);
    // At least a sliver, so an instant stretch is still visible.
    let x1 = span.x(stretch.end).max(x0 + 2.0);
    let class = match stretch.kind {
        StretchKind::Task => "held",
        StretchKind::AtFrontOffice => "office",
    };
    let _ = write!(
        svg,
        r#"<g class="stretch"><title>{}</title>"#,
        esc(&stretch.title)
    );
    let red_from = stretch.late_from.map(|at| span.x(at).clamp(x0, x1));
    let on_time_end = red_from.unwrap_or(x1);
    if on_time_end > x0 {
        let _ = write!(
            svg,
            r#"<rect class="{class}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{BAR_HEIGHT}" rx="3"/>"#,
            on_time_end - x0
        );
    }
    if let Some(red) = red_from {
        let _ = write!(
            svg,
            r#"<rect class="late" x="{red:.1}" y="{y:.1}" width="{:.1}" height="{BAR_HEIGHT}" rx="3" data-working-days-late="{}"/>"#,
            (x1 - red).max(2.0),
            stretch.working_days_late
        );
    }
    // The time held, inside the bar when it fits; lateness after the bar (or inside the red
    // part when there is no room on the right).
    let held = i18n::duration(lang, stretch.end - stretch.start);
    let text_y = y + BAR_HEIGHT / 2.0 + 4.5;
    let held_width = held.chars().count() as f64 * CHAR_WIDTH + 8.0;
    let mut right = x1 + 5.0;
    if held_width <= on_time_end - x0 {
        let _ = write!(
            svg,
            r#"<text class="bar-label" x="{:.1}" y="{text_y:.1}">{}</text>"#,
            x0 + 4.0,
            esc(&held)
        );
    } else if stretch.late_from.is_none() {
        let _ = write!(
            svg,
            r#"<text class="bar-label-out" x="{right:.1}" y="{text_y:.1}">{}</text>"#,
            esc(&held)
        );
        right += held_width;
    }
    if stretch.late_from.is_some() {
        let late = i18n::working_days_late(lang, stretch.working_days_late);
        let late_width = late.chars().count() as f64 * CHAR_WIDTH;
        if right + late_width <= WIDTH - SIDE {
            let _ = write!(
                svg,
                r#"<text class="late-label" x="{right:.1}" y="{text_y:.1}">{}</text>"#,
                esc(&late)
            );
        } else {
            let _ = write!(
                svg,
                r#"<text class="late-label-in" x="{:.1}" y="{text_y:.1}" text-anchor="end">{}</text>"#,
                x1 - 4.0,
                esc(&late)
            );
        }
    }
    svg.push_str("</g>");
}

/// Escapes text for SVG markup (built as a string: maud's element syntax has no SVG
/// namespace handling worth the noise here).
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use onedoor_case::TaskState;
    use time::macros::datetime;

    use super::*;
    use onedoor_tracker::built_in_registry;

    fn case(opened: OffsetDateTime) -> CaseRecord {
        CaseRecord {
            case_id: "01JD8X3Q6V9K2M4N5P7R8S9T0V".into(),
            service: "construction-permit".into(),
            origin_agency: "ODSC-VTE-SAYSETTHA".into(),
            status: onedoor_case::CaseStatus::InProgress,
            citizen_ref: "R".into(),
            summary: "S".into(),
            trace_id: "0".repeat(32),
            opened_at: opened,
            resolved_at: None,
            updated_at: opened,
            version: 3,
            problem: None,
        }
    }

    fn task(agency: &str, handed: OffsetDateTime, due: OffsetDateTime) -> TaskRecord {
        TaskRecord {
            case_id: "01JD8X3Q6V9K2M4N5P7R8S9T0V".into(),
            handoff_event_id: format!("01JD8X3Q6V9K2M4N5P7R8S9T{agency}"),
            agency: agency.into(),
            handed_by: "ODSC-VTE-SAYSETTHA".into(),
            service: "construction-permit".into(),
            state: TaskState::Accepted,
            instructions: String::new(),
            open_question: None,
            handed_off_at: handed,
            accepted_at: None,
            due_at: due,
            ended: None,
        }
    }

    #[test]
    fn an_overdue_task_is_drawn_red_with_its_working_days_late() {
        let registry = std::sync::Arc::new(built_in_registry().expect("registry"));
        let names = Names {
            registry: registry.clone(),
            lang: Lang::En,
        };
        let opened = datetime!(2026-11-23 09:00 +07:00);
        let mut done = task(
            "MPWT",
            opened + Duration::hours(1),
            datetime!(2026-11-24 23:59:59 +07:00),
        );
        done.ended = Some((opened + Duration::hours(5), TaskEnd::Completed));
        let late = task(
            "MOF",
            opened + Duration::hours(6),
            datetime!(2026-11-24 23:59:59 +07:00),
        );
        let now = datetime!(2026-11-27 10:00 +07:00);
        let markup = swimlanes(
            &names,
            &case(opened),
            &[done, late],
            &registry.calendar,
            now,
        )
        .into_string();
        assert!(markup.contains(r#"data-agency="ODSC-VTE-SAYSETTHA""#));
        assert!(markup.contains(r#"data-agency="MPWT""#));
        assert!(markup.contains(r#"data-agency="MOF""#));
        // Due Tuesday night; Wednesday, Thursday, Friday are three working days late.
        assert!(markup.contains(r#"class="late""#));
        assert!(markup.contains(r#"data-working-days-late="3""#));
        assert!(markup.contains("3 working days late"));
        assert_eq!(
            markup.matches(r#"class="late""#).count(),
            1,
            "MPWT was on time"
        );
    }

    #[test]
    fn lane_text_is_escaped() {
        assert_eq!(
            esc(r#"<script>"x"&'"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }
}
