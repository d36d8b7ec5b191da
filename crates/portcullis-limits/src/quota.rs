//! Calendar quotas: which day and month a request falls in, in the configured time zone, and
//! what the usage ledger must be asked to seed a quota counter.

use jiff::{civil::Date, tz::TimeZone, Timestamp, ToSpan};

/// Whose usage a quota counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaScope {
    Tenant(String),
    Key(String),
}

/// The calendar period a quota counts over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Period {
    /// A local day, `YYYY-MM-DD`.
    Day(String),
    /// A local month, `YYYY-MM`: every day whose name starts with it.
    Month(String),
    /// Since the beginning: spend caps.
    Total,
}

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Input plus output tokens.
    Tokens,
    /// Cost in nano-units of the configured currency.
    Cost,
}

/// Where a quota counter's starting value comes from: the ledger's total for this scope,
/// period and measure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaSeed {
    pub scope: QuotaScope,
    pub period: Period,
    pub measure: Measure,
}

/// The current day and month in one time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    zone: TimeZone,
}

/// The day and month that contain an instant, with the instants they end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Today {
    pub day: String,
    pub day_ends_us: u64,
    pub month: String,
    pub month_ends_us: u64,
}

impl Calendar {
    /// `name` is an IANA zone such as `Europe/Berlin`, or `UTC`. The zone database is
    /// compiled in, so this works on hosts without `/usr/share/zoneinfo`.
    pub fn new(name: &str) -> Result<Calendar, String> {
        TimeZone::get(name)
            .map(|zone| Calendar { zone })
            .map_err(|_| format!("unknown time zone `{name}`"))
    }

    pub fn utc() -> Calendar {
        Calendar {
            zone: TimeZone::UTC,
        }
    }

    /// The day and month of `now_us` (microseconds since 1970).
    pub fn today(&self, now_us: u64) -> Today {
        let now = Timestamp::from_microsecond(now_us.min(i64::MAX as u64) as i64)
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let date = now.to_zoned(self.zone.clone()).date();
        let start_of = |d: Date| -> u64 {
            d.to_zoned(self.zone.clone())
                .map(|z| z.timestamp().as_microsecond().max(0) as u64)
                .unwrap_or(u64::MAX)
        };
        let next_day = date.tomorrow().unwrap_or(date);
        let next_month = date.first_of_month().checked_add(1.month()).unwrap_or(date);
        Today {
            day: date.strftime("%Y-%m-%d").to_string(),
            day_ends_us: start_of(next_day),
            month: date.strftime("%Y-%m").to_string(),
            month_ends_us: start_of(next_month),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_follow_the_zone() {
        // 2026-11-30T23:30:00Z: still November in UTC, already December in Berlin.
        let instant = 1_796_081_400_000_000;
        let utc = Calendar::utc().today(instant);
        assert_eq!(utc.day, "2026-11-30");
        assert_eq!(utc.month, "2026-11");
        assert_eq!(utc.day_ends_us, 1_796_083_200_000_000);
        assert_eq!(utc.month_ends_us, utc.day_ends_us);
        let berlin = Calendar::new("Europe/Berlin").unwrap().today(instant);
        assert_eq!(berlin.day, "2026-12-01");
        assert_eq!(berlin.month, "2026-12");
        assert!(Calendar::new("Mars/Olympus").is_err());
    }
}
