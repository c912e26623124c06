//! Realistic case histories, written by the case rules: each case follows its service's route
//! (the front office hands off to every step of a stage, each agency accepts and completes,
//! then the next stage; the origin resolves at the end). Times lie in the past, spread over
//! `HORIZON_DAYS`; a share of the cases stalls part-way, so their open tasks run past their
//! due times as real ones do, and some steps take long enough to finish late.

use onedoor_case::{
    Action, AgencyCode, CaseId, CaseState, Command, EventId, Registry, Resolution, ServiceCode,
    Stage, decide,
};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use time::{Duration, OffsetDateTime};

use crate::BenchError;

/// Cases are opened over this many days before now.
const HORIZON_DAYS: i64 = 120;
/// Share of cases whose history stops part-way (a task left open).
const STALL_SHARE: f64 = 0.3;
/// Share of steps that take days rather than hours.
const SLOW_STEP_SHARE: f64 = 0.15;

const SUMMARY_WORDS: [&str; 12] = [
    "warehouse",
    "restaurant",
    "garment factory",
    "guest house",
    "pharmacy",
    "rice mill",
    "coffee export",
    "motorbike",
    "family house",
    "office tower",
    "solar farm",
    "bakery",
];

const PROVINCES: [&str; 6] = ["VTE", "LPB", "SVK", "CPS", "XKH", "BKO"];

/// What the histories are made of: the registry's front offices and services.
pub struct Catalogue {
    registry: std::sync::Arc<Registry>,
    fronts: Vec<AgencyCode>,
    services: Vec<ServiceCode>,
}

/// One case's commands, in the order the agencies issue them.
pub struct Script {
    pub case_id: CaseId,
    pub commands: Vec<(EventId, Command)>,
}

impl Catalogue {
    pub fn new(registry: std::sync::Arc<Registry>) -> Result<Self, BenchError> {
        let fronts: Vec<AgencyCode> = registry
            .active_agencies()
            .filter(|a| a.kind == onedoor_case::AgencyKind::FrontOffice)
            .map(|a| a.code.clone())
            .collect();
        let services: Vec<ServiceCode> = registry
            .services
            .values()
            .filter(|s| !s.route.is_empty())
            .map(|s| s.code.clone())
            .collect();
        if fronts.is_empty() || services.is_empty() {
            return Err(BenchError::Unfit(
                "the registry needs an active front office and a service with a route".to_owned(),
            ));
        }
        Ok(Catalogue {
            registry,
            fronts,
            services,
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every agency that acts in some history (front offices and route agencies).
    pub fn agencies(&self) -> Vec<AgencyCode> {
        let mut codes = self.fronts.clone();
        codes.extend(self.route_agencies());
        codes.sort();
        codes.dedup();
        codes
    }

    pub fn services(&self) -> &[ServiceCode] {
        &self.services
    }

    /// The agencies that receive tasks.
    pub fn route_agencies(&self) -> Vec<AgencyCode> {
        let mut codes = Vec::new();
        for service in self.registry.services.values() {
            for step in service.route.iter().flat_map(|stage| &stage.steps) {
                codes.extend(step.agency.codes().iter().cloned());
            }
        }
        codes.sort();
        codes.dedup();
        codes
    }

    /// The commands of case number `index` (deterministic for a given `index` and `now`).
    pub fn script(&self, index: u64, now: OffsetDateTime) -> Result<Script, BenchError> {
        let mut rng = StdRng::seed_from_u64(index);
        let origin = self.fronts[rng.random_range(0..self.fronts.len())].clone();
        let service_code = &self.services[rng.random_range(0..self.services.len())];
        let service = self
            .registry
            .service(service_code)
            .ok_or_else(|| BenchError::Failed(format!("service {service_code} vanished")))?;
        let opened_at = now - Duration::seconds(rng.random_range(60..HORIZON_DAYS * 86_400));
        let case_id = CaseId::from_ulid(ulid::Ulid::from_parts(
            u64::try_from(opened_at.unix_timestamp() * 1000).unwrap_or(0),
            rng.random(),
        ));
        let province = PROVINCES[rng.random_range(0..PROVINCES.len())];
        let what = SUMMARY_WORDS[rng.random_range(0..SUMMARY_WORDS.len())];
        let mut writer = Writer {
            rng,
            at: opened_at,
            actor: format!("officer-{}", index % 97),
            commands: Vec::new(),
        };
        writer.push(
            &origin,
            Action::Open {
                service: service_code.clone(),
                citizen_ref: format!("LA-{province}-{index:08}"),
                summary: format!("{} for a {what} in {province}", service.name_en),
                documents: Vec::new(),
            },
        );
        for stage in &service.route {
            writer.stage(&origin, stage, what);
        }
        writer.wait();
        writer.push(
            &origin,
            Action::Resolve {
                resolution: Resolution::Approved,
                note: String::new(),
            },
        );
        Ok(Script {
            case_id,
            commands: writer.finish(now),
        })
    }

    /// The case's events and final state, by the case rules alone (no envelope or signature).
    pub fn fold(&self, script: &Script) -> Result<CaseState, BenchError> {
        let mut state: Option<CaseState> = None;
        for (event_id, command) in &script.commands {
            let event = decide(
                state.as_ref(),
                script.case_id,
                *event_id,
                command,
                &self.registry,
            )?;
            state = Some(CaseState::apply(state, &event)?);
        }
        state.ok_or_else(|| BenchError::Failed(format!("case {} has no events", script.case_id)))
    }
}

/// A history being written: its commands so far, the time of the last, and the case's own
/// random numbers (drawn in a fixed order, so a case index always gives the same history).
struct Writer {
    rng: StdRng,
    at: OffsetDateTime,
    actor: String,
    commands: Vec<(EventId, Command)>,
}

impl Writer {
    /// A command by `agency` at the current time.
    fn push(&mut self, agency: &AgencyCode, action: Action) {
        self.commands.push((
            EventId::generate(),
            Command {
                agency: agency.clone(),
                actor: self.actor.clone(),
                at: self.at,
                action,
            },
        ));
    }

    /// Time passes before the next command: hours for most steps, days for some.
    fn wait(&mut self) {
        self.at += if self.rng.random_bool(SLOW_STEP_SHARE) {
            Duration::seconds(self.rng.random_range(86_400..20 * 86_400))
        } else {
            Duration::seconds(self.rng.random_range(600..8 * 3600))
        };
    }

    /// One stage of the route: the origin hands off to an agency of each step, then each
    /// accepts, then each completes.
    fn stage(&mut self, origin: &AgencyCode, stage: &Stage, what: &str) {
        let agencies: Vec<AgencyCode> = stage
            .steps
            .iter()
            .map(|step| {
                let codes = step.agency.codes();
                codes[self.rng.random_range(0..codes.len())].clone()
            })
            .collect();
        for agency in &agencies {
            self.wait();
            self.push(
                origin,
                Action::HandOff {
                    to: agency.clone(),
                    instructions: format!("please review: {what}"),
                    documents: Vec::new(),
                    due_working_days: None,
                },
            );
        }
        for agency in &agencies {
            self.wait();
            self.push(agency, Action::Accept);
        }
        for agency in &agencies {
            self.wait();
            self.push(
                agency,
                Action::Complete {
                    outcome: "approved".into(),
                    note: String::new(),
                    documents: Vec::new(),
                },
            );
        }
    }

    /// The commands up to `now` (nothing happens in the future); a stalled case stops
    /// somewhere after its opening.
    fn finish(mut self, now: OffsetDateTime) -> Vec<(EventId, Command)> {
        let mut keep = self
            .commands
            .iter()
            .take_while(|(_, c)| c.at <= now)
            .count();
        if self.rng.random_bool(STALL_SHARE) && keep > 1 {
            keep = self.rng.random_range(1..keep);
        }
        self.commands.truncate(keep.max(1));
        self.commands
    }
}
