//! Environment overrides: `PORTCULLIS_<SECTION>__<FIELD>=value` sets `[section] field`.
//!
//! Segments are separated by a double underscore and lower-cased, so
//! `PORTCULLIS_LISTENERS__PUBLIC` is `listeners.public` and `PORTCULLIS_UPSTREAMS__0__BASE_URL`
//! is `upstreams[0].base_url`. Only variables with at least one `__` are overrides, which keeps
//! other `PORTCULLIS_` variables (such as `PORTCULLIS_ADMIN_TOKEN`) out of the config. A value
//! that parses as a TOML value (`512`, `true`, `["a"]`) is taken as such, anything else as a
//! string.

use crate::{ConfigError, ENV_PREFIX};
use toml::{Table, Value};

pub(crate) fn apply_overrides(
    table: &mut Table,
    environment: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut overrides: Vec<(String, String)> = environment
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name.contains("__"))
        .collect();
    // Apply in a fixed order so the outcome does not depend on the environment's order.
    overrides.sort();
    for (name, raw) in overrides {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if path.iter().any(|s| s.is_empty()) {
            return Err(ConfigError::new(name, "empty path segment in override"));
        }
        set(table, &path, parse_value(&raw)).map_err(|problem| ConfigError::new(name, problem))?;
    }
    Ok(())
}

fn parse_value(raw: &str) -> Value {
    let wrapped = format!("v = {raw}");
    match toml::from_str::<Table>(&wrapped) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        Err(_) => Value::String(raw.to_owned()),
    }
}

fn set(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let mut root = Value::Table(std::mem::take(table));
    let outcome = set_in(&mut root, path, value);
    if let Value::Table(t) = root {
        *table = t;
    }
    outcome
}

fn set_in(cursor: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((segment, rest)) = path.split_first() else {
        *cursor = value;
        return Ok(());
    };
    let next = match cursor {
        Value::Table(t) => {
            if segment.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "`{segment}` indexes a list that the configuration file does not define"
                ));
            }
            t.entry(segment.clone())
                .or_insert_with(|| Value::Table(Table::new()))
        }
        Value::Array(items) => {
            let index: usize = segment
                .parse()
                .map_err(|_| format!("`{segment}` is not an index into a list"))?;
            let len = items.len();
            items.get_mut(index).ok_or_else(|| {
                format!("index {index} is out of range: the file defines {len} entries")
            })?
        }
        _ => return Err("the path goes through a value that is not a section".into()),
    };
    set_in(next, rest, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str, vars: &[(&str, &str)]) -> Result<Table, ConfigError> {
        let mut t: Table = toml::from_str(text).unwrap();
        apply_overrides(
            &mut t,
            vars.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )?;
        Ok(t)
    }

    #[test]
    fn sets_nested_fields_and_types() {
        let t = apply(
            "[[upstreams]]\nname='a'\nmax_concurrency=1\n",
            &[
                ("PORTCULLIS_LISTENERS__PUBLIC", "127.0.0.1:9"),
                ("PORTCULLIS_UPSTREAMS__0__MAX_CONCURRENCY", "7"),
                ("PORTCULLIS_DEV__ALLOW_ANONYMOUS", "true"),
            ],
        )
        .unwrap();
        assert_eq!(t["listeners"]["public"].as_str(), Some("127.0.0.1:9"));
        assert_eq!(t["upstreams"][0]["max_concurrency"].as_integer(), Some(7));
        assert_eq!(t["dev"]["allow_anonymous"].as_bool(), Some(true));
    }

    #[test]
    fn ignores_variables_without_a_path() {
        let t = apply("", &[("PORTCULLIS_ADMIN_TOKEN", "secret")]).unwrap();
        assert!(t.is_empty());
    }

    #[test]
    fn out_of_range_index_names_the_variable() {
        let err = apply("", &[("PORTCULLIS_UPSTREAMS__3__NAME", "x")]).unwrap_err();
        assert_eq!(err.field, "PORTCULLIS_UPSTREAMS__3__NAME");
    }
}
