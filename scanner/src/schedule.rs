//! Cron schedules as Kubernetes users write them (`--revalidate-schedule`).
//!
//! The `cron` crate wants 6–7 fields (seconds first) and numbers weekdays Quartz-style
//! (1 = Sunday). Users paste the 5-field form of a Kubernetes CronJob: `minute hour
//! day-of-month month day-of-week`, weekdays 0–7 with 0 and 7 both Sunday, names (`MON`, `JAN`)
//! allowed, and — as in Vixie cron — when both day fields are restricted a day matching either
//! one fires. Both forms are accepted here (6 fields = seconds first) with those meanings; each
//! field is checked here so an error names it (`0 3 * 13 1-5`: "month field: 13 is out of range
//! 1-12"), then handed to the `cron` crate in its own terms.

use std::str::FromStr as _;

use chrono::{DateTime, Utc};

/// Why a schedule expression is refused. Definitive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron schedule {expression:?}: {reason}")]
pub struct ScheduleError {
    pub expression: String,
    pub reason: String,
}

impl ScheduleError {
    pub fn is_transient(&self) -> bool {
        false
    }
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    /// One schedule, or two when both day fields are restricted (either day fires).
    parts: Vec<cron::Schedule>,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
/// 0–7, 0 and 7 are Sunday; names map to 0–6.
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

impl CronSchedule {
    /// Parses the 5-field (Kubernetes) or 6-field (seconds first) form.
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let fail = |reason: String| ScheduleError {
            expression: expression.to_owned(),
            reason,
        };
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let (second, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(fail(format!(
                    "has {n} fields; write 5 (minute hour day-of-month month day-of-week, as in a Kubernetes CronJob) or 6 (seconds first)"
                )));
            }
        };
        let second = values(&SECOND, second).map_err(&fail)?;
        let minute = values(&MINUTE, rest[0]).map_err(&fail)?;
        let hour = values(&HOUR, rest[1]).map_err(&fail)?;
        let dom = values(&DAY_OF_MONTH, rest[2]).map_err(&fail)?;
        let month = values(&MONTH, rest[3]).map_err(&fail)?;
        let mut dow = values(&DAY_OF_WEEK, rest[4]).map_err(&fail)?;
        // 7 is Sunday too; Quartz numbers Sunday 1 … Saturday 7.
        if dow.contains(&7) {
            dow.retain(|d| *d != 7);
            if !dow.contains(&0) {
                dow.push(0);
            }
        }
        let quartz_dow: Vec<u32> = dow.iter().map(|d| d + 1).collect();
        let dom_any = is_any(rest[2]);
        let dow_any = is_any(rest[4]);
        let build = |dom: &str, dow: &str| -> Result<cron::Schedule, ScheduleError> {
            let text = format!(
                "{} {} {} {dom} {} {dow}",
                list(&second),
                list(&minute),
                list(&hour),
                list(&month)
            );
            cron::Schedule::from_str(&text)
                .map_err(|e| fail(format!("is not a schedule the cron library accepts: {e}")))
        };
        let parts = match (dom_any, dow_any) {
            (false, false) => vec![build(&list(&dom), "*")?, build("*", &list(&quartz_dow))?],
            (false, true) => vec![build(&list(&dom), "*")?],
            (true, false) => vec![build("*", &list(&quartz_dow))?],
            (true, true) => vec![build("*", "*")?],
        };
        Ok(CronSchedule {
            expression: expression.to_owned(),
            parts,
        })
    }

    /// As written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first time strictly after `after` (UTC) when the schedule fires.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.parts
            .iter()
            .filter_map(|s| s.after(&after).next())
            .min()
    }
}

fn is_any(field: &str) -> bool {
    field == "*" || field == "?"
}

fn list(values: &[u32]) -> String {
    let v: Vec<String> = values.iter().map(u32::to_string).collect();
    v.join(",")
}

/// Every value a field selects, checked against its range (an error names the field).
fn values(field: &Field, text: &str) -> Result<Vec<u32>, String> {
    let bad = |why: String| format!("{} field: {why}", field.name);
    let mut out = Vec::new();
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| bad(format!("step {s:?} is not a positive number")))?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(field, a).map_err(&bad)?,
                value(field, b).map_err(&bad)?,
            )
        } else {
            let v = value(field, range).map_err(&bad)?;
            // `5/15` means from 5 to the end in steps of 15.
            (v, if item.contains('/') { field.max } else { v })
        };
        if lo > hi {
            return Err(bad(format!("range {range:?} runs backwards")));
        }
        let mut v = lo;
        while v <= hi {
            if !out.contains(&v) {
                out.push(v);
            }
            v += step;
        }
    }
    if out.is_empty() {
        return Err(bad("selects nothing".into()));
    }
    out.sort_unstable();
    Ok(out)
}

fn value(field: &Field, text: &str) -> Result<u32, String> {
    if let Some(i) = field
        .names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
    {
        let base = if field.name == "month" { 1 } else { 0 };
        return Ok(i as u32 + base);
    }
    let v: u32 = text.parse().map_err(|_| {
        if field.names.is_empty() {
            format!("{text:?} is not a number")
        } else {
            format!(
                "{text:?} is not a number or one of {}",
                field.names.join(", ")
            )
        }
    })?;
    if v < field.min || v > field.max {
        return Err(format!("{v} is out of range {}-{}", field.min, field.max));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Weekday};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_mean_what_they_mean_to_kubernetes_users() {
        // 03:00 Monday–Friday. 2026-12-05 is a Saturday.
        let s = CronSchedule::parse("0 3 * * 1-5").unwrap();
        let mut t = at("2026-12-05T12:00:00Z");
        let mut fired = Vec::new();
        for _ in 0..6 {
            t = s.next_after(t).unwrap();
            fired.push(t);
        }
        assert_eq!(fired[0], at("2026-12-07T03:00:00Z"), "Monday first");
        for f in &fired {
            assert_eq!((f.hour(), f.minute(), f.second()), (3, 0, 0));
            assert!(!matches!(f.weekday(), Weekday::Sat | Weekday::Sun), "{f}");
        }
        assert_eq!(fired[5], at("2026-12-14T03:00:00Z"), "the weekend skipped");

        // 0 and 7 are both Sunday; names work.
        for e in ["30 6 * * 0", "30 6 * * 7", "30 6 * * SUN", "30 6 * * sun"] {
            let next = CronSchedule::parse(e)
                .unwrap()
                .next_after(at("2026-12-07T00:00:00Z"))
                .unwrap();
            assert_eq!(next, at("2026-12-13T06:30:00Z"), "{e}");
        }
        // Steps and lists.
        let s = CronSchedule::parse("*/15 * * * *").unwrap();
        assert_eq!(
            s.next_after(at("2026-12-07T10:07:00Z")),
            Some(at("2026-12-07T10:15:00Z"))
        );
        // Both day fields restricted: either fires (the 1st of the month, or any Monday).
        let s = CronSchedule::parse("0 0 1 * MON").unwrap();
        assert_eq!(
            s.next_after(at("2026-12-07T00:00:00Z")),
            Some(at("2026-12-14T00:00:00Z")),
            "next Monday before the 1st"
        );
        assert_eq!(
            s.next_after(at("2026-12-28T00:00:00Z")),
            Some(at("2027-01-01T00:00:00Z")),
            "the 1st before the next Monday"
        );
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let s = CronSchedule::parse("*/10 * * * * *").unwrap();
        assert_eq!(
            s.next_after(at("2026-12-07T10:00:03Z")),
            Some(at("2026-12-07T10:00:10Z"))
        );
        let s = CronSchedule::parse("0 0 3 * * MON-FRI").unwrap();
        let next = s.next_after(at("2026-12-05T12:00:00Z")).unwrap();
        assert_eq!(next, at("2026-12-07T03:00:00Z"));
        assert_eq!(next.weekday(), Weekday::Mon);
    }

    #[test]
    fn errors_name_the_field() {
        let e = CronSchedule::parse("0 3 * 13 1-5").unwrap_err();
        assert!(e.reason.contains("month field"), "{e}");
        assert!(e.reason.contains("13 is out of range 1-12"), "{e}");
        for (expr, field) in [
            ("60 * * * *", "minute field"),
            ("0 24 * * *", "hour field"),
            ("0 0 0 * *", "day-of-month field"),
            ("0 0 * * 8", "day-of-week field"),
            ("0 0 * * FUNDAY", "day-of-week field"),
            ("0 0 * * 5-1", "day-of-week field"),
            ("*/0 * * * *", "minute field"),
            ("61 0 0 * * *", "second field"),
        ] {
            let e = CronSchedule::parse(expr).unwrap_err();
            assert!(e.reason.contains(field), "{expr}: {e}");
        }
        let e = CronSchedule::parse("0 3 * *").unwrap_err();
        assert!(e.reason.contains("has 4 fields"), "{e}");
        assert!(CronSchedule::parse("@daily").is_err());
    }
}
