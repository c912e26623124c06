//! What `onedoor registry apply` would change on a running bus, decided from the registry
//! diff and what the bus holds now (open tasks, inbox depths). No I/O here, so the decision
//! is tested apart from the gathering.

use std::collections::BTreeMap;

use onedoor_case::text::escape;
use onedoor_case::{AgencyChange, AgencyCode, Registry, RegistryDiff};
use onedoor_natsauth::{Identity, Permissions};

/// One task an agency holds now, as the tracker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTask {
    pub case_id: String,
    pub agency: AgencyCode,
    /// Who handed it over.
    pub from: String,
    /// When it was handed over (RFC 3339, UTC), or `unknown`.
    pub since: String,
    pub accepted: bool,
}

/// An agency's `inbox-<AGENCY>` consumer as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboxState {
    pub exists: bool,
    /// Events not yet delivered to the agency.
    pub undelivered: u64,
    /// Events delivered and not yet acknowledged.
    pub unacknowledged: u64,
}

/// What the running bus holds, for the agencies the change touches.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub tasks: BTreeMap<AgencyCode, Vec<OpenTask>>,
    pub inboxes: BTreeMap<AgencyCode, InboxState>,
    /// Events the tracker has not yet taken from the stream: its open-task list may miss the
    /// newest hand-offs while this is above zero.
    pub tracker_behind: u64,
}

/// The plan: lines to print, and the refusals that forbid applying it.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub lines: Vec<String>,
    /// Open tasks of an agency that ends with no successor: applying would orphan them.
    pub refusals: Vec<String>,
}

#[derive(Default)]
struct Counts {
    users_added: usize,
    users_revoked: usize,
    inboxes_created: usize,
    inboxes_drained: usize,
    tasks_moved: usize,
}

/// Decides every change the new registry asks of the bus, in the diff's stable order.
pub fn plan(diff: &RegistryDiff<'_>, live: &Live) -> Plan {
    let mut plan = Plan::default();
    let mut counts = Counts::default();
    let effective = diff.new.effective_from;
    plan.lines.push(format!(
        "plan: version {} to {}, effective {effective} (dry run: nothing is changed)",
        diff.old.version, diff.new.version
    ));
    if live.tracker_behind > 0 {
        plan.lines.push(format!(
            "warning: the tracker is {} events behind the stream; tasks handed over in those events are not listed",
            live.tracker_behind
        ));
    }
    for agency in added_agencies(diff) {
        add_agency(&mut plan, &mut counts, live, agency);
    }
    for change in diff.endings() {
        end_agency(&mut plan, &mut counts, live, diff, change);
    }
    plan.lines.push(format!(
        "summary: {} NATS users added, {} revoked; {} inboxes created, {} drained and deleted; {} open tasks to move; {} refused",
        counts.users_added,
        counts.users_revoked,
        counts.inboxes_created,
        counts.inboxes_drained,
        counts.tasks_moved,
        plan.refusals.len()
    ));
    plan
}

/// Agencies the running bus has no user and no inbox for yet: the additions, and the new
/// code of a rename.
fn added_agencies<'a>(diff: &RegistryDiff<'a>) -> Vec<&'a AgencyCode> {
    let mut codes: Vec<&AgencyCode> = diff
        .agencies
        .iter()
        .filter_map(|change| match change {
            AgencyChange::Added { agency } => Some(&agency.code),
            AgencyChange::Recoded { successor, .. } => Some(&successor.code),
            _ => None,
        })
        .filter(|code| diff.old.agency(code).is_none())
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

fn add_agency(plan: &mut Plan, counts: &mut Counts, live: &Live, code: &AgencyCode) {
    let identity = Identity::Agency(code.clone());
    let permissions = Permissions::for_identity(&identity).unwrap_or_default();
    plan.lines.push(format!(
        "nats user add: {code} (agency permissions: {} publish and {} subscribe subjects, its own events and inbox only)",
        permissions.publish_allow.len(),
        permissions.subscribe_allow.len()
    ));
    counts.users_added += 1;
    if live.inboxes.get(code).is_some_and(|inbox| inbox.exists) {
        plan.lines
            .push(format!("inbox exists: inbox-{code} (made earlier; kept)"));
    } else {
        plan.lines.push(format!("inbox create: inbox-{code}"));
        counts.inboxes_created += 1;
    }
}

fn end_agency(
    plan: &mut Plan,
    counts: &mut Counts,
    live: &Live,
    diff: &RegistryDiff<'_>,
    change: &AgencyChange<'_>,
) {
    let code = change.code();
    let effective = diff.new.effective_from;
    let tasks = live.tasks.get(code).map(Vec::as_slice).unwrap_or_default();
    match change.successor() {
        Some(successor) => {
            for task in tasks {
                plan.lines.push(format!(
                    "task move: case {} held by {code} ({}, since {}, from {}) to {} by a signed transfer event, due time unchanged",
                    task.case_id,
                    if task.accepted { "accepted" } else { "pending" },
                    task.since,
                    escape(&task.from),
                    successor.code
                ));
                counts.tasks_moved += 1;
            }
        }
        None if !tasks.is_empty() => {
            plan.refusals.push(format!(
                "refused: {code} ends with no successor but holds {} open task(s); name a successor (merged_into) or finish them first",
                tasks.len()
            ));
            for task in tasks {
                plan.refusals.push(format!(
                    "refused task: case {} held by {code} since {} (from {})",
                    task.case_id,
                    task.since,
                    escape(&task.from)
                ));
            }
        }
        None => {}
    }
    let inbox = live.inboxes.get(code).copied().unwrap_or_default();
    if inbox.exists {
        plan.lines.push(format!(
            "inbox drain: inbox-{code} ({} undelivered, {} unacknowledged), then delete it",
            inbox.undelivered, inbox.unacknowledged
        ));
        counts.inboxes_drained += 1;
    }
    plan.lines.push(format!(
        "nats user revoke: {code} from {effective}, once its open tasks have moved"
    ));
    counts.users_revoked += 1;
    credentials(plan, diff.old, diff.new, code, effective);
}

/// Bearer tokens to revoke and signing keys to close at the effective date; closed keys keep
/// verifying the history signed before it.
fn credentials(
    plan: &mut Plan,
    old: &Registry,
    new: &Registry,
    code: &AgencyCode,
    effective: time::Date,
) {
    let Some(agency) = new.agency(code).or_else(|| old.agency(code)) else {
        return;
    };
    plan.lines.push(format!(
        "credentials revoke: {code} bearer tokens and TLS client certificates from {effective}"
    ));
    for token in agency.tokens.iter().filter(|t| !t.revoked) {
        plan.lines.push(format!(
            "token revoke: {code} token {:?} (set revoked = true)",
            escape(&token.label)
        ));
    }
    let last_day = effective.previous_day().unwrap_or(effective);
    for key in &agency.keys {
        if key.valid_until.is_none_or(|until| until >= effective) {
            plan.lines.push(format!(
                "key close: {code} key {:?} valid_until = {last_day}; it still verifies what it signed before {effective}",
                escape(&key.id)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> Registry {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/registry")
            .join(name);
        Registry::load(&path).expect("shipped registry")
    }

    fn code(text: &str) -> AgencyCode {
        AgencyCode::parse(text).expect("valid")
    }

    fn task(case_id: &str, agency: &str) -> OpenTask {
        OpenTask {
            case_id: case_id.to_owned(),
            agency: code(agency),
            from: "ODSC-VTE-SAYSETTHA".to_owned(),
            since: "2025-04-28T03:00:00Z".to_owned(),
            accepted: false,
        }
    }

    /// The 2025 registry with SIA taken out of the file altogether, a version later.
    fn without_sia() -> Registry {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/registry/lao-2025.toml");
        let text = std::fs::read_to_string(path).expect("shipped");
        let start = text.find("[[agency]]\ncode = \"SIA\"").expect("SIA listed");
        let end = start + text[start..].find("\n\n").expect("entry ends") + 2;
        let text = format!("{}{}", &text[..start], &text[end..])
            .replacen("version = \"2025-03\"", "version = \"2025-06\"", 1)
            .replacen(
                "effective_from = 2025-05-01",
                "effective_from = 2025-07-01",
                1,
            );
        Registry::from_toml(&text, "without-sia.toml").expect("valid")
    }

    #[test]
    fn an_agency_dropped_from_the_file_with_open_tasks_is_refused_naming_them() {
        let (old, new) = (shipped("lao-2025.toml"), without_sia());
        let diff = RegistryDiff::between(&old, &new).expect("later");
        let mut live = Live::default();
        live.tasks
            .insert(code("SIA"), vec![task("01J0000000000000000000SIA1", "SIA")]);
        let plan = plan(&diff, &live);
        assert_eq!(
            plan.refusals,
            [
                "refused: SIA ends with no successor but holds 1 open task(s); name a successor (merged_into) or finish them first",
                "refused task: case 01J0000000000000000000SIA1 held by SIA since 2025-04-28T03:00:00Z (from ODSC-VTE-SAYSETTHA)",
            ]
        );
    }

    #[test]
    fn an_agency_dropped_with_no_open_task_is_only_revoked() {
        let (old, new) = (shipped("lao-2025.toml"), without_sia());
        let diff = RegistryDiff::between(&old, &new).expect("later");
        let plan = plan(&diff, &Live::default());
        assert!(plan.refusals.is_empty());
        assert!(plan.lines.contains(
            &"nats user revoke: SIA from 2025-07-01, once its open tasks have moved".to_owned()
        ));
    }

    #[test]
    fn a_lagging_tracker_is_named_before_the_plan() {
        let (old, new) = (shipped("lao-2021.toml"), shipped("lao-2025.toml"));
        let diff = RegistryDiff::between(&old, &new).expect("later");
        let live = Live {
            tracker_behind: 7,
            ..Live::default()
        };
        let plan = plan(&diff, &live);
        assert!(
            plan.lines[1].starts_with("warning: the tracker is 7 events behind the stream"),
            "{:?}",
            plan.lines
        );
    }

    #[test]
    fn an_inbox_already_made_is_kept_not_created_again() {
        let (old, new) = (shipped("lao-2021.toml"), shipped("lao-2025.toml"));
        let diff = RegistryDiff::between(&old, &new).expect("later");
        let mut live = Live::default();
        live.inboxes.insert(
            code("MAE"),
            InboxState {
                exists: true,
                ..InboxState::default()
            },
        );
        let plan = plan(&diff, &live);
        assert!(
            plan.lines
                .contains(&"inbox exists: inbox-MAE (made earlier; kept)".to_owned())
        );
        assert!(plan.lines.contains(&"inbox create: inbox-MCT".to_owned()));
    }
}
