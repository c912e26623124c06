//! Lao and English: the message catalogue, the choice of language, and dates, durations and
//! lateness written the way staff read them.
//!
//! The catalogue is an enum of message ids ([`Msg`]) and one exhaustive `match` per language,
//! so a message missing in either language does not compile; the tests add what the compiler
//! cannot see (no empty text, Lao text in Lao script, `Msg::ALL` listing every id). Agency and
//! service names are not here: they come from the registry, which has both languages.
//!
//! Dates are civil time in the registry's offset (UTC+07:00), day first: `27/11/2026 14:05`,
//! and in long form `27 ພະຈິກ 2026, 14:05` in Lao. Years are CE: Lao government forms do not use
//! the Buddhist era.

use time::{Duration, OffsetDateTime, UtcOffset};

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Lo,
}

/// The cookie that remembers the language switch.
pub const LANG_COOKIE: &str = "onedoor_lang";

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Lo, Lang::En];

    /// BCP 47 tag, for `<html lang>` and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Lo => "lo",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "lo" => Some(Lang::Lo),
            _ => None,
        }
    }

    /// The language's own name, for the switch (always in that language, so a reader of it
    /// recognises it whatever the page shows).
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Lo => "ພາສາລາວ",
        }
    }

    pub fn t(self, msg: Msg) -> &'static str {
        match self {
            Lang::En => en(msg),
            Lang::Lo => lo(msg),
        }
    }
}

/// The language of a request: the switch's cookie when set, else the best of Lao and English
/// in `Accept-Language`, else Lao (the clerks' language; English readers' browsers say so).
pub fn negotiate(cookie_header: Option<&str>, accept_language: Option<&str>) -> Lang {
    if let Some(lang) = cookie_header
        .and_then(|header| cookie(header, LANG_COOKIE))
        .and_then(Lang::from_code)
    {
        return lang;
    }
    accept_language
        .and_then(from_accept_language)
        .unwrap_or(Lang::Lo)
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The preferred of Lao and English in an `Accept-Language` header (RFC 9110 §12.5.4): the
/// highest `q`, the earlier on a tie; `q=0` means "not this one".
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(u32, Lang)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let primary = tag.split('-').next().unwrap_or_default();
        let Some(lang) = Lang::from_code(&primary.to_ascii_lowercase()) else {
            continue;
        };
        let mut quality = 1000;
        for parameter in parts {
            if let Some(value) = parameter.trim().strip_prefix("q=") {
                quality = parse_quality(value).unwrap_or(0);
            }
        }
        if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// `q` in thousandths; `None` when it is not a valid weight.
fn parse_quality(value: &str) -> Option<u32> {
    let value = value.trim();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u32>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

const LAO_MONTHS: [&str; 12] = [
    "ມັງກອນ",
    "ກຸມພາ",
    "ມີນາ",
    "ເມສາ",
    "ພຶດສະພາ",
    "ມິຖຸນາ",
    "ກໍລະກົດ",
    "ສິງຫາ",
    "ກັນຍາ",
    "ຕຸລາ",
    "ພະຈິກ",
    "ທັນວາ",
];
const ENGLISH_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `27/11/2026 14:05` in civil time: the short form of tables, the same in both languages.
pub fn short_datetime(at: OffsetDateTime, offset: UtcOffset) -> String {
    let at = at.to_offset(offset);
    format!(
        "{:02}/{:02}/{} {:02}:{:02}",
        at.day(),
        u8::from(at.month()),
        at.year(),
        at.hour(),
        at.minute()
    )
}

/// `27/11` for the timeline's axis.
pub fn day_month(at: OffsetDateTime, offset: UtcOffset) -> String {
    let at = at.to_offset(offset);
    format!("{:02}/{:02}", at.day(), u8::from(at.month()))
}

/// `27 November 2026, 14:05` / `27 ພະຈິກ 2026, 14:05`: the case header's form.
pub fn long_datetime(lang: Lang, at: OffsetDateTime, offset: UtcOffset) -> String {
    let at = at.to_offset(offset);
    let month = usize::from(u8::from(at.month())) - 1;
    let name = match lang {
        Lang::En => ENGLISH_MONTHS[month],
        Lang::Lo => LAO_MONTHS[month],
    };
    format!(
        "{} {name} {}, {:02}:{:02}",
        at.day(),
        at.year(),
        at.hour(),
        at.minute()
    )
}

/// A time held, to the minute, largest two units: `3 d 4 h`, `2 h 5 min` / `3 ມື້ 4 ຊົ່ວໂມງ`.
pub fn duration(lang: Lang, held: Duration) -> String {
    let minutes = held.whole_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let (d, h, m) = match lang {
        Lang::En => ("d", "h", "min"),
        Lang::Lo => ("ມື້", "ຊົ່ວໂມງ", "ນາທີ"),
    };
    match (days, hours) {
        (0, 0) => format!("{mins} {m}"),
        (0, _) if mins == 0 => format!("{hours} {h}"),
        (0, _) => format!("{hours} {h} {mins} {m}"),
        (_, 0) => format!("{days} {d}"),
        _ => format!("{days} {d} {hours} {h}"),
    }
}

/// `2 working days late` / `ຊ້າ 2 ວັນລັດຖະການ`; for a task past its due time on its due day's
/// evening (0 working days yet) just "past due".
pub fn working_days_late(lang: Lang, days: u32) -> String {
    match (lang, days) {
        (_, 0) => lang.t(Msg::PastDue).to_owned(),
        (Lang::En, 1) => "1 working day late".to_owned(),
        (Lang::En, n) => format!("{n} working days late"),
        (Lang::Lo, n) => format!("ຊ້າ {n} ວັນລັດຖະການ"),
    }
}

/// Which rows of a paged list are shown: "Rows 101–200 of 1,234".
pub fn rows_shown(lang: Lang, first: usize, last: usize, total: usize) -> String {
    let (first, last, total) = (grouped(first), grouped(last), grouped(total));
    match lang {
        Lang::En => format!("Rows {first}–{last} of {total}"),
        Lang::Lo => format!("ແຖວທີ {first}–{last} ຈາກທັງໝົດ {total}"),
    }
}

/// A count with thousands separated by commas, as both languages write them on forms.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Declares [`Msg`] and `Msg::ALL` from one list, so no id can be missing from `ALL`.
macro_rules! messages {
    ($($name:ident),* $(,)?) => {
        /// Every message id of the web page.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Msg {
            $($name),*
        }

        impl Msg {
            /// Every id, in declaration order.
            pub const ALL: &[Msg] = &[$(Msg::$name),*];
        }
    };
}

messages! {
    AppTitle,
    SkipToContent,
    NavSearch,
    NavOverdue,
    NavStuck,
    NavWorkload,
    Language,
    SearchLabel,
    SearchHint,
    SearchButton,
    RecentCases,
    FrontOffice,
    AllFrontOffices,
    AllAgencies,
    AllServices,
    ShowButton,
    FilterButton,
    NoCases,
    CasesFound,
    CaseId,
    Service,
    CitizenRef,
    Origin,
    Status,
    Opened,
    Resolved,
    TraceId,
    Summary,
    LastChange,
    NowWith,
    NobodyHoldsIt,
    WhoHeldIt,
    TimelineHelp,
    LegendHeld,
    LegendAtFrontOffice,
    LegendPastDue,
    Now,
    TimeHeldByAgency,
    Events,
    Number,
    When,
    FromTo,
    What,
    Detail,
    Officer,
    Agency,
    HandedOff,
    Due,
    TimeHeld,
    Late,
    PastDue,
    OverdueTitle,
    OverdueIntro,
    NothingOverdue,
    StuckTitle,
    StuckIntro,
    NothingStuck,
    Pages,
    PreviousPage,
    NextPage,
    Recorded,
    Inbox,
    EventId,
    Attempts,
    Reason,
    UnreadableEntries,
    WorkloadTitle,
    WorkloadIntro,
    OpenTasks,
    OverdueTasks,
    MedianHeld,
    FinishedTasks,
    NoFinishedTasks,
    LiveOn,
    LiveLost,
    LiveUpdated,
    StatusAtFrontOffice,
    StatusInProgress,
    StatusAwaitingInfo,
    StatusApproved,
    StatusDenied,
    StatusWithdrawn,
    KindOpened,
    KindHandedOff,
    KindAccepted,
    KindCompleted,
    KindSentBack,
    KindInfoRequested,
    KindResolved,
    EndCompleted,
    EndSentBack,
    EndClosedByResolution,
    StillHeld,
    Problem,
    ErrorNotFoundTitle,
    ErrorBadRequestTitle,
    ErrorUnavailableTitle,
    ErrorInternalTitle,
    ErrorCaseNotFound,
    ErrorNoMatch,
    ErrorPageNotFound,
    ErrorMalformedCaseId,
    ErrorEmptySearch,
    ErrorSearchTooLong,
    ErrorBadFilter,
    ErrorUnavailable,
    ErrorInternal,
    BackToSearch,
    LoginTitle,
    LoginIntro,
    LoginFailed,
    UserName,
    Password,
    SignIn,
    SignOut,
    RoleSupervisor,
    ErrorForbiddenTitle,
    ErrorSupervisorsOnly,
    ErrorSignInAgain,
    ErrorTooManyTitle,
    ErrorTooManySignIns,
    ErrorFormExpired,
}

fn en(msg: Msg) -> &'static str {
    match msg {
        Msg::AppTitle => "One-Door Service Center: case tracker",
        Msg::SkipToContent => "Skip to content",
        Msg::NavSearch => "Find a case",
        Msg::NavOverdue => "Overdue",
        Msg::NavStuck => "Stuck deliveries",
        Msg::NavWorkload => "Workload",
        Msg::Language => "Language",
        Msg::SearchLabel => "Case ID, citizen reference or trace ID",
        Msg::SearchHint => "The case ID is on the citizen's receipt (26 letters and digits).",
        Msg::SearchButton => "Search",
        Msg::RecentCases => "Recent cases",
        Msg::FrontOffice => "Front office",
        Msg::AllFrontOffices => "All front offices",
        Msg::AllAgencies => "All agencies",
        Msg::AllServices => "All services",
        Msg::ShowButton => "Show",
        Msg::FilterButton => "Filter",
        Msg::NoCases => "No cases yet.",
        Msg::CasesFound => "Cases found",
        Msg::CaseId => "Case ID",
        Msg::Service => "Service",
        Msg::CitizenRef => "Citizen reference",
        Msg::Origin => "Front office",
        Msg::Status => "Status",
        Msg::Opened => "Opened",
        Msg::Resolved => "Resolved",
        Msg::TraceId => "Trace ID",
        Msg::Summary => "Summary",
        Msg::LastChange => "Last change",
        Msg::NowWith => "Now with",
        Msg::NobodyHoldsIt => "No agency holds the case now.",
        Msg::WhoHeldIt => "Who held the case",
        Msg::TimelineHelp => {
            "One lane per agency. Bars show when the agency held the case; red shows time past \
             the due date."
        }
        Msg::LegendHeld => "Held by the agency",
        Msg::LegendAtFrontOffice => "At the front office",
        Msg::LegendPastDue => "Past the due date",
        Msg::Now => "now",
        Msg::TimeHeldByAgency => "Time held by each agency",
        Msg::Events => "Events",
        Msg::Number => "No.",
        Msg::When => "When",
        Msg::FromTo => "From → to",
        Msg::What => "What",
        Msg::Detail => "Detail",
        Msg::Officer => "Officer",
        Msg::Agency => "Agency",
        Msg::HandedOff => "Handed over",
        Msg::Due => "Due",
        Msg::TimeHeld => "Time held",
        Msg::Late => "Late",
        Msg::PastDue => "past due",
        Msg::OverdueTitle => "Overdue tasks",
        Msg::OverdueIntro => {
            "Open tasks past their due date, counted in working days (weekends and public \
             holidays do not count)."
        }
        Msg::NothingOverdue => "Nothing is overdue.",
        Msg::StuckTitle => "Stuck deliveries",
        Msg::StuckIntro => {
            "Events an agency's system did not take in after every delivery attempt. The \
             agency's IT team must look at them."
        }
        Msg::NothingStuck => "No stuck deliveries.",
        Msg::Pages => "Pages",
        Msg::PreviousPage => "Previous page",
        Msg::NextPage => "Next page",
        Msg::Recorded => "Recorded",
        Msg::Inbox => "Agency inbox",
        Msg::EventId => "Event ID",
        Msg::Attempts => "Attempts",
        Msg::Reason => "Reason",
        Msg::UnreadableEntries => "Entries that could not be read (for the operators)",
        Msg::WorkloadTitle => "Workload by agency",
        Msg::WorkloadIntro => {
            "Open tasks and overdue tasks now; median time held over finished tasks, per service."
        }
        Msg::OpenTasks => "Open tasks",
        Msg::OverdueTasks => "Overdue",
        Msg::MedianHeld => "Median time held",
        Msg::FinishedTasks => "Finished tasks",
        Msg::NoFinishedTasks => "No finished tasks yet.",
        Msg::LiveOn => "This page updates by itself when the case moves.",
        Msg::LiveLost => "Connection lost; trying again…",
        Msg::LiveUpdated => "Updated",
        Msg::StatusAtFrontOffice => "At the front office",
        Msg::StatusInProgress => "In progress",
        Msg::StatusAwaitingInfo => "Waiting for the citizen",
        Msg::StatusApproved => "Closed: approved",
        Msg::StatusDenied => "Closed: denied",
        Msg::StatusWithdrawn => "Closed: withdrawn",
        Msg::KindOpened => "Opened",
        Msg::KindHandedOff => "Handed over",
        Msg::KindAccepted => "Accepted",
        Msg::KindCompleted => "Completed",
        Msg::KindSentBack => "Sent back",
        Msg::KindInfoRequested => "More information asked",
        Msg::KindResolved => "Closed",
        Msg::EndCompleted => "completed",
        Msg::EndSentBack => "sent back",
        Msg::EndClosedByResolution => "closed with the case",
        Msg::StillHeld => "still held",
        Msg::Problem => "Part of this case's history could not be read; operators are told.",
        Msg::ErrorNotFoundTitle => "Not found",
        Msg::ErrorBadRequestTitle => "Please check what you typed",
        Msg::ErrorUnavailableTitle => "Not available right now",
        Msg::ErrorInternalTitle => "Something went wrong",
        Msg::ErrorCaseNotFound => {
            "No case with this ID is known. Check the ID on the receipt; a case opened a moment \
             ago can take a few seconds to appear."
        }
        Msg::ErrorNoMatch => "No case matches your search.",
        Msg::ErrorPageNotFound => "There is no such page.",
        Msg::ErrorMalformedCaseId => {
            "This is not a case ID. A case ID has 26 letters and digits, for example \
             01JD8X3Q6V9K2M4N5P7R8S9T0V."
        }
        Msg::ErrorEmptySearch => "Type a case ID, a citizen reference or a trace ID.",
        Msg::ErrorSearchTooLong => "The search is too long: at most 256 characters.",
        Msg::ErrorBadFilter => "This filter is not one the page offers; choose from the lists.",
        Msg::ErrorUnavailable => {
            "A part of the system cannot be reached just now. Try again in a minute."
        }
        Msg::ErrorInternal => {
            "The page could not be made. Try again; if it happens again, tell the operators."
        }
        Msg::BackToSearch => "Back to the search",
        Msg::LoginTitle => "Sign in",
        Msg::LoginIntro => "Sign in with your own account; it shows your office's cases.",
        Msg::LoginFailed => "Wrong name or password.",
        Msg::UserName => "Name",
        Msg::Password => "Password",
        Msg::SignIn => "Sign in",
        Msg::SignOut => "Sign out",
        Msg::RoleSupervisor => "Supervisor",
        Msg::ErrorForbiddenTitle => "Not for this account",
        Msg::ErrorSupervisorsOnly => "This page is for supervisors.",
        Msg::ErrorSignInAgain => "Please sign in again.",
        Msg::ErrorTooManyTitle => "Too many attempts",
        Msg::ErrorTooManySignIns => {
            "Too many failed sign-ins for this account or from this computer. Please wait a while (at most 15 minutes), then try again."
        }
        Msg::ErrorFormExpired => {
            "This form has expired or did not come from this site. Go back, reload the page and try again."
        }
    }
}

fn lo(msg: Msg) -> &'static str {
    match msg {
        Msg::AppTitle => "ສູນບໍລິການປະຕູດຽວ: ຕິດຕາມຄຳຮ້ອງ",
        Msg::SkipToContent => "ຂ້າມໄປຫາເນື້ອໃນ",
        Msg::NavSearch => "ຊອກຫາຄຳຮ້ອງ",
        Msg::NavOverdue => "ເກີນກຳນົດ",
        Msg::NavStuck => "ການສົ່ງທີ່ຄ້າງ",
        Msg::NavWorkload => "ວຽກຂອງແຕ່ລະພາກສ່ວນ",
        Msg::Language => "ພາສາ",
        Msg::SearchLabel => "ລະຫັດຄຳຮ້ອງ, ເລກອ້າງອີງຂອງພົນລະເມືອງ ຫຼື ລະຫັດຕິດຕາມ",
        Msg::SearchHint => "ລະຫັດຄຳຮ້ອງຢູ່ໃນໃບຮັບຂອງພົນລະເມືອງ (ຕົວອັກສອນ ແລະ ຕົວເລກ 26 ຕົວ).",
        Msg::SearchButton => "ຊອກຫາ",
        Msg::RecentCases => "ຄຳຮ້ອງຫຼ້າສຸດ",
        Msg::FrontOffice => "ສູນບໍລິການ",
        Msg::AllFrontOffices => "ທຸກສູນບໍລິການ",
        Msg::AllAgencies => "ທຸກພາກສ່ວນ",
        Msg::AllServices => "ທຸກບໍລິການ",
        Msg::ShowButton => "ສະແດງ",
        Msg::FilterButton => "ກັ່ນຕອງ",
        Msg::NoCases => "ຍັງບໍ່ມີຄຳຮ້ອງ.",
        Msg::CasesFound => "ຄຳຮ້ອງທີ່ພົບ",
        Msg::CaseId => "ລະຫັດຄຳຮ້ອງ",
        Msg::Service => "ບໍລິການ",
        Msg::CitizenRef => "ເລກອ້າງອີງຂອງພົນລະເມືອງ",
        Msg::Origin => "ສູນບໍລິການ",
        Msg::Status => "ສະຖານະ",
        Msg::Opened => "ວັນທີຍື່ນ",
        Msg::Resolved => "ວັນທີປິດ",
        Msg::TraceId => "ລະຫັດຕິດຕາມ",
        Msg::Summary => "ສັງລວມ",
        Msg::LastChange => "ປ່ຽນແປງຫຼ້າສຸດ",
        Msg::NowWith => "ຕອນນີ້ຢູ່ກັບ",
        Msg::NobodyHoldsIt => "ຕອນນີ້ບໍ່ມີພາກສ່ວນໃດຖືຄຳຮ້ອງນີ້.",
        Msg::WhoHeldIt => "ພາກສ່ວນທີ່ຖືຄຳຮ້ອງ",
        Msg::TimelineHelp => {
            "ແຕ່ລະແຖວແມ່ນພາກສ່ວນໜຶ່ງ. ແຖບສະແດງເວລາທີ່ພາກສ່ວນນັ້ນຖືຄຳຮ້ອງ; ສີແດງແມ່ນເວລາທີ່ເກີນກຳນົດ."
        }
        Msg::LegendHeld => "ພາກສ່ວນກຳລັງຖື",
        Msg::LegendAtFrontOffice => "ຢູ່ສູນບໍລິການ",
        Msg::LegendPastDue => "ເກີນກຳນົດ",
        Msg::Now => "ຕອນນີ້",
        Msg::TimeHeldByAgency => "ເວລາທີ່ແຕ່ລະພາກສ່ວນຖື",
        Msg::Events => "ເຫດການ",
        Msg::Number => "ລ/ດ",
        Msg::When => "ເວລາ",
        Msg::FromTo => "ຈາກ → ເຖິງ",
        Msg::What => "ລາຍການ",
        Msg::Detail => "ລາຍລະອຽດ",
        Msg::Officer => "ພະນັກງານ",
        Msg::Agency => "ພາກສ່ວນ",
        Msg::HandedOff => "ສົ່ງໃຫ້ເມື່ອ",
        Msg::Due => "ກຳນົດ",
        Msg::TimeHeld => "ເວລາທີ່ຖື",
        Msg::Late => "ຊ້າ",
        Msg::PastDue => "ເກີນກຳນົດ",
        Msg::OverdueTitle => "ວຽກທີ່ເກີນກຳນົດ",
        Msg::OverdueIntro => {
            "ວຽກທີ່ຍັງບໍ່ສຳເລັດ ແລະ ເກີນກຳນົດແລ້ວ, ນັບເປັນວັນລັດຖະການ (ບໍ່ນັບວັນເສົາ-ອາທິດ ແລະ ວັນພັກລັດຖະການ)."
        }
        Msg::NothingOverdue => "ບໍ່ມີວຽກທີ່ເກີນກຳນົດ.",
        Msg::StuckTitle => "ການສົ່ງທີ່ຄ້າງ",
        Msg::StuckIntro => "ເຫດການທີ່ລະບົບຂອງພາກສ່ວນບໍ່ໄດ້ຮັບ ຫຼັງຈາກສົ່ງຄົບທຸກຄັ້ງແລ້ວ. ທີມໄອທີຂອງພາກສ່ວນນັ້ນຕ້ອງກວດເບິ່ງ.",
        Msg::NothingStuck => "ບໍ່ມີການສົ່ງທີ່ຄ້າງ.",
        Msg::Pages => "ໜ້າ",
        Msg::PreviousPage => "ໜ້າກ່ອນ",
        Msg::NextPage => "ໜ້າຕໍ່ໄປ",
        Msg::Recorded => "ບັນທຶກເມື່ອ",
        Msg::Inbox => "ກ່ອງຮັບຂອງພາກສ່ວນ",
        Msg::EventId => "ລະຫັດເຫດການ",
        Msg::Attempts => "ຈຳນວນຄັ້ງທີ່ສົ່ງ",
        Msg::Reason => "ເຫດຜົນ",
        Msg::UnreadableEntries => "ລາຍການທີ່ອ່ານບໍ່ໄດ້ (ສຳລັບຜູ້ດູແລລະບົບ)",
        Msg::WorkloadTitle => "ວຽກຂອງແຕ່ລະພາກສ່ວນ",
        Msg::WorkloadIntro => {
            "ວຽກທີ່ຍັງຄ້າງ ແລະ ວຽກທີ່ເກີນກຳນົດໃນຕອນນີ້; ເວລາຖືສະເລ່ຍ (ຄ່າກາງ) ຂອງວຽກທີ່ສຳເລັດແລ້ວ, ແຍກຕາມບໍລິການ."
        }
        Msg::OpenTasks => "ວຽກທີ່ຍັງຄ້າງ",
        Msg::OverdueTasks => "ເກີນກຳນົດ",
        Msg::MedianHeld => "ເວລາຖື (ຄ່າກາງ)",
        Msg::FinishedTasks => "ວຽກທີ່ສຳເລັດ",
        Msg::NoFinishedTasks => "ຍັງບໍ່ມີວຽກທີ່ສຳເລັດ.",
        Msg::LiveOn => "ໜ້ານີ້ຈະອັບເດດເອງເມື່ອຄຳຮ້ອງມີການເຄື່ອນໄຫວ.",
        Msg::LiveLost => "ຂາດການເຊື່ອມຕໍ່; ກຳລັງລອງໃໝ່…",
        Msg::LiveUpdated => "ອັບເດດແລ້ວ",
        Msg::StatusAtFrontOffice => "ຢູ່ສູນບໍລິການ",
        Msg::StatusInProgress => "ກຳລັງດຳເນີນການ",
        Msg::StatusAwaitingInfo => "ລໍຖ້າຂໍ້ມູນຈາກພົນລະເມືອງ",
        Msg::StatusApproved => "ປິດແລ້ວ: ອະນຸມັດ",
        Msg::StatusDenied => "ປິດແລ້ວ: ບໍ່ອະນຸມັດ",
        Msg::StatusWithdrawn => "ປິດແລ້ວ: ຖອນຄຳຮ້ອງ",
        Msg::KindOpened => "ຍື່ນຄຳຮ້ອງ",
        Msg::KindHandedOff => "ສົ່ງຕໍ່",
        Msg::KindAccepted => "ຮັບເອົາ",
        Msg::KindCompleted => "ສຳເລັດ",
        Msg::KindSentBack => "ສົ່ງຄືນ",
        Msg::KindInfoRequested => "ຂໍຂໍ້ມູນເພີ່ມ",
        Msg::KindResolved => "ປິດຄຳຮ້ອງ",
        Msg::EndCompleted => "ສຳເລັດ",
        Msg::EndSentBack => "ສົ່ງຄືນ",
        Msg::EndClosedByResolution => "ປິດພ້ອມຄຳຮ້ອງ",
        Msg::StillHeld => "ຍັງຖືຢູ່",
        Msg::Problem => "ປະຫວັດບາງສ່ວນຂອງຄຳຮ້ອງນີ້ອ່ານບໍ່ໄດ້; ໄດ້ແຈ້ງຜູ້ດູແລລະບົບແລ້ວ.",
        Msg::ErrorNotFoundTitle => "ບໍ່ພົບ",
        Msg::ErrorBadRequestTitle => "ກະລຸນາກວດເບິ່ງສິ່ງທີ່ພິມ",
        Msg::ErrorUnavailableTitle => "ຕອນນີ້ໃຊ້ບໍ່ໄດ້",
        Msg::ErrorInternalTitle => "ມີບາງຢ່າງຜິດພາດ",
        Msg::ErrorCaseNotFound => {
            "ບໍ່ພົບຄຳຮ້ອງທີ່ມີລະຫັດນີ້. ກະລຸນາກວດລະຫັດໃນໃບຮັບ; ຄຳຮ້ອງທີ່ຫາກໍຍື່ນອາດຕ້ອງລໍຖ້າສອງສາມວິນາທີຈຶ່ງປາກົດ."
        }
        Msg::ErrorNoMatch => "ບໍ່ພົບຄຳຮ້ອງທີ່ກົງກັບການຊອກຫາ.",
        Msg::ErrorPageNotFound => "ບໍ່ມີໜ້ານີ້.",
        Msg::ErrorMalformedCaseId => {
            "ນີ້ບໍ່ແມ່ນລະຫັດຄຳຮ້ອງ. ລະຫັດຄຳຮ້ອງມີຕົວອັກສອນ ແລະ ຕົວເລກ 26 ຕົວ, ເຊັ່ນ 01JD8X3Q6V9K2M4N5P7R8S9T0V."
        }
        Msg::ErrorEmptySearch => "ກະລຸນາພິມລະຫັດຄຳຮ້ອງ, ເລກອ້າງອີງຂອງພົນລະເມືອງ ຫຼື ລະຫັດຕິດຕາມ.",
        Msg::ErrorSearchTooLong => "ຄຳຊອກຫາຍາວເກີນໄປ: ບໍ່ເກີນ 256 ຕົວອັກສອນ.",
        Msg::ErrorBadFilter => "ຕົວກັ່ນຕອງນີ້ບໍ່ມີໃນໜ້ານີ້; ກະລຸນາເລືອກຈາກລາຍການ.",
        Msg::ErrorUnavailable => "ຕອນນີ້ບໍ່ສາມາດເຊື່ອມຕໍ່ກັບບາງສ່ວນຂອງລະບົບໄດ້. ກະລຸນາລອງໃໝ່ໃນອີກໜຶ່ງນາທີ.",
        Msg::ErrorInternal => "ບໍ່ສາມາດສະແດງໜ້ານີ້ໄດ້. ກະລຸນາລອງໃໝ່; ຖ້າຍັງເປັນຢູ່, ກະລຸນາແຈ້ງຜູ້ດູແລລະບົບ.",
        Msg::BackToSearch => "ກັບໄປໜ້າຊອກຫາ",
        Msg::LoginTitle => "ເຂົ້າສູ່ລະບົບ",
        Msg::LoginIntro => "ກະລຸນາເຂົ້າສູ່ລະບົບດ້ວຍບັນຊີຂອງທ່ານ; ມັນຈະສະແດງຄຳຮ້ອງຂອງສູນບໍລິການຂອງທ່ານ.",
        Msg::LoginFailed => "ຊື່ ຫຼື ລະຫັດຜ່ານບໍ່ຖືກຕ້ອງ.",
        Msg::UserName => "ຊື່",
        Msg::Password => "ລະຫັດຜ່ານ",
        Msg::SignIn => "ເຂົ້າສູ່ລະບົບ",
        Msg::SignOut => "ອອກຈາກລະບົບ",
        Msg::RoleSupervisor => "ຫົວໜ້າ",
        Msg::ErrorForbiddenTitle => "ບັນຊີນີ້ບໍ່ມີສິດ",
        Msg::ErrorSupervisorsOnly => "ໜ້ານີ້ສຳລັບຫົວໜ້າເທົ່ານັ້ນ.",
        Msg::ErrorSignInAgain => "ກະລຸນາເຂົ້າສູ່ລະບົບອີກຄັ້ງ.",
        Msg::ErrorTooManyTitle => "ພະຍາຍາມຫຼາຍເທື່ອເກີນໄປ",
        Msg::ErrorTooManySignIns => {
            "ເຂົ້າສູ່ລະບົບບໍ່ສຳເລັດຫຼາຍເທື່ອເກີນໄປ ສຳລັບບັນຊີນີ້ ຫຼື ຄອມພິວເຕີນີ້. ກະລຸນາລໍຖ້າຈັກໜ່ອຍ ແລ້ວລອງໃໝ່."
        }
        Msg::ErrorFormExpired => "ແບບຟອມນີ້ໝົດອາຍຸ ຫຼື ບໍ່ໄດ້ມາຈາກເວັບໄຊນີ້. ກະລຸນາກັບຄືນ, ໂຫຼດໜ້າໃໝ່ ແລ້ວລອງອີກຄັ້ງ.",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use time::macros::{datetime, offset};

    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(
            rows_shown(Lang::En, 101, 200, 1234),
            "Rows 101–200 of 1,234"
        );
    }

    fn is_lao(c: char) -> bool {
        ('\u{0E80}'..='\u{0EFF}').contains(&c)
    }

    #[test]
    fn msg_all_lists_every_id_once() {
        let distinct: HashSet<Msg> = Msg::ALL.iter().copied().collect();
        assert_eq!(distinct.len(), Msg::ALL.len(), "an id is listed twice");
    }

    #[test]
    fn both_languages_have_every_message() {
        for &msg in Msg::ALL {
            let english = Lang::En.t(msg);
            let lao = Lang::Lo.t(msg);
            assert!(!english.trim().is_empty(), "{msg:?} has no English text");
            assert!(!lao.trim().is_empty(), "{msg:?} has no Lao text");
            assert!(
                lao.chars().any(is_lao),
                "{msg:?}'s Lao text is not Lao: {lao}"
            );
            assert!(
                !english.chars().any(is_lao),
                "{msg:?}'s English text has Lao in it"
            );
        }
    }

    #[test]
    fn the_cookie_beats_the_browser_and_lao_wins_when_nothing_matches() {
        assert_eq!(
            negotiate(Some("onedoor_lang=en"), Some("lo-LA,lo")),
            Lang::En
        );
        assert_eq!(
            negotiate(Some("a=b; onedoor_lang=lo"), Some("en-US,en")),
            Lang::Lo
        );
        assert_eq!(
            negotiate(Some("onedoor_lang=fr"), Some("en-GB")),
            Lang::En,
            "an unknown cookie value falls back to the header"
        );
        assert_eq!(negotiate(None, None), Lang::Lo);
        assert_eq!(negotiate(None, Some("fr-FR,fr;q=0.9")), Lang::Lo);
    }

    #[test]
    fn accept_language_weights_are_respected() {
        let pick = |header| from_accept_language(header);
        assert_eq!(pick("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(pick("lo-LA,lo;q=0.9,en-US;q=0.8"), Some(Lang::Lo));
        assert_eq!(pick("en;q=0.5, lo;q=0.8"), Some(Lang::Lo));
        assert_eq!(pick("th, lo;q=0.7, en;q=0.7"), Some(Lang::Lo), "tie: first");
        assert_eq!(pick("EN-gb"), Some(Lang::En));
        assert_eq!(pick("lo;q=0, en;q=0.1"), Some(Lang::En), "q=0 refuses");
        assert_eq!(pick("lo;q=2"), None, "an invalid weight counts as 0");
        assert_eq!(pick("*"), None);
        assert_eq!(pick(""), None);
    }

    #[test]
    fn dates_are_day_first_in_vientiane_time_with_lao_month_names() {
        let at = datetime!(2026-11-27 07:05 UTC);
        let vientiane = offset!(+07:00);
        assert_eq!(short_datetime(at, vientiane), "27/11/2026 14:05");
        assert_eq!(
            long_datetime(Lang::Lo, at, vientiane),
            "27 ພະຈິກ 2026, 14:05"
        );
        assert_eq!(
            long_datetime(Lang::En, at, vientiane),
            "27 November 2026, 14:05"
        );
        // Late evening UTC is the next morning in Vientiane.
        assert_eq!(
            short_datetime(datetime!(2026-12-31 20:00 UTC), vientiane),
            "01/01/2027 03:00"
        );
    }

    #[test]
    fn durations_show_two_units() {
        assert_eq!(duration(Lang::En, Duration::minutes(5)), "5 min");
        assert_eq!(duration(Lang::En, Duration::hours(2)), "2 h");
        assert_eq!(duration(Lang::En, Duration::minutes(125)), "2 h 5 min");
        assert_eq!(duration(Lang::En, Duration::hours(76)), "3 d 4 h");
        assert_eq!(duration(Lang::Lo, Duration::hours(76)), "3 ມື້ 4 ຊົ່ວໂມງ");
        assert_eq!(duration(Lang::En, Duration::days(2)), "2 d");
        assert_eq!(duration(Lang::En, Duration::seconds(-5)), "0 min");
    }

    #[test]
    fn lateness_reads_naturally() {
        assert_eq!(working_days_late(Lang::En, 1), "1 working day late");
        assert_eq!(working_days_late(Lang::En, 3), "3 working days late");
        assert_eq!(working_days_late(Lang::Lo, 3), "ຊ້າ 3 ວັນລັດຖະການ");
        assert_eq!(working_days_late(Lang::En, 0), "past due");
    }
}
