//! The working calendar: which days count towards a time limit, and when a task falls due.

use time::{Date, OffsetDateTime, Time, UtcOffset, Weekday};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    pub date: Date,
    pub name_en: String,
    pub name_lo: String,
}

/// Working days and public holidays, used to turn "5 working days" into a due time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Offset of the government's civil time (Laos: UTC+07:00, no daylight saving).
    pub utc_offset: UtcOffset,
    pub working_days: Vec<Weekday>,
    /// Sorted by date, no duplicates.
    pub holidays: Vec<Holiday>,
}

impl Calendar {
    pub fn is_working_day(&self, date: Date) -> bool {
        self.working_days.contains(&date.weekday())
            && self
                .holidays
                .binary_search_by_key(&date, |h| h.date)
                .is_err()
    }

    pub fn holiday_on(&self, date: Date) -> Option<&Holiday> {
        self.holidays
            .binary_search_by_key(&date, |h| h.date)
            .ok()
            .map(|i| &self.holidays[i])
    }
}

impl Calendar {
    /// When a task handed over at `start` with a limit of `working_days` falls due: the end
    /// (23:59:59 civil time) of the `working_days`-th working day after the hand-off day. The
    /// hand-off day itself never counts, so a task handed over late on Friday gets the whole of
    /// its limit. The due day is always a working day.
    pub fn due_at(&self, start: OffsetDateTime, working_days: u32) -> OffsetDateTime {
        let mut day = start.to_offset(self.utc_offset).date();
        let mut remaining = working_days.max(1);
        // A calendar with no working days is refused by validation; the cap keeps a hand-made
        // one from looping for ever.
        let mut guard = 0u32;
        while remaining > 0 && guard < 366 * 20 {
            guard += 1;
            day = day.next_day().unwrap_or(day);
            if self.is_working_day(day) {
                remaining -= 1;
            }
        }
        let end_of_day = Time::from_hms(23, 59, 59).unwrap_or(Time::MIDNIGHT);
        day.with_time(end_of_day).assume_offset(self.utc_offset)
    }

    /// Working days strictly after `due`'s day up to and including `now`'s day: how late a task
    /// is, as staff count it. Zero when not overdue.
    pub fn working_days_late(&self, due: OffsetDateTime, now: OffsetDateTime) -> u32 {
        if now <= due {
            return 0;
        }
        let mut day = due.to_offset(self.utc_offset).date();
        let last = now.to_offset(self.utc_offset).date();
        let mut late = 0;
        while day < last {
            day = day.next_day().unwrap_or(last);
            if self.is_working_day(day) {
                late += 1;
            }
        }
        late
    }

    /// A plain Monday-to-Friday calendar with no holidays, for tests and examples.
    pub fn weekdays(utc_offset: UtcOffset) -> Self {
        Calendar {
            utc_offset,
            working_days: vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
            holidays: Vec::new(),
        }
    }
}
