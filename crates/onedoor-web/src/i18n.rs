//! Lao and English: the message catalogue, the choice of language, and dates, durations and
//! lateness written the way staff read them.
//!
//! The catalogue is one list, grouped by page, that declares each message id ([`Msg`]) with its
//! English and Lao text side by side, so a message missing in either language does not
//! compile; the tests add what the compiler cannot see (no empty text, Lao text in Lao script,
//! `Msg::ALL` listing every id). Agency and
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
        // One entry per id, made from the same list as `Msg`, whose ids count from 0.
        let (en, lo) = TEXTS[msg as usize];
        match self {
            Lang::En => en,
            Lang::Lo => lo,
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

/// Declares [`Msg`], `Msg::ALL` and each message's English and Lao text from one list, so no
/// id can be missing from `ALL` and no message can lack either language.
macro_rules! messages {
    ($($name:ident { en: $en:expr, lo: $lo:expr $(,)? })*) => {
        /// Every message id of the web page.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Msg {
            $($name),*
        }

        impl Msg {
            /// Every id, in declaration order.
            pub const ALL: &[Msg] = &[$(Msg::$name),*];
        }

        /// English and Lao text of every id, in declaration order: `TEXTS[msg as usize]`.
        const TEXTS: &[(&str, &str)] = &[$(($en, $lo)),*];
    };
}

messages! {
    // The frame of every page: title, navigation, language switch.
    AppTitle {
        en: "One-Door Service Center: case tracker",
        lo: "ສູນບໍລິການປະຕູດຽວ: ຕິດຕາມຄຳຮ້ອງ",
    }
    SkipToContent {
        en: "Skip to content",
        lo: "ຂ້າມໄປຫາເນື້ອໃນ",
    }
    NavSearch {
        en: "Find a case",
        lo: "ຊອກຫາຄຳຮ້ອງ",
    }
    NavOverdue {
        en: "Overdue",
        lo: "ເກີນກຳນົດ",
    }
    NavStuck {
        en: "Stuck deliveries",
        lo: "ການສົ່ງທີ່ຄ້າງ",
    }
    NavWorkload {
        en: "Workload",
        lo: "ວຽກຂອງແຕ່ລະພາກສ່ວນ",
    }
    Language {
        en: "Language",
        lo: "ພາສາ",
    }

    // The search page and its recent cases.
    SearchLabel {
        en: "Case ID, citizen reference or trace ID",
        lo: "ລະຫັດຄຳຮ້ອງ, ເລກອ້າງອີງຂອງພົນລະເມືອງ ຫຼື ລະຫັດຕິດຕາມ",
    }
    SearchHint {
        en: "The case ID is on the citizen's receipt (26 letters and digits).",
        lo: "ລະຫັດຄຳຮ້ອງຢູ່ໃນໃບຮັບຂອງພົນລະເມືອງ (ຕົວອັກສອນ ແລະ ຕົວເລກ 26 ຕົວ).",
    }
    SearchButton {
        en: "Search",
        lo: "ຊອກຫາ",
    }
    RecentCases {
        en: "Recent cases",
        lo: "ຄຳຮ້ອງຫຼ້າສຸດ",
    }
    FrontOffice {
        en: "Front office",
        lo: "ສູນບໍລິການ",
    }
    AllFrontOffices {
        en: "All front offices",
        lo: "ທຸກສູນບໍລິການ",
    }
    AllAgencies {
        en: "All agencies",
        lo: "ທຸກພາກສ່ວນ",
    }
    AllServices {
        en: "All services",
        lo: "ທຸກບໍລິການ",
    }
    ShowButton {
        en: "Show",
        lo: "ສະແດງ",
    }
    FilterButton {
        en: "Filter",
        lo: "ກັ່ນຕອງ",
    }
    NoCases {
        en: "No cases yet.",
        lo: "ຍັງບໍ່ມີຄຳຮ້ອງ.",
    }
    CasesFound {
        en: "Cases found",
        lo: "ຄຳຮ້ອງທີ່ພົບ",
    }

    // The case page: header, who holds it, swimlanes, events.
    CaseId {
        en: "Case ID",
        lo: "ລະຫັດຄຳຮ້ອງ",
    }
    Service {
        en: "Service",
        lo: "ບໍລິການ",
    }
    CitizenRef {
        en: "Citizen reference",
        lo: "ເລກອ້າງອີງຂອງພົນລະເມືອງ",
    }
    Origin {
        en: "Front office",
        lo: "ສູນບໍລິການ",
    }
    Status {
        en: "Status",
        lo: "ສະຖານະ",
    }
    Opened {
        en: "Opened",
        lo: "ວັນທີຍື່ນ",
    }
    Resolved {
        en: "Resolved",
        lo: "ວັນທີປິດ",
    }
    TraceId {
        en: "Trace ID",
        lo: "ລະຫັດຕິດຕາມ",
    }
    Summary {
        en: "Summary",
        lo: "ສັງລວມ",
    }
    LastChange {
        en: "Last change",
        lo: "ປ່ຽນແປງຫຼ້າສຸດ",
    }
    NowWith {
        en: "Now with",
        lo: "ຕອນນີ້ຢູ່ກັບ",
    }
    NobodyHoldsIt {
        en: "No agency holds the case now.",
        lo: "ຕອນນີ້ບໍ່ມີພາກສ່ວນໃດຖືຄຳຮ້ອງນີ້.",
    }
    WhoHeldIt {
        en: "Who held the case",
        lo: "ພາກສ່ວນທີ່ຖືຄຳຮ້ອງ",
    }
    TimelineHelp {
        en: "One lane per agency. Bars show when the agency held the case; red shows time past \
             the due date.",
        lo: "ແຕ່ລະແຖວແມ່ນພາກສ່ວນໜຶ່ງ. ແຖບສະແດງເວລາທີ່ພາກສ່ວນນັ້ນຖືຄຳຮ້ອງ; ສີແດງແມ່ນເວລາທີ່ເກີນກຳນົດ.",
    }
    LegendHeld {
        en: "Held by the agency",
        lo: "ພາກສ່ວນກຳລັງຖື",
    }
    LegendAtFrontOffice {
        en: "At the front office",
        lo: "ຢູ່ສູນບໍລິການ",
    }
    LegendPastDue {
        en: "Past the due date",
        lo: "ເກີນກຳນົດ",
    }
    Now {
        en: "now",
        lo: "ຕອນນີ້",
    }
    TimeHeldByAgency {
        en: "Time held by each agency",
        lo: "ເວລາທີ່ແຕ່ລະພາກສ່ວນຖື",
    }
    Events {
        en: "Events",
        lo: "ເຫດການ",
    }
    Number {
        en: "No.",
        lo: "ລ/ດ",
    }
    When {
        en: "When",
        lo: "ເວລາ",
    }
    FromTo {
        en: "From → to",
        lo: "ຈາກ → ເຖິງ",
    }
    What {
        en: "What",
        lo: "ລາຍການ",
    }
    Detail {
        en: "Detail",
        lo: "ລາຍລະອຽດ",
    }
    Officer {
        en: "Officer",
        lo: "ພະນັກງານ",
    }

    // The overdue and stuck lists and their pager.
    Agency {
        en: "Agency",
        lo: "ພາກສ່ວນ",
    }
    HandedOff {
        en: "Handed over",
        lo: "ສົ່ງໃຫ້ເມື່ອ",
    }
    Due {
        en: "Due",
        lo: "ກຳນົດ",
    }
    TimeHeld {
        en: "Time held",
        lo: "ເວລາທີ່ຖື",
    }
    Late {
        en: "Late",
        lo: "ຊ້າ",
    }
    PastDue {
        en: "past due",
        lo: "ເກີນກຳນົດ",
    }
    OverdueTitle {
        en: "Overdue tasks",
        lo: "ວຽກທີ່ເກີນກຳນົດ",
    }
    OverdueIntro {
        en: "Open tasks past their due date, counted in working days (weekends and public \
             holidays do not count).",
        lo: "ວຽກທີ່ຍັງບໍ່ສຳເລັດ ແລະ ເກີນກຳນົດແລ້ວ, ນັບເປັນວັນລັດຖະການ (ບໍ່ນັບວັນເສົາ-ອາທິດ ແລະ ວັນພັກລັດຖະການ).",
    }
    NothingOverdue {
        en: "Nothing is overdue.",
        lo: "ບໍ່ມີວຽກທີ່ເກີນກຳນົດ.",
    }
    StuckTitle {
        en: "Stuck deliveries",
        lo: "ການສົ່ງທີ່ຄ້າງ",
    }
    StuckIntro {
        en: "Events an agency's system did not take in after every delivery attempt. The \
             agency's IT team must look at them.",
        lo: "ເຫດການທີ່ລະບົບຂອງພາກສ່ວນບໍ່ໄດ້ຮັບ ຫຼັງຈາກສົ່ງຄົບທຸກຄັ້ງແລ້ວ. ທີມໄອທີຂອງພາກສ່ວນນັ້ນຕ້ອງກວດເບິ່ງ.",
    }
    NothingStuck {
        en: "No stuck deliveries.",
        lo: "ບໍ່ມີການສົ່ງທີ່ຄ້າງ.",
    }
    Pages {
        en: "Pages",
        lo: "ໜ້າ",
    }
    PreviousPage {
        en: "Previous page",
        lo: "ໜ້າກ່ອນ",
    }
    NextPage {
        en: "Next page",
        lo: "ໜ້າຕໍ່ໄປ",
    }
    Recorded {
        en: "Recorded",
        lo: "ບັນທຶກເມື່ອ",
    }
    Inbox {
        en: "Agency inbox",
        lo: "ກ່ອງຮັບຂອງພາກສ່ວນ",
    }
    EventId {
        en: "Event ID",
        lo: "ລະຫັດເຫດການ",
    }
    Attempts {
        en: "Attempts",
        lo: "ຈຳນວນຄັ້ງທີ່ສົ່ງ",
    }
    Reason {
        en: "Reason",
        lo: "ເຫດຜົນ",
    }
    UnreadableEntries {
        en: "Entries that could not be read (for the operators)",
        lo: "ລາຍການທີ່ອ່ານບໍ່ໄດ້ (ສຳລັບຜູ້ດູແລລະບົບ)",
    }

    // The workload page.
    WorkloadTitle {
        en: "Workload by agency",
        lo: "ວຽກຂອງແຕ່ລະພາກສ່ວນ",
    }
    WorkloadIntro {
        en: "Open tasks and overdue tasks now; median time held over finished tasks, per service.",
        lo: "ວຽກທີ່ຍັງຄ້າງ ແລະ ວຽກທີ່ເກີນກຳນົດໃນຕອນນີ້; ເວລາຖືສະເລ່ຍ (ຄ່າກາງ) ຂອງວຽກທີ່ສຳເລັດແລ້ວ, ແຍກຕາມບໍລິການ.",
    }
    OpenTasks {
        en: "Open tasks",
        lo: "ວຽກທີ່ຍັງຄ້າງ",
    }
    OverdueTasks {
        en: "Overdue",
        lo: "ເກີນກຳນົດ",
    }
    MedianHeld {
        en: "Median time held",
        lo: "ເວລາຖື (ຄ່າກາງ)",
    }
    FinishedTasks {
        en: "Finished tasks",
        lo: "ວຽກທີ່ສຳເລັດ",
    }
    NoFinishedTasks {
        en: "No finished tasks yet.",
        lo: "ຍັງບໍ່ມີວຽກທີ່ສຳເລັດ.",
    }
    // District offices and their link to the capital, on the workload page.
    OfficesTitle {
        en: "District offices",
        lo: "ສູນບໍລິການຂັ້ນເມືອງ",
    }
    OfficesIntro {
        en: "Offices heard from since the tracker started. An office not heard from for a few seconds has lost its link to the capital: its clerks keep working, and their steps wait at the office until the link returns.",
        lo: "ສູນບໍລິການທີ່ໄດ້ຮັບສັນຍານນັບແຕ່ລະບົບຕິດຕາມເລີ່ມເຮັດວຽກ. ສູນບໍລິການທີ່ບໍ່ມີສັນຍານສອງສາມວິນາທີ ແມ່ນຂາດການເຊື່ອມຕໍ່ກັບສູນກາງ: ພະນັກງານຍັງເຮັດວຽກໄດ້ ແລະ ຂັ້ນຕອນຂອງເຂົາເຈົ້າລໍຖ້າຢູ່ສູນບໍລິການ ຈົນກວ່າການເຊື່ອມຕໍ່ກັບຄືນມາ.",
    }
    NoOffices {
        en: "No district office has reported yet.",
        lo: "ຍັງບໍ່ມີສູນບໍລິການໃດລາຍງານເທື່ອ.",
    }
    OfficesDisconnected {
        en: "Offices disconnected",
        lo: "ສູນບໍລິການທີ່ຂາດການເຊື່ອມຕໍ່",
    }
    OfficeLink {
        en: "Link to the capital",
        lo: "ການເຊື່ອມຕໍ່ກັບສູນກາງ",
    }
    OfficeConnected {
        en: "Connected",
        lo: "ເຊື່ອມຕໍ່ຢູ່",
    }
    OfficeDisconnectedSince {
        en: "Disconnected since",
        lo: "ຂາດການເຊື່ອມຕໍ່ນັບແຕ່",
    }
    OfficeWaiting {
        en: "Steps waiting for the link",
        lo: "ຂັ້ນຕອນທີ່ລໍຖ້າການເຊື່ອມຕໍ່",
    }
    OfficeOldestWaiting {
        en: "oldest from",
        lo: "ເກົ່າສຸດແຕ່",
    }
    // The case page: steps a district office last said wait there for the link.
    WaitingAtOffice {
        en: "Waiting at a district office for the link",
        lo: "ລໍຖ້າການເຊື່ອມຕໍ່ຢູ່ສູນບໍລິການຂັ້ນເມືອງ",
    }
    WaitingAtOfficeIntro {
        en: "The office took these steps while its link to the capital was down or slow. They reach the capital in order when the link allows; until then the ministries do not see them. As the office last reported:",
        lo: "ສູນບໍລິການໄດ້ດຳເນີນຂັ້ນຕອນເຫຼົ່ານີ້ ໃນເວລາທີ່ການເຊື່ອມຕໍ່ກັບສູນກາງຂາດ ຫຼື ຊ້າ. ຂັ້ນຕອນຈະມາຮອດສູນກາງຕາມລຳດັບ ເມື່ອການເຊື່ອມຕໍ່ກັບຄືນມາ; ກ່ອນນັ້ນ ກະຊວງຕ່າງໆຍັງບໍ່ເຫັນ. ຕາມທີ່ສູນບໍລິການລາຍງານຫຼ້າສຸດ:",
    }
    NotYetAtCapital {
        en: "This case is not at the capital yet: a district office opened it and its steps wait there for the link.",
        lo: "ຄຳຮ້ອງນີ້ຍັງບໍ່ມາຮອດສູນກາງ: ສູນບໍລິການຂັ້ນເມືອງໄດ້ຮັບຄຳຮ້ອງ ແລະ ຂັ້ນຕອນຍັງລໍຖ້າການເຊື່ອມຕໍ່ຢູ່ທີ່ນັ້ນ.",
    }
    StoredAtOffice {
        en: "Taken at the office",
        lo: "ດຳເນີນຢູ່ສູນບໍລິການ",
    }
    CaseNumber {
        en: "Case",
        lo: "ຄຳຮ້ອງ",
    }

    // The case page's live updates.
    LiveOn {
        en: "This page updates by itself when the case moves.",
        lo: "ໜ້ານີ້ຈະອັບເດດເອງເມື່ອຄຳຮ້ອງມີການເຄື່ອນໄຫວ.",
    }
    LiveLost {
        en: "Connection lost; trying again…",
        lo: "ຂາດການເຊື່ອມຕໍ່; ກຳລັງລອງໃໝ່…",
    }
    LiveUpdated {
        en: "Updated",
        lo: "ອັບເດດແລ້ວ",
    }

    // Case statuses, event kinds, how a task ended.
    StatusAtFrontOffice {
        en: "At the front office",
        lo: "ຢູ່ສູນບໍລິການ",
    }
    StatusInProgress {
        en: "In progress",
        lo: "ກຳລັງດຳເນີນການ",
    }
    StatusAwaitingInfo {
        en: "Waiting for the citizen",
        lo: "ລໍຖ້າຂໍ້ມູນຈາກພົນລະເມືອງ",
    }
    StatusApproved {
        en: "Closed: approved",
        lo: "ປິດແລ້ວ: ອະນຸມັດ",
    }
    StatusDenied {
        en: "Closed: denied",
        lo: "ປິດແລ້ວ: ບໍ່ອະນຸມັດ",
    }
    StatusWithdrawn {
        en: "Closed: withdrawn",
        lo: "ປິດແລ້ວ: ຖອນຄຳຮ້ອງ",
    }
    KindOpened {
        en: "Opened",
        lo: "ຍື່ນຄຳຮ້ອງ",
    }
    KindHandedOff {
        en: "Handed over",
        lo: "ສົ່ງຕໍ່",
    }
    KindAccepted {
        en: "Accepted",
        lo: "ຮັບເອົາ",
    }
    KindCompleted {
        en: "Completed",
        lo: "ສຳເລັດ",
    }
    KindSentBack {
        en: "Sent back",
        lo: "ສົ່ງຄືນ",
    }
    KindInfoRequested {
        en: "More information asked",
        lo: "ຂໍຂໍ້ມູນເພີ່ມ",
    }
    KindResolved {
        en: "Closed",
        lo: "ປິດຄຳຮ້ອງ",
    }
    KindTaskClosed {
        en: "Agency told of the closing",
        lo: "ແຈ້ງການປິດຄຳຮ້ອງໃຫ້ພາກສ່ວນ",
    }
    KindTaskTransferred {
        en: "Task moved to the successor agency",
        lo: "ໂອນວຽກໃຫ້ພາກສ່ວນສືບທອດ",
    }
    KindTaskTakenBack {
        en: "Task taken back by its sender",
        lo: "ຜູ້ສົ່ງເອົາວຽກຄືນ",
    }
    EndCompleted {
        en: "completed",
        lo: "ສຳເລັດ",
    }
    EndSentBack {
        en: "sent back",
        lo: "ສົ່ງຄືນ",
    }
    EndClosedByResolution {
        en: "closed with the case",
        lo: "ປິດພ້ອມຄຳຮ້ອງ",
    }
    EndTransferred {
        en: "moved to the successor agency",
        lo: "ໂອນໃຫ້ພາກສ່ວນສືບທອດ",
    }
    NowAgency {
        en: "now",
        lo: "ປະຈຸບັນ",
    }
    EndTakenBack {
        en: "taken back by the sender",
        lo: "ຜູ້ສົ່ງເອົາຄືນແລ້ວ",
    }
    StillHeld {
        en: "still held",
        lo: "ຍັງຖືຢູ່",
    }
    Problem {
        en: "Part of this case's history could not be read; operators are told.",
        lo: "ປະຫວັດບາງສ່ວນຂອງຄຳຮ້ອງນີ້ອ່ານບໍ່ໄດ້; ໄດ້ແຈ້ງຜູ້ດູແລລະບົບແລ້ວ.",
    }
    NotAccepted {
        en: "Messages not accepted",
        lo: "ຂໍ້ຄວາມທີ່ບໍ່ຖືກຮັບເອົາ",
    }
    NotAcceptedHelp {
        en: "Messages sent on this case that failed the checks (signature, sender, order, \
             case rules). They are left out of the case, which goes on from its last good \
             event.",
        lo: "ຂໍ້ຄວາມທີ່ສົ່ງມາໃນຄຳຮ້ອງນີ້ ແຕ່ບໍ່ຜ່ານການກວດສອບ (ລາຍເຊັນ, ຜູ້ສົ່ງ, ລຳດັບ, \
             ລະບຽບຂອງຄຳຮ້ອງ). ບໍ່ໄດ້ນຳໃຊ້ໃນຄຳຮ້ອງ, ຊຶ່ງດຳເນີນຕໍ່ຈາກເຫດການທີ່ຖືກຕ້ອງຫຼ້າສຸດ.",
    }
    Sequence {
        en: "Sequence",
        lo: "ລຳດັບ",
    }
    Sender {
        en: "Sender",
        lo: "ຜູ້ສົ່ງ",
    }
    ReasonUndecodable {
        en: "unreadable",
        lo: "ອ່ານບໍ່ໄດ້",
    }
    ReasonSubjectMismatch {
        en: "sender does not match",
        lo: "ຜູ້ສົ່ງບໍ່ກົງກັນ",
    }
    ReasonBadSignature {
        en: "bad signature",
        lo: "ລາຍເຊັນບໍ່ຖືກຕ້ອງ",
    }
    ReasonBrokenChain {
        en: "out of order",
        lo: "ຜິດລຳດັບ",
    }
    ReasonRules {
        en: "not allowed by the case rules",
        lo: "ລະບຽບຂອງຄຳຮ້ອງບໍ່ອະນຸຍາດ",
    }
    ReasonOther {
        en: "not accepted",
        lo: "ບໍ່ຖືກຮັບເອົາ",
    }

    // Error pages.
    ErrorNotFoundTitle {
        en: "Not found",
        lo: "ບໍ່ພົບ",
    }
    ErrorBadRequestTitle {
        en: "Please check what you typed",
        lo: "ກະລຸນາກວດເບິ່ງສິ່ງທີ່ພິມ",
    }
    ErrorUnavailableTitle {
        en: "Not available right now",
        lo: "ຕອນນີ້ໃຊ້ບໍ່ໄດ້",
    }
    ErrorInternalTitle {
        en: "Something went wrong",
        lo: "ມີບາງຢ່າງຜິດພາດ",
    }
    ErrorCaseNotFound {
        en: "No case with this ID is known. Check the ID on the receipt; a case opened a moment \
             ago can take a few seconds to appear.",
        lo: "ບໍ່ພົບຄຳຮ້ອງທີ່ມີລະຫັດນີ້. ກະລຸນາກວດລະຫັດໃນໃບຮັບ; ຄຳຮ້ອງທີ່ຫາກໍຍື່ນອາດຕ້ອງລໍຖ້າສອງສາມວິນາທີຈຶ່ງປາກົດ.",
    }
    ErrorNoMatch {
        en: "No case matches your search.",
        lo: "ບໍ່ພົບຄຳຮ້ອງທີ່ກົງກັບການຊອກຫາ.",
    }
    ErrorPageNotFound {
        en: "There is no such page.",
        lo: "ບໍ່ມີໜ້ານີ້.",
    }
    ErrorMalformedCaseId {
        en: "This is not a case ID. A case ID has 26 letters and digits, for example \
             01JD8X3Q6V9K2M4N5P7R8S9T0V.",
        lo: "ນີ້ບໍ່ແມ່ນລະຫັດຄຳຮ້ອງ. ລະຫັດຄຳຮ້ອງມີຕົວອັກສອນ ແລະ ຕົວເລກ 26 ຕົວ, ເຊັ່ນ 01JD8X3Q6V9K2M4N5P7R8S9T0V.",
    }
    ErrorEmptySearch {
        en: "Type a case ID, a citizen reference or a trace ID.",
        lo: "ກະລຸນາພິມລະຫັດຄຳຮ້ອງ, ເລກອ້າງອີງຂອງພົນລະເມືອງ ຫຼື ລະຫັດຕິດຕາມ.",
    }
    ErrorSearchTooLong {
        en: "The search is too long: at most 256 characters.",
        lo: "ຄຳຊອກຫາຍາວເກີນໄປ: ບໍ່ເກີນ 256 ຕົວອັກສອນ.",
    }
    ErrorBadFilter {
        en: "This filter is not one the page offers; choose from the lists.",
        lo: "ຕົວກັ່ນຕອງນີ້ບໍ່ມີໃນໜ້ານີ້; ກະລຸນາເລືອກຈາກລາຍການ.",
    }
    ErrorUnavailable {
        en: "A part of the system cannot be reached just now. Try again in a minute.",
        lo: "ຕອນນີ້ບໍ່ສາມາດເຊື່ອມຕໍ່ກັບບາງສ່ວນຂອງລະບົບໄດ້. ກະລຸນາລອງໃໝ່ໃນອີກໜຶ່ງນາທີ.",
    }
    ErrorInternal {
        en: "The page could not be made. Try again; if it happens again, tell the operators.",
        lo: "ບໍ່ສາມາດສະແດງໜ້ານີ້ໄດ້. ກະລຸນາລອງໃໝ່; ຖ້າຍັງເປັນຢູ່, ກະລຸນາແຈ້ງຜູ້ດູແລລະບົບ.",
    }
    BackToSearch {
        en: "Back to the search",
        lo: "ກັບໄປໜ້າຊອກຫາ",
    }

    // Sign-in.
    LoginTitle {
        en: "Sign in",
        lo: "ເຂົ້າສູ່ລະບົບ",
    }
    LoginIntro {
        en: "Sign in with your own account; it shows your office's cases.",
        lo: "ກະລຸນາເຂົ້າສູ່ລະບົບດ້ວຍບັນຊີຂອງທ່ານ; ມັນຈະສະແດງຄຳຮ້ອງຂອງສູນບໍລິການຂອງທ່ານ.",
    }
    LoginFailed {
        en: "Wrong name or password.",
        lo: "ຊື່ ຫຼື ລະຫັດຜ່ານບໍ່ຖືກຕ້ອງ.",
    }
    UserName {
        en: "Name",
        lo: "ຊື່",
    }
    Password {
        en: "Password",
        lo: "ລະຫັດຜ່ານ",
    }
    SignIn {
        en: "Sign in",
        lo: "ເຂົ້າສູ່ລະບົບ",
    }
    SignOut {
        en: "Sign out",
        lo: "ອອກຈາກລະບົບ",
    }
    RoleSupervisor {
        en: "Supervisor",
        lo: "ຫົວໜ້າ",
    }
    ErrorForbiddenTitle {
        en: "Not for this account",
        lo: "ບັນຊີນີ້ບໍ່ມີສິດ",
    }
    ErrorSupervisorsOnly {
        en: "This page is for supervisors.",
        lo: "ໜ້ານີ້ສຳລັບຫົວໜ້າເທົ່ານັ້ນ.",
    }
    ErrorSignInAgain {
        en: "Please sign in again.",
        lo: "ກະລຸນາເຂົ້າສູ່ລະບົບອີກຄັ້ງ.",
    }
    ErrorTooManyTitle {
        en: "Too many attempts",
        lo: "ພະຍາຍາມຫຼາຍເທື່ອເກີນໄປ",
    }
    ErrorTooManySignIns {
        en: "Too many failed sign-ins for this account or from this computer. Please wait the few seconds or minutes shown by your browser, then try again; a supervisor can clear the wait.",
        lo: "ເຂົ້າສູ່ລະບົບບໍ່ສຳເລັດຫຼາຍເທື່ອເກີນໄປ ສຳລັບບັນຊີນີ້ ຫຼື ຄອມພິວເຕີນີ້. ກະລຸນາລໍຖ້າຈັກໜ່ອຍ ແລ້ວລອງໃໝ່; ຫົວໜ້າສາມາດຍົກເລີກການລໍຖ້າໄດ້.",
    }
    NavSignIns {
        en: "Sign-ins",
        lo: "ການເຂົ້າລະບົບ",
    }
    SignInsTitle {
        en: "Delayed sign-ins",
        lo: "ການເຂົ້າລະບົບທີ່ຖືກໃຫ້ລໍຖ້າ",
    }
    SignInsIntro {
        en: "Accounts with recent wrong passwords wait longer before each new try. Clear the wait when a clerk cannot sign in because of someone else's attempts.",
        lo: "ບັນຊີທີ່ມີການໃສ່ລະຫັດຜ່ານຜິດເມື່ອບໍ່ດົນມານີ້ ຕ້ອງລໍຖ້າດົນຂຶ້ນກ່ອນລອງໃໝ່ແຕ່ລະເທື່ອ. ຍົກເລີກການລໍຖ້າເມື່ອພະນັກງານເຂົ້າລະບົບບໍ່ໄດ້ຍ້ອນການພະຍາຍາມຂອງຄົນອື່ນ.",
    }
    SignInsNone {
        en: "No account is waiting.",
        lo: "ບໍ່ມີບັນຊີໃດທີ່ຕ້ອງລໍຖ້າ.",
    }
    SignInsFailures {
        en: "Wrong passwords",
        lo: "ລະຫັດຜ່ານຜິດ",
    }
    SignInsWait {
        en: "Wait left",
        lo: "ເວລາລໍຖ້າທີ່ເຫຼືອ",
    }
    SignInsUnlock {
        en: "Clear the wait",
        lo: "ຍົກເລີກການລໍຖ້າ",
    }
    ErrorSignInBusy {
        en: "Many people are signing in right now. Please try again in a moment.",
        lo: "ມີຫຼາຍຄົນກຳລັງເຂົ້າສູ່ລະບົບໃນຕອນນີ້. ກະລຸນາລອງໃໝ່ໃນອີກບໍ່ດົນ.",
    }
    ErrorFormExpired {
        en: "This form has expired or did not come from this site. Go back, reload the page and try again.",
        lo: "ແບບຟອມນີ້ໝົດອາຍຸ ຫຼື ບໍ່ໄດ້ມາຈາກເວັບໄຊນີ້. ກະລຸນາກັບຄືນ, ໂຫຼດໜ້າໃໝ່ ແລ້ວລອງອີກຄັ້ງ.",
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
