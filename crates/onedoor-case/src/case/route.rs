//! Route policy. A service's route is a list of stages run one after the other, the steps of
//! one stage in parallel. Where the registry marks the route strict, a hand-off must go to a
//! step of the first unfinished stage that is neither done nor under way; elsewhere the route
//! only gives time limits. Pure, so every writer applies the same policy.

use super::decide::Refusal;
use super::state::{CaseState, TaskEnd};
use crate::codes::{AgencyCode, ServiceCode};
use crate::ids::CaseId;
use crate::registry::Service;

/// A hand-off a strict route refuses, and what the route expects instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffRoute {
    pub case_id: CaseId,
    pub service: ServiceCode,
    pub agency: AgencyCode,
    /// Agencies the route expects next (any one of them); empty when none is free.
    pub expected: Vec<AgencyCode>,
    /// Agencies whose open tasks hold the current stage.
    pub waiting_on: Vec<AgencyCode>,
    /// The agency's step exists, in a later stage: the hand-off would run ahead.
    pub ahead: bool,
}

impl std::fmt::Display for OffRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&off_route_message(
            self.service.as_str(),
            self.agency.as_str(),
            &self.expected,
            &self.waiting_on,
            self.ahead,
        ))
    }
}

/// Where one step of the route stands on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mark {
    Todo,
    Open(AgencyCode),
    Done,
}

/// Marks every step: a completed task counts for the first step still to do that admits its
/// agency (in route order, oldest task first), then each open task likewise. A task sent back
/// counts for nothing: its step is to do again, perhaps by another agency of an `any_of`.
fn marks(case: &CaseState, service: &Service) -> Vec<Vec<Mark>> {
    let mut marks: Vec<Vec<Mark>> = service
        .route
        .iter()
        .map(|stage| vec![Mark::Todo; stage.steps.len()])
        .collect();
    let completed = case
        .past_tasks
        .iter()
        .filter(|p| p.end == TaskEnd::Completed)
        .map(|p| (&p.task.agency, Mark::Done));
    let open = case
        .tasks
        .keys()
        .map(|agency| (agency, Mark::Open(agency.clone())));
    for (agency, mark) in completed.chain(open) {
        let slot = service
            .route
            .iter()
            .zip(marks.iter_mut())
            .flat_map(|(stage, stage_marks)| stage.steps.iter().zip(stage_marks.iter_mut()))
            .find(|(step, m)| **m == Mark::Todo && step.agency.admits(agency));
        if let Some((_, m)) = slot {
            *m = mark;
        }
    }
    marks
}

/// May the case go to `to` next under `service`'s strict route? Call it only for a strict
/// route and for a hand-off that makes a new task (an answer to an info request is not a step).
pub fn check_strict_route(
    case: &CaseState,
    service: &Service,
    to: &AgencyCode,
) -> Result<(), Refusal> {
    let marks = marks(case, service);
    let refusal = |expected: Vec<AgencyCode>, waiting_on: Vec<AgencyCode>, ahead: bool| {
        Refusal::OffRoute(Box::new(OffRoute {
            case_id: case.case_id,
            service: service.code.clone(),
            agency: to.clone(),
            expected,
            waiting_on,
            ahead,
        }))
    };
    let Some(current) = marks
        .iter()
        .position(|stage| stage.iter().any(|m| *m != Mark::Done))
    else {
        return Err(refusal(Vec::new(), Vec::new(), false));
    };
    let stage = &service.route[current];
    let mut expected = Vec::new();
    let mut waiting_on = Vec::new();
    for (step, mark) in stage.steps.iter().zip(&marks[current]) {
        match mark {
            Mark::Todo if step.agency.admits(to) => return Ok(()),
            Mark::Todo => {
                for code in step.agency.codes() {
                    if !expected.contains(code) {
                        expected.push(code.clone());
                    }
                }
            }
            Mark::Open(agency) => waiting_on.push(agency.clone()),
            Mark::Done => {}
        }
    }
    let ahead = service.route[current + 1..]
        .iter()
        .flat_map(|stage| &stage.steps)
        .any(|step| step.agency.admits(to));
    Err(refusal(expected, waiting_on, ahead))
}

/// The refusal's message: what was refused, and whom to hand off to instead (or whom to wait
/// for), so the sender's developer can act on it.
fn off_route_message(
    service: &str,
    agency: &str,
    expected: &[AgencyCode],
    waiting_on: &[AgencyCode],
    ahead: bool,
) -> String {
    let join = |codes: &[AgencyCode], word: &str| {
        codes
            .iter()
            .map(AgencyCode::as_str)
            .collect::<Vec<_>>()
            .join(word)
    };
    let what = if ahead {
        format!(
            "service {service} has a strict route and {agency}'s step comes in a later stage than the current one"
        )
    } else {
        format!("service {service} has a strict route and {agency} is not its next step")
    };
    match (expected.is_empty(), waiting_on.is_empty()) {
        (true, true) => format!("{what}: the route is complete; resolve the case"),
        (false, true) => format!("{what}: hand off to {}", join(expected, " or ")),
        (true, false) => format!(
            "{what}: wait until {} completes the current stage",
            join(waiting_on, " and ")
        ),
        (false, false) => format!(
            "{what}: hand off to {} (the current stage is also with {})",
            join(expected, " or "),
            join(waiting_on, " and ")
        ),
    }
}
