//! Multi-row statements for a batch: each sqlx statement costs a hand-off to the driver's
//! worker (SQLite) or a round trip (PostgreSQL), far more than a row, so a batch's rows go in a
//! few statements instead of one or more per event.
//!
//! Statements are chunked to stay under the bound-parameter limits (32766 in SQLite, 65535 in
//! PostgreSQL). Rows are given as `$n` placeholders on PostgreSQL and as anonymous `?` ones on
//! SQLite (see [`Marks`]).

use std::collections::{HashMap, HashSet};

use onedoor_bus::StoredEvent;
use sqlx::{Any, AssertSqlSafe, Transaction};

use super::{column, to_i64, to_ns};
use crate::error::TrackerError;
use crate::view::{
    Projected, TaskRecord, search_text, status_name, task_end_name, task_state_name,
};

/// Bound parameters per statement at most, far under SQLite's limit (32766): a statement's
/// text and its prepared form grow with it, and the gain from fewer statements levels off
/// long before.
const MAX_PARAMS: usize = 2_000;

/// How a statement marks its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marks {
    /// `$1, $2, …`: PostgreSQL's only form.
    Numbered,
    /// `?, ?, …`, bound in order. On SQLite, sqlx asks the name of every parameter when
    /// binding, and SQLite finds a numbered one by walking the statement's list of names:
    /// binding cost grew with the square of the parameters (a quarter of the database
    /// thread's time in a rebuild). Anonymous parameters have no names to walk.
    Anonymous,
}

impl Marks {
    fn of(tx: &Transaction<'static, Any>) -> Marks {
        if tx.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME {
            Marks::Anonymous
        } else {
            Marks::Numbered
        }
    }
}

/// `(…), (…)` for `rows` rows of `width` placeholders each (numbered from `$1`).
fn placeholders(marks: Marks, rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..width {
            if col > 0 {
                sql.push_str(", ");
            }
            push_mark(&mut sql, marks, row * width + col + 1);
        }
        sql.push(')');
    }
    sql
}

const EVENT_WIDTH: usize = 9;

/// Stores the events whose id and case version are not stored yet; returns the ids stored.
/// An id met twice in `events` is offered once (its first occurrence), so the set tells which
/// message stored it.
///
/// Nothing is ever undone here (no savepoint rolled back): a rebuild writes SQLite with no
/// rollback journal, where undoing part of a transaction is not possible.
pub(super) async fn insert_events(
    tx: &mut Transaction<'static, Any>,
    events: &[&StoredEvent],
) -> Result<HashSet<String>, TrackerError> {
    let mut offered = HashSet::with_capacity(events.len());
    let mut rows = Vec::with_capacity(events.len());
    for stored in events {
        let event_id = stored.event.event_id.to_string();
        if offered.insert(event_id.clone()) {
            rows.push(EventRow::of(event_id, stored)?);
        }
    }
    let mut inserted = HashSet::with_capacity(rows.len());
    let marks = Marks::of(tx);
    for chunk in rows.chunks(MAX_PARAMS / EVENT_WIDTH) {
        let sql = format!(
            "{INSERT_EVENTS} VALUES {} ON CONFLICT DO NOTHING RETURNING event_id",
            placeholders(marks, chunk.len(), EVENT_WIDTH)
        );
        let returned = bind_events(sqlx::query(AssertSqlSafe(sql)), chunk)
            .fetch_all(&mut **tx)
            .await
            .map_err(TrackerError::db("storing events"))?;
        for row in &returned {
            inserted.insert(column::<String>(row, "event_id")?);
        }
    }
    Ok(inserted)
}

const INSERT_EVENTS: &str = "INSERT INTO events (event_id, case_id, version, stream_seq, \
     occurred_at_ns, kind, from_agency, to_agency, payload)";

/// An `events` row, its values converted before binding (the binds borrow them).
struct EventRow<'a> {
    event_id: String,
    case_id: String,
    version: i64,
    sequence: i64,
    occurred_at_ns: i64,
    stored: &'a StoredEvent,
}

impl<'a> EventRow<'a> {
    fn of(event_id: String, stored: &'a StoredEvent) -> Result<Self, TrackerError> {
        let event = &stored.event;
        Ok(EventRow {
            event_id,
            case_id: event.case_id.to_string(),
            version: to_i64(event.version, "case_version")?,
            sequence: to_i64(stored.sequence, "stream sequence")?,
            occurred_at_ns: to_ns(event.occurred_at),
            stored,
        })
    }
}

/// Binds a chunk's rows, borrowing their text and bytes (the driver copies each value once).
fn bind_events<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    chunk: &'q [EventRow<'_>],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for row in chunk {
        let event = &row.stored.event;
        query = query
            .bind(row.event_id.as_str())
            .bind(row.case_id.as_str())
            .bind(row.version)
            .bind(row.sequence)
            .bind(row.occurred_at_ns)
            .bind(event.body.kind())
            .bind(event.from.as_str())
            .bind(event.to.as_ref().map(|a| a.as_str()))
            .bind(&row.stored.payload[..]);
    }
    query
}

const CASE_WIDTH: usize = 10;

/// Moves case rows on to new views, each only where the row is still at the given version and
/// no later event of the case is stored; returns the case ids updated.
pub(super) async fn update_cases(
    tx: &mut Transaction<'static, Any>,
    updates: &[(&Projected, i64)],
) -> Result<HashSet<String>, TrackerError> {
    let mut updated = HashSet::with_capacity(updates.len());
    for chunk in updates.chunks(MAX_PARAMS / CASE_WIDTH) {
        // VALUES columns are named column1… on both SQLite and PostgreSQL.
        let sql = format!(
            "UPDATE cases SET status = v.column1, resolution = v.column2, \
             resolved_at_ns = v.column3, updated_at_ns = v.column4, version = v.column5, \
             open_tasks = v.column6, next_due_ns = v.column7, problem = NULL, \
             search_text = v.column10 \
             FROM (VALUES {}) AS v \
             WHERE cases.case_id = v.column8 AND cases.version = v.column9 AND NOT EXISTS \
             (SELECT 1 FROM events e WHERE e.case_id = v.column8 AND e.version > v.column5) \
             RETURNING case_id",
            placeholders(Marks::of(tx), chunk.len(), CASE_WIDTH)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (projected, base_version) in chunk {
            let case = &projected.case;
            query = query
                .bind(status_name(case.status))
                .bind(super::rows::resolution_name(case.status))
                .bind(case.resolved_at.map(to_ns))
                .bind(to_ns(case.updated_at))
                .bind(to_i64(case.version, "case_version")?)
                .bind(projected.open_tasks().count() as i64)
                .bind(projected.next_due().map(to_ns))
                .bind(case.case_id.clone())
                .bind(*base_version)
                .bind(search_text(projected));
        }
        let returned = query
            .fetch_all(&mut **tx)
            .await
            .map_err(TrackerError::db("writing case views"))?;
        for row in &returned {
            updated.insert(column::<String>(row, "case_id")?);
        }
    }
    Ok(updated)
}

const CASE_ROW_WIDTH: usize = 16;

/// Writes whole case rows. With `replace`, a stored row of the same case is overwritten;
/// without, it is kept. Returns the case ids written.
pub(super) async fn write_cases(
    tx: &mut Transaction<'static, Any>,
    views: &[&Projected],
    replace: bool,
) -> Result<HashSet<String>, TrackerError> {
    let on_conflict = if replace {
        "DO UPDATE SET service = excluded.service, \
         origin_agency = excluded.origin_agency, status = excluded.status, \
         resolution = excluded.resolution, citizen_ref = excluded.citizen_ref, \
         summary = excluded.summary, search_text = excluded.search_text, \
         trace_id = excluded.trace_id, opened_at_ns = excluded.opened_at_ns, \
         resolved_at_ns = excluded.resolved_at_ns, updated_at_ns = excluded.updated_at_ns, \
         version = excluded.version, open_tasks = excluded.open_tasks, \
         next_due_ns = excluded.next_due_ns, problem = excluded.problem"
    } else {
        "DO NOTHING"
    };
    let mut written = HashSet::with_capacity(views.len());
    for chunk in views.chunks(MAX_PARAMS / CASE_ROW_WIDTH) {
        let sql = format!(
            "INSERT INTO cases (case_id, service, origin_agency, status, resolution, \
             citizen_ref, summary, search_text, trace_id, opened_at_ns, resolved_at_ns, \
             updated_at_ns, version, open_tasks, next_due_ns, problem) VALUES {} \
             ON CONFLICT (case_id) {on_conflict} RETURNING case_id",
            placeholders(Marks::of(tx), chunk.len(), CASE_ROW_WIDTH)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for projected in chunk {
            let case = &projected.case;
            query = query
                .bind(case.case_id.clone())
                .bind(case.service.clone())
                .bind(case.origin_agency.clone())
                .bind(status_name(case.status))
                .bind(super::rows::resolution_name(case.status))
                .bind(case.citizen_ref.clone())
                .bind(case.summary.clone())
                .bind(search_text(projected))
                .bind(case.trace_id.clone())
                .bind(to_ns(case.opened_at))
                .bind(case.resolved_at.map(to_ns))
                .bind(to_ns(case.updated_at))
                .bind(to_i64(case.version, "case_version")?)
                .bind(projected.open_tasks().count() as i64)
                .bind(projected.next_due().map(to_ns))
                .bind(case.problem.clone());
        }
        let returned = query
            .fetch_all(&mut **tx)
            .await
            .map_err(TrackerError::db("writing case views"))?;
        for row in &returned {
            written.insert(column::<String>(row, "case_id")?);
        }
    }
    Ok(written)
}

/// Of the given (case, version) pairs, the cases with an event stored beyond that version.
pub(super) async fn cases_with_later_events(
    tx: &mut Transaction<'static, Any>,
    cases: &[(&Projected, i64)],
) -> Result<HashSet<String>, TrackerError> {
    let mut later = HashSet::new();
    for chunk in cases.chunks(MAX_PARAMS / 2) {
        let sql = format!(
            "SELECT DISTINCT e.case_id FROM events e JOIN (VALUES {}) AS v \
             ON e.case_id = v.column1 AND e.version > v.column2",
            placeholders(Marks::of(tx), chunk.len(), 2)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (projected, version) in chunk {
            query = query.bind(projected.case.case_id.clone()).bind(*version);
        }
        let returned = query
            .fetch_all(&mut **tx)
            .await
            .map_err(TrackerError::db("looking for later events"))?;
        for row in &returned {
            later.insert(column::<String>(row, "case_id")?);
        }
    }
    Ok(later)
}

const TASK_WIDTH: usize = 16;

/// A task to write, with its case's opened time and earliest due time (copied onto the task
/// for the agency listings' indexes).
pub(super) struct TaskRow<'a> {
    pub task: &'a TaskRecord,
    pub opened_at_ns: i64,
    pub case_next_due_ns: Option<i64>,
}

impl<'a> TaskRow<'a> {
    /// The rows of `projected`'s tasks that `keep` accepts.
    pub fn of(projected: &'a Projected, keep: impl Fn(&TaskRecord) -> bool) -> Vec<TaskRow<'a>> {
        let opened_at_ns = to_ns(projected.case.opened_at);
        let case_next_due_ns = projected.next_due().map(to_ns);
        projected
            .tasks
            .iter()
            .filter(|task| keep(task))
            .map(|task| TaskRow {
                task,
                opened_at_ns,
                case_next_due_ns,
            })
            .collect()
    }
}

/// Inserts tasks, or replaces the stored ones with the same ids. A task appears once at most.
pub(super) async fn upsert_tasks(
    tx: &mut Transaction<'static, Any>,
    tasks: &[TaskRow<'_>],
) -> Result<(), TrackerError> {
    for chunk in tasks.chunks(MAX_PARAMS / TASK_WIDTH) {
        let sql = format!(
            "INSERT INTO tasks (case_id, handoff_event_id, agency, handed_by, service, state, \
             instructions, open_question, handed_off_at_ns, accepted_at_ns, due_at_ns, \
             ended_at_ns, ended_by, is_open, opened_at_ns, case_next_due_ns) VALUES {} \
             ON CONFLICT (case_id, handoff_event_id) DO UPDATE SET agency = excluded.agency, \
             handed_by = excluded.handed_by, service = excluded.service, state = excluded.state, \
             instructions = excluded.instructions, open_question = excluded.open_question, \
             handed_off_at_ns = excluded.handed_off_at_ns, \
             accepted_at_ns = excluded.accepted_at_ns, due_at_ns = excluded.due_at_ns, \
             ended_at_ns = excluded.ended_at_ns, ended_by = excluded.ended_by, \
             is_open = excluded.is_open, opened_at_ns = excluded.opened_at_ns, \
             case_next_due_ns = excluded.case_next_due_ns",
            placeholders(Marks::of(tx), chunk.len(), TASK_WIDTH)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            let task = row.task;
            query = query
                .bind(task.case_id.clone())
                .bind(task.handoff_event_id.clone())
                .bind(task.agency.clone())
                .bind(task.handed_by.clone())
                .bind(task.service.clone())
                .bind(task_state_name(task.state))
                .bind(task.instructions.clone())
                .bind(task.open_question.clone())
                .bind(to_ns(task.handed_off_at))
                .bind(task.accepted_at.map(to_ns))
                .bind(to_ns(task.due_at))
                .bind(task.ended.map(|(at, _)| to_ns(at)))
                .bind(task.ended.map(|(_, end)| task_end_name(end).to_owned()))
                .bind(i64::from(task.is_open()))
                .bind(row.opened_at_ns)
                .bind(row.case_next_due_ns);
        }
        query
            .execute(&mut **tx)
            .await
            .map_err(TrackerError::db("writing tasks"))?;
    }
    Ok(())
}

/// `$1, $2, …` (or `?, ?, …`): a list of `count` parameters for `IN (…)`.
fn list(marks: Marks, count: usize) -> String {
    let mut sql = String::with_capacity(count * 4);
    for i in 0..count {
        if i > 0 {
            sql.push_str(", ");
        }
        push_mark(&mut sql, marks, i + 1);
    }
    sql
}

/// The `number`th parameter's mark (counting from 1).
fn push_mark(sql: &mut String, marks: Marks, number: usize) {
    match marks {
        Marks::Numbered => {
            sql.push('$');
            sql.push_str(&number.to_string());
        }
        Marks::Anonymous => sql.push('?'),
    }
}

/// The stored events of the given cases, each case's by version.
pub(super) async fn events_of_cases(
    tx: &mut Transaction<'static, Any>,
    case_ids: &[String],
) -> Result<Vec<sqlx::any::AnyRow>, TrackerError> {
    let mut rows = Vec::new();
    for chunk in case_ids.chunks(MAX_PARAMS) {
        let sql = format!(
            "SELECT case_id, version, stream_seq, payload FROM events WHERE case_id IN ({}) \
             ORDER BY case_id, version",
            list(Marks::of(tx), chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for case_id in chunk {
            query = query.bind(case_id.as_str());
        }
        rows.extend(
            query
                .fetch_all(&mut **tx)
                .await
                .map_err(TrackerError::db("reading cases' events"))?,
        );
    }
    Ok(rows)
}

/// The highest stream sequence recorded as rejected for each of the given cases that has one.
pub(super) async fn last_rejected_of_cases(
    tx: &mut Transaction<'static, Any>,
    case_ids: &[String],
) -> Result<HashMap<String, u64>, TrackerError> {
    let mut last = HashMap::new();
    for chunk in case_ids.chunks(MAX_PARAMS) {
        let sql = format!(
            "SELECT case_id, MAX(stream_seq) AS last_seq FROM rejected_messages \
             WHERE case_id IN ({}) GROUP BY case_id",
            list(Marks::of(tx), chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for case_id in chunk {
            query = query.bind(case_id.as_str());
        }
        let returned = query
            .fetch_all(&mut **tx)
            .await
            .map_err(TrackerError::db("reading cases' rejected messages"))?;
        for row in &returned {
            let sequence: i64 = column(row, "last_seq")?;
            last.insert(column::<String>(row, "case_id")?, sequence.unsigned_abs());
        }
    }
    Ok(last)
}
