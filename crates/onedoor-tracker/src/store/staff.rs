//! What front-office staff and operators ask beyond one case: which tasks an agency holds, what
//! is overdue (and by how many working days), and simple statistics.

use std::collections::BTreeMap;

use onedoor_case::{AgencyCode, Calendar, ServiceCode};
use time::{Date, Duration, OffsetDateTime, UtcOffset};

use super::read::{Argument, TASK_COLUMNS};
use super::{Store, column, to_ns};
use crate::config::Backend;
use crate::error::TrackerError;
use crate::view::TaskRecord;

/// An open task as staff see it at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub task: TaskRecord,
    pub citizen_ref: String,
    pub overdue: bool,
    /// Working days after the due day up to today, as staff count lateness (0 on the weekend
    /// after a Friday deadline, 1 on Monday, holidays skipped).
    pub working_days_late: u32,
}

/// Cases opened and resolved on one civil day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    pub date: Date,
    pub opened: u64,
    pub resolved: u64,
}

/// How long an agency holds tasks of one service, over tasks that have ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldStat {
    pub agency: String,
    pub service: String,
    pub tasks: u64,
    pub median: Duration,
}

/// Which overdue tasks a page of the overdue list holds. Every `Some` must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverdueFilter {
    /// The holding agency.
    pub agency: Option<AgencyCode>,
    pub service: Option<ServiceCode>,
    /// The case's front office (a front-office account sees its own cases only).
    pub origin: Option<AgencyCode>,
}

/// An order of the overdue list the database can give, so a page is read without loading the
/// whole list. Ties are broken by due time, then case id, then hand-off id, so every task has
/// one place and the pages never overlap; descending reverses all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverdueOrder {
    /// By due time. Earliest due first is also most working days late first (lateness only
    /// grows as the due time moves back).
    Due,
    /// By hand-off time (oldest first is also longest held first).
    HandedOff,
    /// By case id.
    Case,
}

const NS_PER_DAY: i64 = 86_400_000_000_000;

impl Store {
    /// Open tasks held by `agency`, earliest due first.
    pub async fn agency_tasks(
        &self,
        agency: &AgencyCode,
        calendar: &Calendar,
        now: OffsetDateTime,
    ) -> Result<Vec<TaskView>, TrackerError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS}, c.citizen_ref FROM tasks t JOIN cases c ON c.case_id = t.case_id \
             WHERE t.is_open = 1 AND t.agency = $1 ORDER BY t.due_at_ns, t.case_id"
        )))
        .bind(agency.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(TrackerError::db("reading an agency's tasks"))?;
        task_views(&rows, calendar, now)
    }

    /// Open tasks past their due time at `now`, most overdue first; one agency's or everyone's.
    pub async fn overdue_tasks(
        &self,
        agency: Option<&AgencyCode>,
        calendar: &Calendar,
        now: OffsetDateTime,
    ) -> Result<Vec<TaskView>, TrackerError> {
        let agency_clause = if agency.is_some() {
            " AND t.agency = $2"
        } else {
            ""
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS}, c.citizen_ref FROM tasks t JOIN cases c ON c.case_id = t.case_id \
             WHERE t.is_open = 1 AND t.due_at_ns < $1{agency_clause} ORDER BY t.due_at_ns, t.case_id"
        )))
        .bind(to_ns(now));
        if let Some(agency) = agency {
            query = query.bind(agency.as_str());
        }
        let rows = query
            .fetch_all(self.pool())
            .await
            .map_err(TrackerError::db("reading overdue tasks"))?;
        task_views(&rows, calendar, now)
    }

    /// How many open tasks are past their due time at `now` and match `filter`: the overdue
    /// list's length, for its pager.
    pub async fn overdue_count(
        &self,
        filter: &OverdueFilter,
        now: OffsetDateTime,
    ) -> Result<u64, TrackerError> {
        let (conditions, binds) = overdue_conditions(filter, now);
        // The case's row is only needed to test its front office.
        let join = if filter.origin.is_some() {
            " JOIN cases c ON c.case_id = t.case_id"
        } else {
            ""
        };
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM tasks t{join} WHERE {conditions}"
        )));
        for bind in binds {
            query = match bind {
                Argument::Int(value) => query.bind(value),
                Argument::Text(text) => query.bind(text),
            };
        }
        let count = query
            .fetch_one(self.pool())
            .await
            .map_err(TrackerError::db("counting overdue tasks"))?;
        Ok(count.unsigned_abs())
    }

    /// One page of the overdue list: the open tasks past their due time at `now` that match
    /// `filter`, in `order` (reversed when `descending`), `limit` of them after skipping
    /// `offset`. The database sorts and skips, so a page costs about a page of rows (plus the
    /// skipped ones' index entries) however long the list is.
    #[allow(clippy::too_many_arguments)]
    pub async fn overdue_page(
        &self,
        filter: &OverdueFilter,
        order: OverdueOrder,
        descending: bool,
        offset: u64,
        limit: u64,
        calendar: &Calendar,
        now: OffsetDateTime,
    ) -> Result<Vec<TaskView>, TrackerError> {
        let (conditions, mut binds) = overdue_conditions(filter, now);
        let keys: &[&str] = match order {
            OverdueOrder::Due => &["due_at_ns", "case_id", "handoff_event_id"],
            OverdueOrder::HandedOff => &[
                "handed_off_at_ns",
                "due_at_ns",
                "case_id",
                "handoff_event_id",
            ],
            OverdueOrder::Case => &["case_id", "due_at_ns", "handoff_event_id"],
        };
        // Descending is the exact reverse of ascending, so an index in the ascending order
        // serves both (read backwards).
        let dir = if descending { " DESC" } else { "" };
        let order_by = keys
            .iter()
            .map(|key| format!("t.{key}{dir}"))
            .collect::<Vec<_>>()
            .join(", ");
        let join = if filter.origin.is_some() {
            " JOIN cases c ON c.case_id = t.case_id"
        } else {
            ""
        };
        // Without statistics SQLite prefers tasks_open_agency (an equality on is_open) and
        // sorts every overdue task; the due order's own index reads one page. With an agency
        // filter tasks_open_agency is the better one (that agency's tasks, by due time).
        let index = match (order, &filter.agency, self.backend()) {
            (OverdueOrder::Due, None, Backend::Sqlite) => " INDEXED BY tasks_open_due_order",
            _ => "",
        };
        let limit_at = binds.len() + 1;
        binds.push(Argument::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        binds.push(Argument::Int(i64::try_from(offset).unwrap_or(i64::MAX)));
        // The page's task ids first, then their rows: the rows skipped by OFFSET are only read
        // as far as the index takes them (tasks_open_due_order holds the due order's ids), and
        // only a page of tasks is joined to its cases.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS}, c.citizen_ref FROM (SELECT t.case_id AS page_case, \
             t.handoff_event_id AS page_task FROM tasks t{index}{join} WHERE {conditions} \
             ORDER BY {order_by} LIMIT ${limit_at} OFFSET ${}) page \
             JOIN tasks t ON t.case_id = page.page_case AND t.handoff_event_id = page.page_task \
             JOIN cases c ON c.case_id = t.case_id ORDER BY {order_by}",
            limit_at + 1
        )));
        for bind in binds {
            query = match bind {
                Argument::Int(value) => query.bind(value),
                Argument::Text(text) => query.bind(text),
            };
        }
        let rows = query
            .fetch_all(self.pool())
            .await
            .map_err(TrackerError::db("reading a page of overdue tasks"))?;
        task_views(&rows, calendar, now)
    }

    /// Number of overdue open tasks per agency at `now` (agencies with none are left out).
    pub async fn overdue_counts(
        &self,
        now: OffsetDateTime,
    ) -> Result<BTreeMap<String, u64>, TrackerError> {
        let rows = sqlx::query(
            "SELECT agency, COUNT(*) AS overdue FROM tasks WHERE is_open = 1 AND due_at_ns < $1 \
             GROUP BY agency",
        )
        .bind(to_ns(now))
        .fetch_all(self.pool())
        .await
        .map_err(TrackerError::db("counting overdue tasks"))?;
        rows.iter()
            .map(|row| {
                Ok((
                    column::<String>(row, "agency")?,
                    column::<i64>(row, "overdue")?.unsigned_abs(),
                ))
            })
            .collect()
    }

    /// Cases opened and resolved per civil day (days counted in `offset`, e.g. UTC+07:00),
    /// oldest day first; days with neither are left out.
    pub async fn daily_counts(&self, offset: UtcOffset) -> Result<Vec<DayCount>, TrackerError> {
        // Integer division of shifted nanoseconds gives the civil day on both databases without
        // their (different) date functions.
        let shift = i64::from(offset.whole_seconds()) * 1_000_000_000;
        let mut days: BTreeMap<i64, DayCount> = BTreeMap::new();
        for (column_name, is_opened) in [("opened_at_ns", true), ("resolved_at_ns", false)] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT ({column_name} + $1) / {NS_PER_DAY} AS civil_day, COUNT(*) AS n FROM cases \
                 WHERE {column_name} IS NOT NULL GROUP BY civil_day"
            )))
            .bind(shift)
            .fetch_all(self.pool())
            .await
            .map_err(TrackerError::db("counting cases per day"))?;
            for row in &rows {
                let day: i64 = column(row, "civil_day")?;
                let n = column::<i64>(row, "n")?.unsigned_abs();
                let date = date_of_day(day)?;
                let entry = days.entry(day).or_insert(DayCount {
                    date,
                    opened: 0,
                    resolved: 0,
                });
                if is_opened {
                    entry.opened += n;
                } else {
                    entry.resolved += n;
                }
            }
        }
        Ok(days.into_values().collect())
    }

    /// Median time held per agency and service, over tasks that have ended (completed, sent
    /// back, or closed by the resolution). Computed here rather than in SQL because SQLite has
    /// no percentile function.
    pub async fn median_time_held(&self) -> Result<Vec<HeldStat>, TrackerError> {
        let rows = sqlx::query(
            "SELECT agency, service, ended_at_ns - handed_off_at_ns AS held FROM tasks \
             WHERE ended_at_ns IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await
        .map_err(TrackerError::db("reading time held"))?;
        let mut groups: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for row in &rows {
            groups
                .entry((column(row, "agency")?, column(row, "service")?))
                .or_default()
                .push(column(row, "held")?);
        }
        Ok(groups
            .into_iter()
            .map(|((agency, service), mut held)| {
                held.sort_unstable();
                let n = held.len();
                // The lower median for an even count: an observed value, not an average of two.
                let median = held[(n - 1) / 2];
                HeldStat {
                    agency,
                    service,
                    tasks: n as u64,
                    median: Duration::nanoseconds(median),
                }
            })
            .collect())
    }
}

fn date_of_day(day: i64) -> Result<Date, TrackerError> {
    let epoch = time::macros::date!(1970 - 01 - 01);
    i32::try_from(day)
        .ok()
        .and_then(|d| epoch.checked_add(Duration::days(i64::from(d))))
        .ok_or_else(|| TrackerError::Corrupt {
            what: "day number".into(),
            why: format!("{day} is out of range"),
        })
}

/// The overdue list's WHERE clause over `tasks t` (and `cases c` when the filter has an
/// origin), with its arguments in placeholder order.
fn overdue_conditions(filter: &OverdueFilter, now: OffsetDateTime) -> (String, Vec<Argument>) {
    let mut binds = vec![Argument::Int(to_ns(now))];
    let mut sql = String::from("t.is_open = 1 AND t.due_at_ns < $1");
    let mut push = |clause: &str, value: String| {
        binds.push(Argument::Text(value));
        sql.push_str(&format!(" AND {clause} = ${}", binds.len()));
    };
    if let Some(agency) = &filter.agency {
        push("t.agency", agency.to_string());
    }
    if let Some(service) = &filter.service {
        push("t.service", service.to_string());
    }
    if let Some(origin) = &filter.origin {
        push("c.origin_agency", origin.to_string());
    }
    (sql, binds)
}

fn task_views(
    rows: &[sqlx::any::AnyRow],
    calendar: &Calendar,
    now: OffsetDateTime,
) -> Result<Vec<TaskView>, TrackerError> {
    rows.iter()
        .map(|row| {
            let task = super::read::task_record(row)?;
            Ok(TaskView {
                overdue: task.is_overdue(now),
                working_days_late: calendar.working_days_late(task.due_at, now),
                citizen_ref: column(row, "citizen_ref")?,
                task,
            })
        })
        .collect()
}
