//! Text output for people: times as RFC 3339 with how far away they are, and aligned tables.
//! (`--output json` keeps the API's numbers untouched.)

use serde_json::Value;

/// A Unix time in seconds (or, with `micros`, microseconds) as `2026-12-05T20:01:02Z (in 23h)`;
/// `-` when absent.
pub fn time(v: &Value, micros: bool) -> String {
    let Some(n) = v.as_i64() else {
        return "-".into();
    };
    let at = if micros {
        jiff::Timestamp::from_microsecond(n)
    } else {
        jiff::Timestamp::from_second(n)
    };
    let Ok(at) = at else {
        return n.to_string();
    };
    let now = jiff::Timestamp::now();
    let delta = at.as_second() - now.as_second();
    let rounded = at.round(jiff::Unit::Second).unwrap_or(at);
    format!("{rounded:.0} ({})", relative(delta))
}

/// "in 89 days", "3 minutes ago", "now".
pub fn relative(seconds: i64) -> String {
    let magnitude = seconds.unsigned_abs();
    let (n, unit) = match magnitude {
        0..=4 => return "now".into(),
        5..=119 => (magnitude, "second"),
        120..=7199 => (magnitude / 60, "minute"),
        7200..=172_799 => (magnitude / 3600, "hour"),
        _ => (magnitude / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if seconds > 0 {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "(none)".into();
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// A JSON list of strings as `a,b` (`-` when empty or absent).
pub fn names(v: &Value) -> String {
    let list: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_read_as_dates_with_distance() {
        assert_eq!(relative(89 * 86_400 + 100), "in 89 days");
        assert_eq!(relative(-180), "3 minutes ago");
        assert_eq!(relative(3600), "in 60 minutes");
        assert_eq!(relative(1), "now");
        assert_eq!(time(&json!(null), false), "-");
        let shown = time(&json!(1_796_403_839), false);
        assert!(shown.starts_with("2026-12-04T17:03:59Z ("), "{shown}");
        let micros = time(&json!(1_796_403_839_000_000i64), true);
        assert!(micros.starts_with("2026-12-04T17:03:59Z"), "{micros}");
    }

    #[test]
    fn tables_align_their_columns() {
        let t = table(
            &["ID", "TENANT"],
            &[
                vec!["a".into(), "acme".into()],
                vec!["bbbb".into(), "x".into()],
            ],
        );
        assert_eq!(t, "ID    TENANT\na     acme\nbbbb  x");
    }
}
