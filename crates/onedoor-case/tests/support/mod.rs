//! A test world that speaks the domain: agencies act on one case through the real rules, and
//! accepted events are folded as the adapter would.

#![allow(dead_code)] // each test binary uses a different part of it

use std::path::PathBuf;

use onedoor_case::{
    Action, AgencyCode, CaseEvent, CaseId, CaseState, Command, EventId, Refusal, Registry,
    Resolution, ServiceCode, decide,
};
use time::OffsetDateTime;
use time::macros::datetime;

pub fn shipped_registry() -> Registry {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml");
    Registry::load(&path).expect("shipped registry is valid")
}

pub fn code(text: &str) -> AgencyCode {
    AgencyCode::parse(text).expect("test agency code is valid")
}

pub const FRONT: &str = "ODSC-VTE-SAYSETTHA";

pub struct World {
    pub registry: Registry,
    pub case_id: CaseId,
    pub events: Vec<CaseEvent>,
    pub state: Option<CaseState>,
    /// The adapter's clock; each accepted command moves it on by an hour.
    pub now: OffsetDateTime,
}

impl World {
    pub fn new() -> Self {
        Self::with_registry(shipped_registry())
    }

    pub fn with_registry(registry: Registry) -> Self {
        World {
            registry,
            case_id: CaseId::generate(),
            events: Vec::new(),
            state: None,
            // A Monday morning in Vientiane.
            now: datetime!(2026-11-23 09:00 +07:00),
        }
    }

    pub fn act(&mut self, agency: &str, action: Action) -> Result<CaseEvent, Refusal> {
        let command = Command {
            agency: code(agency),
            actor: format!("officer@{agency}"),
            at: self.now,
            action,
        };
        let event = decide(
            self.state.as_ref(),
            self.case_id,
            EventId::generate(),
            &command,
            &self.registry,
        )?;
        let next =
            CaseState::apply(self.state.take(), &event).expect("a decided event always folds");
        self.state = Some(next);
        self.events.push(event.clone());
        self.now += time::Duration::hours(1);
        Ok(event)
    }

    pub fn state(&self) -> &CaseState {
        self.state.as_ref().expect("case is open")
    }

    pub fn open(&mut self, service: &str) -> CaseEvent {
        let action = Action::Open {
            service: ServiceCode::parse(service).expect("valid service code"),
            citizen_ref: "LA-ID-0123456".into(),
            summary: "new trading company".into(),
            documents: vec![],
        };
        self.act(FRONT, action).expect("front office opens a case")
    }

    pub fn hand_off(&mut self, from: &str, to: &str) -> Result<CaseEvent, Refusal> {
        self.act(
            from,
            Action::HandOff {
                to: code(to),
                instructions: "please review".into(),
                documents: vec![],
                due_working_days: None,
            },
        )
    }

    pub fn accept(&mut self, agency: &str) -> Result<CaseEvent, Refusal> {
        self.act(agency, Action::Accept)
    }

    pub fn complete(&mut self, agency: &str) -> Result<CaseEvent, Refusal> {
        self.act(
            agency,
            Action::Complete {
                outcome: "done".into(),
                note: String::new(),
                documents: vec![],
            },
        )
    }

    pub fn send_back(&mut self, agency: &str) -> Result<CaseEvent, Refusal> {
        self.act(
            agency,
            Action::SendBack {
                reason: "wrong agency".into(),
            },
        )
    }

    pub fn request_info(&mut self, agency: &str) -> Result<CaseEvent, Refusal> {
        self.act(
            agency,
            Action::RequestInfo {
                question: "copy of the lease?".into(),
            },
        )
    }

    pub fn resolve(&mut self, agency: &str, resolution: Resolution) -> Result<CaseEvent, Refusal> {
        self.act(
            agency,
            Action::Resolve {
                resolution,
                note: String::new(),
            },
        )
    }
}
