//! What the gRPC API and the tests read. Only the projected part of a case is ever shown: events
//! up to the case row's `version` (later stored events wait for a gap or failed to fold).

use onedoor_case::{AgencyCode, ServiceCode};
use onedoor_proto::v1;
use prost::Message as _;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AssertSqlSafe};
use time::OffsetDateTime;

use super::{Store, column, from_ns, to_i64, to_ns};
use crate::config::Backend;
use crate::error::TrackerError;
use crate::view::{
    CaseRecord, Projected, TaskRecord, sort_ended_tasks, sort_open_tasks, status_from_name,
    task_end_from_name, task_state_from_name,
};

const CASE_COLUMNS: &str = "c.case_id, c.service, c.origin_agency, c.status, c.resolution, \
     c.citizen_ref, c.summary, c.trace_id, c.opened_at_ns, c.resolved_at_ns, c.updated_at_ns, \
     c.version, c.problem";

pub(super) const TASK_COLUMNS: &str = "t.case_id, t.handoff_event_id, t.agency, t.handed_by, \
     t.service, t.state, t.instructions, t.open_question, t.handed_off_at_ns, t.accepted_at_ns, \
     t.due_at_ns, t.ended_at_ns, t.ended_by";

/// Below this many matches, the text filter reads its matches from the trigram index and
/// sorts them; at or above it, matches are dense enough to meet one page soon in listing order.
const RARE_TEXT_MATCHES: i64 = 2_000;

/// ListCases' filters, parsed. Every `Some`/non-empty filter must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    pub holding_agency: Option<AgencyCode>,
    /// Status names as stored (`in_progress`, …); empty matches every status.
    pub statuses: Vec<&'static str>,
    pub overdue_only: bool,
    pub origin_agency: Option<AgencyCode>,
    pub service: Option<ServiceCode>,
    /// Lower-cased already; matched as a substring of case id, citizen_ref, summary and the
    /// case's agency codes, and (with the store's registry) of its agencies' names.
    pub text: Option<String>,
    /// Only cases this agency is part of: it opened the case, or holds or held one of its
    /// tasks. Set from the caller, never from the request (agency confinement).
    pub part_of: Option<AgencyCode>,
}

/// Which index a listing is read from, in listing order.
#[derive(Clone, Copy)]
enum Walk<'a> {
    /// Every case (`cases` and its per-filter indexes).
    Cases,
    /// The cases `agency` has a task on (open ones only, or all), one row per case.
    Tasks {
        agency: &'a AgencyCode,
        open_only: bool,
    },
}

/// How a listing is held to `CaseFilter::part_of`.
#[derive(Clone, Copy)]
enum Member<'a> {
    Anyone,
    /// Cases the agency opened.
    Origin(&'a AgencyCode),
    /// Cases the agency opened or has a task on, tested per case.
    PartOf(&'a AgencyCode),
}

/// The condition that holds a listing to `member`.
fn member_condition(s: &mut Statement, member: Member<'_>) {
    match member {
        Member::Anyone => {}
        Member::Origin(agency) => {
            s.push(" AND c.origin_agency = ")
                .bind(Argument::Text(agency.to_string()));
        }
        Member::PartOf(agency) => {
            s.push(" AND (c.origin_agency = ")
                .bind(Argument::Text(agency.to_string()))
                .push(
                    " OR EXISTS (SELECT 1 FROM tasks p WHERE p.case_id = c.case_id AND p.agency = ",
                )
                .bind(Argument::Text(agency.to_string()))
                .push("))");
        }
    }
}

/// Where a page ends in the listing order (newest opened first, then case id descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub opened_at_ns: i64,
    pub case_id: String,
}

/// A statement with `$n` placeholders built up with its arguments, so dynamic filters never
/// splice caller text into SQL.
#[derive(Default)]
struct Statement {
    sql: String,
    arguments: Vec<Argument>,
}

/// A value bound to a `$n` placeholder of a statement built at run time.
pub(super) enum Argument {
    Text(String),
    Int(i64),
}

impl Statement {
    fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    fn bind(&mut self, argument: Argument) -> &mut Self {
        self.arguments.push(argument);
        self.sql.push_str(&format!("${}", self.arguments.len()));
        self
    }

    fn query(&self) -> sqlx::query::Query<'_, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.sql.clone()));
        for argument in &self.arguments {
            query = match argument {
                Argument::Text(text) => query.bind(text.clone()),
                Argument::Int(value) => query.bind(*value),
            };
        }
        query
    }
}

fn case_record(row: &AnyRow) -> Result<CaseRecord, TrackerError> {
    let status: String = column(row, "status")?;
    let resolution: Option<String> = column(row, "resolution")?;
    let version: i64 = column(row, "version")?;
    Ok(CaseRecord {
        case_id: column(row, "case_id")?,
        service: column(row, "service")?,
        origin_agency: column(row, "origin_agency")?,
        status: status_from_name(&status, resolution.as_deref())?,
        citizen_ref: column(row, "citizen_ref")?,
        summary: column(row, "summary")?,
        trace_id: column(row, "trace_id")?,
        opened_at: from_ns(column(row, "opened_at_ns")?)?,
        resolved_at: column::<Option<i64>>(row, "resolved_at_ns")?
            .map(from_ns)
            .transpose()?,
        updated_at: from_ns(column(row, "updated_at_ns")?)?,
        version: version.unsigned_abs(),
        problem: column(row, "problem")?,
    })
}

pub(super) fn task_record(row: &AnyRow) -> Result<TaskRecord, TrackerError> {
    let state: String = column(row, "state")?;
    let ended_at: Option<i64> = column(row, "ended_at_ns")?;
    let ended_by: Option<String> = column(row, "ended_by")?;
    let ended = match (ended_at, ended_by) {
        (Some(at), Some(end)) => Some((from_ns(at)?, task_end_from_name(&end)?)),
        (None, None) => None,
        _ => {
            return Err(TrackerError::Corrupt {
                what: "task".into(),
                why: "ended_at_ns and ended_by must be set together".into(),
            });
        }
    };
    Ok(TaskRecord {
        case_id: column(row, "case_id")?,
        handoff_event_id: column(row, "handoff_event_id")?,
        agency: column(row, "agency")?,
        handed_by: column(row, "handed_by")?,
        service: column(row, "service")?,
        state: task_state_from_name(&state)?,
        instructions: column(row, "instructions")?,
        open_question: column(row, "open_question")?,
        handed_off_at: from_ns(column(row, "handed_off_at_ns")?)?,
        accepted_at: column::<Option<i64>>(row, "accepted_at_ns")?
            .map(from_ns)
            .transpose()?,
        due_at: from_ns(column(row, "due_at_ns")?)?,
        ended,
    })
}

impl Store {
    pub async fn case(&self, case_id: &str) -> Result<Option<CaseRecord>, TrackerError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases c WHERE c.case_id = $1"
        )))
        .bind(case_id)
        .fetch_optional(self.pool())
        .await
        .map_err(TrackerError::db("reading a case"))?;
        row.as_ref().map(case_record).transpose()
    }

    /// The tasks of the given cases; open ones oldest hand-off first, then ended ones by end.
    pub async fn tasks_of(
        &self,
        case_ids: &[String],
        open_only: bool,
    ) -> Result<Vec<TaskRecord>, TrackerError> {
        if case_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut statement = Statement::default();
        statement.push(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.case_id IN ("
        ));
        for (i, id) in case_ids.iter().enumerate() {
            if i > 0 {
                statement.push(", ");
            }
            statement.bind(Argument::Text(id.clone()));
        }
        statement.push(")");
        if open_only {
            statement.push(" AND t.is_open = 1");
        }
        let rows = statement
            .query()
            .fetch_all(self.pool())
            .await
            .map_err(TrackerError::db("reading tasks"))?;
        let tasks: Vec<TaskRecord> = rows.iter().map(task_record).collect::<Result<_, _>>()?;
        let (mut open, mut ended): (Vec<_>, Vec<_>) = tasks.into_iter().partition(|t| t.is_open());
        sort_open_tasks(&mut open);
        sort_ended_tasks(&mut ended);
        open.extend(ended);
        Ok(open)
    }

    /// Everything stored for one case's view (its row and all its tasks), or `None`.
    pub async fn projected(&self, case_id: &str) -> Result<Option<Projected>, TrackerError> {
        let Some(case) = self.case(case_id).await? else {
            return Ok(None);
        };
        let tasks = self.tasks_of(&[case_id.to_owned()], false).await?;
        Ok(Some(Projected { case, tasks }))
    }

    /// The case's wire events with `after < case_version <= up_to`, oldest first, exactly as
    /// stored in the stream.
    pub async fn events(
        &self,
        case_id: &str,
        after: u64,
        up_to: u64,
    ) -> Result<Vec<v1::CaseEvent>, TrackerError> {
        let rows = sqlx::query(
            "SELECT version, payload FROM events WHERE case_id = $1 AND version > $2 \
             AND version <= $3 ORDER BY version",
        )
        .bind(case_id)
        .bind(to_i64(after, "after_version")?)
        .bind(to_i64(up_to, "case_version")?)
        .fetch_all(self.pool())
        .await
        .map_err(TrackerError::db("reading a case's events"))?;
        rows.iter()
            .map(|row| {
                let payload: Vec<u8> = column(row, "payload")?;
                v1::CaseEvent::decode(payload.as_slice()).map_err(|e| TrackerError::Corrupt {
                    what: format!("event of case {case_id}"),
                    why: e.to_string(),
                })
            })
            .collect()
    }

    /// One page of cases matching `filter`, in listing order, starting after `after`.
    pub async fn list_cases(
        &self,
        filter: &CaseFilter,
        after: Option<&Cursor>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<CaseRecord>, TrackerError> {
        let page = |walk, member| self.list_page(filter, walk, member, after, limit, now);
        match (&filter.holding_agency, &filter.part_of) {
            (Some(holder), member) => {
                let walk = Walk::Tasks {
                    agency: holder,
                    open_only: true,
                };
                page(walk, member.as_ref().map_or(Member::Anyone, Member::PartOf)).await
            }
            // Part of = opened it, or has a task on it: two listings, each read in order off
            // its own index. The union's first `limit` cases are among each one's first
            // `limit`, so merging two pages gives the page.
            (None, Some(member)) => {
                let mut cases = page(Walk::Cases, Member::Origin(member)).await?;
                let with_task = Walk::Tasks {
                    agency: member,
                    open_only: false,
                };
                cases.extend(page(with_task, Member::Anyone).await?);
                cases.sort_by(|a, b| (b.opened_at, &b.case_id).cmp(&(a.opened_at, &a.case_id)));
                cases.dedup_by(|a, b| a.case_id == b.case_id);
                cases.truncate(limit);
                Ok(cases)
            }
            (None, None) => page(Walk::Cases, Member::Anyone).await,
        }
    }

    async fn list_page(
        &self,
        filter: &CaseFilter,
        walk: Walk<'_>,
        member: Member<'_>,
        after: Option<&Cursor>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<CaseRecord>, TrackerError> {
        let mut s = Statement::default();
        // The alias the listing order (and so the cursor) is read from: the walked index's.
        let order = self.walk_from(&mut s, walk, filter, now);
        member_condition(&mut s, member);
        self.filter_conditions(&mut s, filter, now).await?;
        if let Some(cursor) = after {
            s.push(&format!(" AND ({order}.opened_at_ns < "))
                .bind(Argument::Int(cursor.opened_at_ns))
                .push(&format!(" OR ({order}.opened_at_ns = "))
                .bind(Argument::Int(cursor.opened_at_ns))
                .push(&format!(" AND {order}.case_id < "))
                .bind(Argument::Text(cursor.case_id.clone()))
                .push("))");
        }
        s.push(&format!(
            " ORDER BY {order}.opened_at_ns DESC, {order}.case_id DESC LIMIT "
        ))
        .bind(Argument::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        let rows = s
            .query()
            .fetch_all(self.pool())
            .await
            .map_err(TrackerError::db("listing cases"))?;
        rows.iter().map(case_record).collect()
    }

    /// The start of a listing: the rows it walks in order (all cases, or one agency's tasks
    /// joined to their cases). Returns the alias the listing order is read from.
    fn walk_from(
        &self,
        s: &mut Statement,
        walk: Walk<'_>,
        filter: &CaseFilter,
        now: OffsetDateTime,
    ) -> &'static str {
        let Walk::Tasks { agency, open_only } = walk else {
            s.push(&format!("SELECT {CASE_COLUMNS} FROM cases c WHERE 1 = 1"));
            return "c";
        };
        let open = if open_only { " AND t.is_open = 1" } else { "" };
        let open_d = if open_only { " AND d.is_open = 1" } else { "" };
        // Without statistics SQLite reads open tasks off the index of all tasks (same order),
        // testing each row: slow for an agency with few open tasks among many ended ones.
        // PostgreSQL has statistics and weighs the two.
        let index = match (open_only, self.backend()) {
            (true, Backend::Sqlite) => " INDEXED BY tasks_holding_due",
            _ => "",
        };
        s.push(&format!(
            "SELECT {CASE_COLUMNS} FROM tasks t{index} JOIN cases c \
             ON c.case_id = t.case_id WHERE t.agency = "
        ))
        .bind(Argument::Text(agency.to_string()))
        .push(open);
        if open_only && filter.overdue_only {
            // The case's earliest due time as copied onto its open tasks (migration 0004):
            // tested off the holder index, before the case's row or the check below are read,
            // so tasks on cases that are not overdue cost an index entry each. The case's own
            // next_due_ns is tested as well, by `filter_conditions`.
            s.push(" AND t.case_next_due_ns < ")
                .bind(Argument::Int(to_ns(now)));
        }
        // One row per case: the agency's first such task on it.
        s.push(&format!(
            " AND NOT EXISTS (SELECT 1 FROM tasks d WHERE d.case_id = t.case_id \
             AND d.agency = t.agency{open_d} AND d.handoff_event_id < t.handoff_event_id)"
        ));
        "t"
    }

    /// The conditions of a [`CaseFilter`] on the case row: status, overdue, origin, service,
    /// text.
    async fn filter_conditions(
        &self,
        s: &mut Statement,
        filter: &CaseFilter,
        now: OffsetDateTime,
    ) -> Result<(), TrackerError> {
        if !filter.statuses.is_empty() {
            s.push(" AND c.status IN (");
            for (i, status) in filter.statuses.iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.bind(Argument::Text((*status).to_owned()));
            }
            s.push(")");
        }
        if filter.overdue_only {
            s.push(" AND c.next_due_ns IS NOT NULL AND c.next_due_ns < ")
                .bind(Argument::Int(to_ns(now)));
        }
        if let Some(origin) = &filter.origin_agency {
            s.push(" AND c.origin_agency = ")
                .bind(Argument::Text(origin.to_string()));
        }
        if let Some(service) = &filter.service {
            s.push(" AND c.service = ")
                .bind(Argument::Text(service.to_string()));
        }
        if let Some(text) = &filter.text {
            let terms = self
                .names
                .as_ref()
                .map(|live| super::names::agency_terms(&live.current(), text))
                .unwrap_or_default();
            if !terms.is_empty() {
                s.push(" AND (c.search_text LIKE ")
                    .bind(Argument::Text(format!("%{}%", escape_like(text))))
                    .push(" ESCAPE '\\'");
                for term in terms {
                    s.push(" OR c.search_text LIKE ")
                        .bind(Argument::Text(format!("%{}%", escape_like(&term))))
                        .push(" ESCAPE '\\'");
                }
                s.push(")");
            } else if self.text_is_rare(text).await? {
                s.push(" AND c.case_id IN (SELECT case_id FROM cases_text WHERE search_text LIKE ")
                    .bind(Argument::Text(format!("%{text}%")))
                    .push(")");
            } else {
                s.push(" AND c.search_text LIKE ")
                    .bind(Argument::Text(format!("%{}%", escape_like(text))))
                    .push(" ESCAPE '\\'");
            }
        }
        Ok(())
    }

    /// Whether the text filter should be answered from SQLite's trigram index (`cases_text`):
    /// only there, only for text the index can match (three characters or more, no LIKE
    /// wildcards, which would need an ESCAPE clause the index does not take), and only when
    /// few cases match. Many matches are found faster by walking the listing order and
    /// testing each case, which stops after one page; the index would fetch and sort them all.
    async fn text_is_rare(&self, text: &str) -> Result<bool, TrackerError> {
        if self.backend() != Backend::Sqlite
            || text.chars().count() < 3
            || text.contains(['%', '_', '\\'])
        {
            return Ok(false);
        }
        let matches: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM cases_text WHERE search_text LIKE $1 LIMIT $2)",
        )
        .bind(format!("%{text}%"))
        .bind(RARE_TEXT_MATCHES)
        .fetch_one(self.pool())
        .await
        .map_err(TrackerError::db("counting text matches"))?;
        Ok(matches < RARE_TEXT_MATCHES)
    }

    /// Every stored case id, in no particular order (tests and tools).
    pub async fn case_ids(&self) -> Result<Vec<String>, TrackerError> {
        sqlx::query_scalar("SELECT case_id FROM cases ORDER BY case_id")
            .fetch_all(self.pool())
            .await
            .map_err(TrackerError::db("listing case ids"))
    }

    /// How many cases are stored (tools: e.g. whether a benchmark database is already filled).
    pub async fn case_count(&self) -> Result<u64, TrackerError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases")
            .fetch_one(self.pool())
            .await
            .map_err(TrackerError::db("counting cases"))?;
        Ok(count.unsigned_abs())
    }

    /// How many cases have an open task past its due time at `now` (ListCases' overdue filter).
    pub async fn overdue_case_count(&self, now: OffsetDateTime) -> Result<u64, TrackerError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE next_due_ns < $1")
            .bind(to_ns(now))
            .fetch_one(self.pool())
            .await
            .map_err(TrackerError::db("counting overdue cases"))?;
        Ok(count.unsigned_abs())
    }

    /// How many events are stored (each event id once, however often it was delivered).
    pub async fn event_count(&self) -> Result<u64, TrackerError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(self.pool())
            .await
            .map_err(TrackerError::db("counting events"))?;
        Ok(count.unsigned_abs())
    }

    /// The highest stream sequence stored or rejected: how far the projection has read.
    pub async fn last_stream_sequence(&self) -> Result<u64, TrackerError> {
        let events: Option<i64> = sqlx::query_scalar("SELECT MAX(stream_seq) FROM events")
            .fetch_one(self.pool())
            .await
            .map_err(TrackerError::db("reading the projection's position"))?;
        let rejected: Option<i64> =
            sqlx::query_scalar("SELECT MAX(stream_seq) FROM rejected_messages")
                .fetch_one(self.pool())
                .await
                .map_err(TrackerError::db("reading the projection's position"))?;
        Ok(events.max(rejected).unwrap_or(0).unsigned_abs())
    }
}

/// Escapes LIKE's wildcards so the caller's text matches literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
