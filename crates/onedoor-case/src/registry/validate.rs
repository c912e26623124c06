//! Turns a raw registry file into a [`Registry`], collecting every problem at once so an
//! operator fixes a file in one pass rather than one error per run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use time::{Date, Month, UtcOffset, Weekday};

use base64::Engine as _;

use super::raw::{RawAgency, RawFormerName, RawKey, RawRegistry, RawService, RawStep, RawToken};
use super::{
    Agency, AgencyKey, AgencyKind, Calendar, Ending, FormerName, Holiday, Registry,
    RegistryVersion, Service, Stage, Step, StepAgency, TokenHash,
};
use crate::codes::{AgencyCode, ServiceCode};

/// Longest time limit a step may have; anything longer is almost certainly a typo
/// (calendar days typed as working days, or a missing decimal point).
pub const MAX_STEP_WORKING_DAYS: u32 = 120;

/// One thing wrong in a registry file: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The entry, e.g. `agency "MOIC"` or `service "construction-permit", stage 1, step 2`.
    pub entry: String,
    pub problem: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.entry, self.problem)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read registry file {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("registry file {file} is not valid TOML for a registry: {message}")]
    Syntax { file: String, message: String },
    #[error("registry file {file} has {} problem(s):\n{}", problems.len(), render(problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl RegistryError {
    /// The individual problems, for callers that print or count them.
    pub fn problems(&self) -> &[Problem] {
        match self {
            RegistryError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    fn add(&mut self, entry: impl Into<String>, problem: impl Into<String>) {
        self.0.push(Problem {
            entry: entry.into(),
            problem: problem.into(),
        });
    }
}

pub(super) fn validate(raw: RawRegistry, file: &str) -> Result<Registry, RegistryError> {
    let mut problems = Problems::default();

    let header = "[registry]";
    if raw.registry.name.trim().is_empty() {
        problems.add(header, "name is empty");
    }
    let effective_from = toml_date(&raw.registry.effective_from)
        .map_err(|why| problems.add(header, format!("effective_from: {why}")))
        .ok();
    let version = RegistryVersion::parse(&raw.registry.version)
        .map_err(|why| problems.add(header, why))
        .ok();
    if let (Some(version), Some(effective)) = (version, effective_from)
        && (i32::from(version.year()), version.month())
            > (effective.year(), effective.month() as u8)
    {
        problems.add(
            header,
            format!("version {version} is later than effective_from {effective}: a version names the month the shape was decided, which cannot follow the day it takes effect"),
        );
    }
    if raw.registry.default_step_working_days == 0
        || raw.registry.default_step_working_days > MAX_STEP_WORKING_DAYS
    {
        problems.add(
            header,
            format!(
                "default_step_working_days must be 1..={MAX_STEP_WORKING_DAYS}, found {}",
                raw.registry.default_step_working_days
            ),
        );
    }

    let calendar = calendar(&raw, &mut problems);
    let (agencies, mut seen_key_ids) = agencies(&raw.agencies, effective_from, &mut problems);
    let operator_keys = keys(
        "[operator]",
        &raw.operator.keys,
        &mut seen_key_ids,
        &mut problems,
    );
    let services = services(&raw.services, &agencies, &mut problems);

    match (problems.0.is_empty(), effective_from, version, calendar) {
        (true, Some(effective_from), Some(version), Some(calendar)) => Ok(Registry {
            name: raw.registry.name,
            version,
            effective_from,
            default_step_working_days: raw.registry.default_step_working_days,
            agencies,
            services,
            calendar,
            operator_keys,
        }),
        _ => Err(RegistryError::Invalid {
            file: file.to_owned(),
            problems: problems.0,
        }),
    }
}

fn toml_date(value: &toml::value::Datetime) -> Result<Date, String> {
    let (Some(d), None) = (value.date, value.time) else {
        return Err(format!("{value} is not a plain date like 2026-01-01"));
    };
    let month = Month::try_from(d.month).map_err(|_| format!("{value}: month out of range"))?;
    Date::from_calendar_date(i32::from(d.year), month, d.day).map_err(|e| format!("{value}: {e}"))
}

fn calendar(raw: &RawRegistry, problems: &mut Problems) -> Option<Calendar> {
    let entry = "[calendar]";
    let utc_offset = parse_offset(&raw.calendar.utc_offset)
        .map_err(|why| {
            problems.add(
                entry,
                format!("utc_offset {:?}: {why}", raw.calendar.utc_offset),
            )
        })
        .ok();

    let mut working_days = Vec::new();
    for name in &raw.calendar.working_days {
        match parse_weekday(name) {
            Some(day) if working_days.contains(&day) => {
                problems.add(entry, format!("working day {name:?} is listed twice"))
            }
            Some(day) => working_days.push(day),
            None => problems.add(
                entry,
                format!("working day {name:?} is not one of mon, tue, wed, thu, fri, sat, sun"),
            ),
        }
    }
    if raw.calendar.working_days.is_empty() {
        problems.add(entry, "working_days is empty: no task could ever fall due");
    }

    let mut holidays: Vec<Holiday> = Vec::new();
    for (index, holiday) in raw.calendar.holidays.iter().enumerate() {
        let entry = format!("[[calendar.holiday]] #{} ({})", index + 1, holiday.name_en);
        check_names(&entry, &holiday.name_en, &holiday.name_lo, problems);
        match toml_date(&holiday.date) {
            Ok(date) if holidays.iter().any(|h| h.date == date) => {
                problems.add(entry, format!("date {date} is listed twice"))
            }
            Ok(date) => holidays.push(Holiday {
                date,
                name_en: holiday.name_en.clone(),
                name_lo: holiday.name_lo.clone(),
            }),
            Err(why) => problems.add(entry, format!("date: {why}")),
        }
    }
    holidays.sort_by_key(|h| h.date);
    Some(Calendar {
        utc_offset: utc_offset?,
        working_days,
        holidays,
    })
}

fn parse_offset(text: &str) -> Result<UtcOffset, String> {
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(text, &format).map_err(|e| format!("expected a form like +07:00 ({e})"))
}

fn parse_weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// Lao names must really be in Lao script: an English name pasted into `name_lo` would show
/// to Lao-reading clerks as if it were the translation.
fn check_names(entry: &str, name_en: &str, name_lo: &str, problems: &mut Problems) {
    if name_en.trim().is_empty() {
        problems.add(entry, "name_en (English name) is missing");
    }
    if name_lo.trim().is_empty() {
        problems.add(entry, "name_lo (Lao name) is missing");
    } else if !name_lo.chars().any(is_lao) {
        problems.add(
            entry,
            format!("name_lo {name_lo:?} has no Lao script in it"),
        );
    }
}

fn is_lao(c: char) -> bool {
    ('\u{0E80}'..='\u{0EFF}').contains(&c)
}

fn agencies(
    raw: &[RawAgency],
    effective: Option<Date>,
    problems: &mut Problems,
) -> (BTreeMap<AgencyCode, Agency>, BTreeSet<String>) {
    let mut agencies = BTreeMap::new();
    let mut successions = Vec::new();
    let mut seen_key_ids = BTreeSet::new();
    for (index, agency) in raw.iter().enumerate() {
        let entry = format!("agency #{} {:?}", index + 1, agency.code);
        check_names(&entry, &agency.name_en, &agency.name_lo, problems);
        let kind = agency_kind(&entry, &agency.kind, problems);
        let code = match AgencyCode::parse(&agency.code) {
            Ok(code) => code,
            Err(why) => {
                problems.add(&entry, why.to_string());
                continue;
            }
        };
        if agencies.contains_key(&code) {
            problems.add(&entry, format!("duplicate agency code {code}"));
            continue;
        }
        let ending = ending(&entry, agency, problems);
        if let Some((ending, Some(target))) = &ending {
            successions.push(Succession {
                entry: entry.clone(),
                code: code.clone(),
                ending: *ending,
                target: target.clone(),
            });
        }
        let former_names = former_names(&entry, &agency.former_names, effective, problems);
        let keys = keys(&entry, &agency.keys, &mut seen_key_ids, problems);
        let tokens = tokens(&entry, &agency.tokens, problems);
        let Some(kind) = kind else { continue };
        agencies.insert(
            code.clone(),
            Agency {
                code,
                kind,
                name_en: agency.name_en.clone(),
                name_lo: agency.name_lo.clone(),
                province: agency.province.clone(),
                merged_into: None,
                ending: ending.map(|(ending, _)| ending),
                former_names,
                keys,
                tokens,
            },
        );
    }
    // Successors are checked once every agency is known: the successor may be listed later.
    resolve_successors(successions, &mut agencies, problems);
    if !agencies
        .values()
        .any(|a| a.kind == AgencyKind::FrontOffice && a.is_active())
    {
        problems.add(
            "agencies",
            "no active front office: nobody could open a case",
        );
    }
    (agencies, seen_key_ids)
}

/// An agency's `merged_into`, `renamed_to` or `retired`, of which it may give one.
fn ending(
    entry: &str,
    agency: &RawAgency,
    problems: &mut Problems,
) -> Option<(Ending, Option<String>)> {
    match (&agency.merged_into, &agency.renamed_to, agency.retired) {
        (None, None, false) => None,
        (Some(target), None, false) => Some((Ending::Merged, Some(target.clone()))),
        (None, Some(target), false) => Some((Ending::Renamed, Some(target.clone()))),
        (None, None, true) => Some((Ending::Retired, None)),
        _ => {
            problems.add(
                entry,
                "give at most one of merged_into, renamed_to and retired = true: an agency ends one way",
            );
            None
        }
    }
}

/// Former names, oldest first, each ended before the registry takes effect.
fn former_names(
    entry: &str,
    raw: &[RawFormerName],
    effective: Option<Date>,
    problems: &mut Problems,
) -> Vec<FormerName> {
    let mut names: Vec<FormerName> = Vec::new();
    for (index, former) in raw.iter().enumerate() {
        let entry = format!("{entry}, former name #{}", index + 1);
        check_names(&entry, &former.name_en, &former.name_lo, problems);
        let until = match toml_date(&former.until) {
            Ok(until) => until,
            Err(why) => {
                problems.add(&entry, format!("until: {why}"));
                continue;
            }
        };
        if let Some(previous) = names.last()
            && until <= previous.until
        {
            problems.add(
                &entry,
                format!(
                    "until {until} is not after the previous former name's {}; list former names oldest first",
                    previous.until
                ),
            );
            continue;
        }
        if let Some(effective) = effective
            && until >= effective
        {
            problems.add(
                &entry,
                format!("until {until} is not before effective_from {effective}: a name still in use is the current name_en/name_lo"),
            );
            continue;
        }
        names.push(FormerName {
            name_en: former.name_en.clone(),
            name_lo: former.name_lo.clone(),
            until,
        });
    }
    names
}

fn agency_kind(entry: &str, kind: &str, problems: &mut Problems) -> Option<AgencyKind> {
    match kind {
        "ministry" => Some(AgencyKind::Ministry),
        "ministerial-body" => Some(AgencyKind::MinisterialBody),
        "front-office" => Some(AgencyKind::FrontOffice),
        other => {
            problems.add(
                entry,
                format!("kind {other:?} is not one of ministry, ministerial-body, front-office"),
            );
            None
        }
    }
}

/// One `merged_into` or `renamed_to`, as written.
struct Succession {
    entry: String,
    code: AgencyCode,
    ending: Ending,
    target: String,
}

impl Succession {
    fn field(&self) -> &'static str {
        match self.ending {
            Ending::Renamed => "renamed_to",
            _ => "merged_into",
        }
    }
}

/// Records each successor on its agency, once it names a current agency other than itself; a
/// successor that has itself ended is refused (naming the cycle when the chain loops), so
/// [`Registry::successor_of`] is one step long.
fn resolve_successors(
    successions: Vec<Succession>,
    agencies: &mut BTreeMap<AgencyCode, Agency>,
    problems: &mut Problems,
) {
    let parsed: BTreeMap<AgencyCode, AgencyCode> = successions
        .iter()
        .filter_map(|s| Some((s.code.clone(), AgencyCode::parse(&s.target).ok()?)))
        .collect();
    let mut renamed_into: BTreeMap<AgencyCode, AgencyCode> = BTreeMap::new();
    for succession in &successions {
        let (entry, field) = (&succession.entry, succession.field());
        let target = match AgencyCode::parse(&succession.target) {
            Ok(target) => target,
            Err(why) => {
                problems.add(entry, format!("{field}: {why}"));
                continue;
            }
        };
        match agencies.get(&target).map(|a| a.ending) {
            _ if target == succession.code => {
                problems.add(entry, format!("{field} names the agency itself"))
            }
            None => problems.add(entry, format!("{field} names unknown agency {target}")),
            Some(Some(_)) => match cycle(&parsed, &succession.code) {
                Some(cycle) => problems.add(entry, format!("successors form a cycle: {cycle}")),
                None => problems.add(
                    entry,
                    format!("{field} names {target}, which has itself been merged, renamed or retired; name the final successor"),
                ),
            },
            Some(None) => {}
        }
        if succession.ending == Ending::Renamed
            && let Some(first) = renamed_into.insert(target.clone(), succession.code.clone())
        {
            problems.add(
                entry,
                format!("{first} is already renamed to {target}; a rename has one predecessor (use merged_into for the others)"),
            );
        }
        if let Some(agency) = agencies.get_mut(&succession.code) {
            agency.merged_into = Some(target);
        }
    }
}

/// `A → B → A` when following successors from `start` comes back to it.
fn cycle(successors: &BTreeMap<AgencyCode, AgencyCode>, start: &AgencyCode) -> Option<String> {
    let mut path = vec![start.as_str()];
    let mut current = start;
    while let Some(next) = successors.get(current) {
        path.push(next.as_str());
        if next == start {
            return Some(path.join(" → "));
        }
        if path.len() > successors.len() + 1 {
            return None;
        }
        current = next;
    }
    None
}

fn services(
    raw: &[RawService],
    agencies: &BTreeMap<AgencyCode, Agency>,
    problems: &mut Problems,
) -> BTreeMap<ServiceCode, Service> {
    let mut services = BTreeMap::new();
    for (index, service) in raw.iter().enumerate() {
        let entry = format!("service #{} {:?}", index + 1, service.code);
        check_names(&entry, &service.name_en, &service.name_lo, problems);
        let code = match ServiceCode::parse(&service.code) {
            Ok(code) => code,
            Err(why) => {
                problems.add(&entry, why.to_string());
                continue;
            }
        };
        if services.contains_key(&code) {
            problems.add(&entry, format!("duplicate service code {code}"));
            continue;
        }
        if service.stages.is_empty() {
            problems.add(
                &entry,
                "route is empty: add at least one [[service.stage]] with a [[service.stage.step]]",
            );
        }
        let mut route = Vec::new();
        let mut seen_in_route = BTreeSet::new();
        for (stage_index, stage) in service.stages.iter().enumerate() {
            let stage_entry = format!("{entry}, stage {}", stage_index + 1);
            if stage.steps.is_empty() {
                problems.add(&stage_entry, "stage has no steps");
            }
            let mut steps = Vec::new();
            for (step_index, step) in stage.steps.iter().enumerate() {
                let step_entry = format!("{stage_entry}, step {}", step_index + 1);
                if let Some(step) = self::step(step, &step_entry, agencies, problems) {
                    for agency in step.agency.codes() {
                        if !seen_in_route.insert(agency.clone()) {
                            problems.add(
                                &step_entry,
                                format!("agency {agency} appears twice in the route; a case holds one task per agency at a time"),
                            );
                        }
                    }
                    steps.push(step);
                }
            }
            route.push(Stage { steps });
        }
        services.insert(
            code.clone(),
            Service {
                code,
                name_en: service.name_en.clone(),
                name_lo: service.name_lo.clone(),
                route,
                strict_route: service.strict_route,
            },
        );
    }
    services
}

fn step(
    raw: &RawStep,
    entry: &str,
    agencies: &BTreeMap<AgencyCode, Agency>,
    problems: &mut Problems,
) -> Option<Step> {
    let before = problems.0.len();
    if raw.purpose_en.trim().is_empty() {
        problems.add(entry, "purpose_en is missing");
    }
    if raw.purpose_lo.trim().is_empty() {
        problems.add(entry, "purpose_lo (Lao purpose) is missing");
    }
    if raw.working_days == 0 || raw.working_days > MAX_STEP_WORKING_DAYS {
        problems.add(
            entry,
            format!(
                "working_days must be 1..={MAX_STEP_WORKING_DAYS}, found {}",
                raw.working_days
            ),
        );
    }
    let names: Vec<&String> = match (&raw.agency, &raw.any_of) {
        (Some(one), None) => vec![one],
        (None, Some(many)) if many.len() >= 2 => many.iter().collect(),
        (None, Some(_)) => {
            problems.add(
                entry,
                "any_of needs at least two agencies (use agency = \"…\" for one)",
            );
            return None;
        }
        (Some(_), Some(_)) => {
            problems.add(entry, "give either agency or any_of, not both");
            return None;
        }
        (None, None) => {
            problems.add(
                entry,
                "step names no agency: give agency = \"…\" or any_of = [\"…\", …]",
            );
            return None;
        }
    };
    let mut codes = Vec::new();
    for name in names {
        let code = match AgencyCode::parse(name) {
            Ok(code) => code,
            Err(why) => {
                problems.add(entry, why.to_string());
                continue;
            }
        };
        match agencies.get(&code) {
            None => problems.add(entry, format!("route goes through unknown agency {code}")),
            Some(a) if !a.is_active() => problems.add(entry, route_through_ended(a)),
            Some(a) if a.kind == AgencyKind::FrontOffice => {
                problems.add(entry, format!("route goes through front office {code}; routes name the agencies after the front office"))
            }
            Some(_) => codes.push(code),
        }
    }
    if problems.0.len() != before {
        return None;
    }
    let agency = if raw.agency.is_some() {
        StepAgency::Fixed(codes.remove(0))
    } else {
        StepAgency::AnyOf(codes)
    };
    Some(Step {
        agency,
        purpose_en: raw.purpose_en.clone(),
        purpose_lo: raw.purpose_lo.clone(),
        working_days: raw.working_days,
    })
}

/// Why a route may not go through `agency`, which has ended, and where to route instead.
fn route_through_ended(agency: &Agency) -> String {
    let code = &agency.code;
    match &agency.merged_into {
        Some(successor) => format!(
            "route goes through {code}, which was {} {successor}; route through the successor",
            if agency.ending == Some(Ending::Renamed) {
                "renamed to"
            } else {
                "merged into"
            }
        ),
        None => format!(
            "route goes through {code}, which was retired; route through an agency that does its work now"
        ),
    }
}

pub(super) fn keys(
    entry: &str,
    raw: &[RawKey],
    seen: &mut BTreeSet<String>,
    problems: &mut Problems,
) -> Vec<AgencyKey> {
    let mut keys = Vec::new();
    for key in raw {
        let entry = format!("{entry}, key {:?}", key.id);
        if key.id.trim().is_empty() || key.id.len() > crate::limits::KEY_ID_MAX_BYTES {
            problems.add(
                &entry,
                format!(
                    "key id must be 1 to {} bytes",
                    crate::limits::KEY_ID_MAX_BYTES
                ),
            );
            continue;
        }
        if !seen.insert(key.id.clone()) {
            problems.add(
                &entry,
                "key id is listed twice; key ids are unique across the registry",
            );
            continue;
        }
        let public_key =
            match base64::engine::general_purpose::STANDARD.decode(key.public_key.trim()) {
                Ok(bytes) => match <[u8; 32]>::try_from(bytes.as_slice()) {
                    Ok(array) => array,
                    Err(_) => {
                        problems.add(
                            &entry,
                            format!("public_key is {} bytes; an Ed25519 key is 32", bytes.len()),
                        );
                        continue;
                    }
                },
                Err(err) => {
                    problems.add(&entry, format!("public_key is not base64: {err}"));
                    continue;
                }
            };
        let valid_from = toml_date(&key.valid_from)
            .map_err(|why| problems.add(&entry, format!("valid_from: {why}")));
        let valid_until = key
            .valid_until
            .as_ref()
            .map(|d| {
                toml_date(d).map_err(|why| problems.add(&entry, format!("valid_until: {why}")))
            })
            .transpose();
        let (Ok(valid_from), Ok(valid_until)) = (valid_from, valid_until) else {
            continue;
        };
        if valid_until.is_some_and(|until| until < valid_from) {
            problems.add(&entry, "valid_until is before valid_from");
            continue;
        }
        keys.push(AgencyKey {
            id: key.id.clone(),
            public_key,
            valid_from,
            valid_until,
        });
    }
    keys
}

pub(super) fn tokens(entry: &str, raw: &[RawToken], problems: &mut Problems) -> Vec<TokenHash> {
    let mut tokens = Vec::new();
    for token in raw {
        let entry = format!("{entry}, token {:?}", token.label);
        let hex = token.sha256.trim();
        let valid = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            problems.add(&entry, "sha256 must be 64 lower-case hex characters (the SHA-256 of the token, never the token)");
            continue;
        }
        let mut sha256 = [0u8; 32];
        for (i, byte) in sha256.iter_mut().enumerate() {
            // Checked above: every pair is two hex digits.
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        tokens.push(TokenHash {
            label: token.label.clone(),
            sha256,
            revoked: token.revoked,
        });
    }
    tokens
}
