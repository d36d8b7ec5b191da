//! Durations written the way people write them: "250ms", "2s", "5m", "1h 30m".

use serde::{Deserialize, Deserializer};

/// A duration read from a human-readable string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    pub fn get(self) -> std::time::Duration {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Duration).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}); write it like \"250ms\", \"2s\" or \"5m\""
            ))
        })
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "duration",
            "description": "A duration such as \"250ms\", \"2s\", \"5m\" or \"1h 30m\".",
        })
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // In the largest unit that divides it: 365 days is "365d", not "11months 30days
        // 3h 50m 24s" (humantime's months and years are averages).
        let d = self.0;
        let secs = d.as_secs();
        if d.subsec_nanos() != 0 || secs == 0 {
            return write!(f, "{}", humantime::format_duration(d));
        }
        for (unit, name) in [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")] {
            if secs.is_multiple_of(unit) {
                return write!(f, "{}{name}", secs / unit);
            }
        }
        unreachable!("every whole number of seconds divides by one")
    }
}

#[cfg(test)]
mod tests {
    use super::Duration;

    #[test]
    fn durations_are_shown_in_the_largest_whole_unit() {
        let shown = |secs: u64| Duration::from_secs(secs).to_string();
        assert_eq!(shown(365 * 86_400), "365d");
        assert_eq!(shown(90 * 60), "90m");
        assert_eq!(shown(7200), "2h");
        assert_eq!(shown(61), "61s");
        assert_eq!(
            Duration(std::time::Duration::from_millis(250)).to_string(),
            "250ms"
        );
    }
}
