//! The configuration reference, generated from the types themselves: every field with its
//! type, default and meaning (its doc comment), as one Markdown table. `docs/config.md` is
//! this output; a test fails when the file and the code differ, so the reference cannot go
//! stale, and another checks the README's example against it.

use serde_json::{Map, Value};

/// One field of the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Dotted TOML path: `upstreams[].name`, `plans.<name>.key.requests_per_minute`.
    pub path: String,
    pub kind: String,
    /// As written in TOML; empty when the field has no default (it must be given, or it
    /// is optional and unset means "none").
    pub default: String,
    pub required: bool,
    pub meaning: String,
}

/// Every field of [`crate::Config`], in path order.
pub fn fields() -> Vec<Field> {
    let schema = schemars::schema_for!(crate::Config);
    let root = schema.as_value();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    walk_struct(root, "", &defs, &mut out);
    // A field declared again with the same meaning elsewhere (the global `[guard]` repeats
    // `GuardSpec`'s) is documented once, where it is declared first.
    for field in out.iter_mut().filter(|f| f.meaning.is_empty()) {
        let name = field.path.rsplit('.').next().unwrap_or_default();
        if let Some(meaning) = shared_meaning(name, &defs) {
            field.meaning = meaning;
        }
    }
    out
}

/// The one description that other types give a field called `name`, if they agree.
fn shared_meaning(name: &str, defs: &Map<String, Value>) -> Option<String> {
    let mut found: Vec<String> = defs
        .values()
        .filter_map(|def| description(def.get("properties")?.get(name)?))
        .collect();
    found.dedup();
    (found.len() == 1).then(|| found.remove(0))
}

/// The reference as Markdown.
pub fn markdown() -> String {
    let mut text = String::from(
        "# Configuration reference\n\n\
         Every field of the TOML configuration, generated from the code by \
         `portcullis config-reference` (a test fails when this file and the code differ). \
         Every section is optional. A field can also be set from the environment as \
         `PORTCULLIS_<SECTION>__<FIELD>` (see the README). `<name>` stands for a name you \
         choose (a plan, a role, a tenant); `[]` for an entry of a list of tables \
         (`[[upstreams]]`).\n\n\
         | field | type | default | meaning |\n| --- | --- | --- | --- |\n",
    );
    for f in fields() {
        let default = if f.required {
            "required".to_owned()
        } else if f.default.is_empty() {
            "unset".to_owned()
        } else {
            format!("`{}`", f.default)
        };
        text.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            f.path,
            cell(&f.kind),
            cell(&default),
            cell(&f.meaning)
        ));
    }
    text
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Follows a `$ref`, and the `anyOf [T, null]` of an optional field, to the type itself.
fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> (&'a Value, bool) {
    let mut optional = false;
    let mut current = schema;
    loop {
        if let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            let name = reference.trim_start_matches("#/$defs/");
            match defs.get(name) {
                Some(def) => {
                    current = def;
                    continue;
                }
                None => return (current, optional),
            }
        }
        if let Some(any) = current.get("anyOf").and_then(Value::as_array) {
            let not_null: Vec<&Value> = any
                .iter()
                .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if not_null.len() == 1 && any.len() == 2 {
                optional = true;
                current = not_null[0];
                continue;
            }
        }
        return (current, optional);
    }
}

fn is_struct(schema: &Value) -> bool {
    schema.get("properties").is_some()
}

fn walk_struct(schema: &Value, prefix: &str, defs: &Map<String, Value>, out: &mut Vec<Field>) {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        walk_field(property, path, required.contains(&name.as_str()), defs, out);
    }
}

fn walk_field(
    property: &Value,
    path: String,
    required: bool,
    defs: &Map<String, Value>,
    out: &mut Vec<Field>,
) {
    let (target, optional) = resolve(property, defs);
    if is_struct(target) {
        return walk_struct(target, &path, defs, out);
    }
    if let Some(values) = target.get("additionalProperties").filter(|v| v.is_object()) {
        let (value, _) = resolve(values, defs);
        if is_struct(value) {
            return walk_struct(value, &format!("{path}.<name>"), defs, out);
        }
    }
    if let Some(items) = target.get("items") {
        let (item, _) = resolve(items, defs);
        if is_struct(item) {
            return walk_struct(item, &format!("{path}[]"), defs, out);
        }
    }
    let meaning = description(property).or_else(|| description(target));
    out.push(Field {
        path,
        kind: kind(target, defs, optional),
        default: property.get("default").map(toml_value).unwrap_or_default(),
        required,
        meaning: meaning.unwrap_or_default(),
    });
}

fn description(schema: &Value) -> Option<String> {
    let text = schema.get("description")?.as_str()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The type as a reader of TOML sees it.
fn kind(schema: &Value, defs: &Map<String, Value>, optional: bool) -> String {
    let base = if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        values
            .iter()
            .map(|v| format!("`{}`", toml_value(v)))
            .collect::<Vec<_>>()
            .join(" or ")
    } else if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        variants
            .iter()
            .filter_map(|v| v.get("const").or_else(|| v.get("enum")?.get(0)))
            .map(|v| format!("`{}`", toml_value(v)))
            .collect::<Vec<_>>()
            .join(" or ")
    } else {
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        match types.first().copied() {
            Some("string") if schema.get("format").and_then(Value::as_str) == Some("duration") => {
                "duration".to_owned()
            }
            Some("array") => {
                let item = schema
                    .get("items")
                    .map(|i| {
                        let (i, _) = resolve(i, defs);
                        kind(i, defs, false)
                    })
                    .unwrap_or_else(|| "value".to_owned());
                format!("list of {item}")
            }
            Some("object") => {
                let value = schema
                    .get("additionalProperties")
                    .filter(|v| v.is_object())
                    .map(|v| {
                        let (v, _) = resolve(v, defs);
                        kind(v, defs, false)
                    })
                    .unwrap_or_else(|| "value".to_owned());
                format!("table of {value}")
            }
            Some(t) => t.to_owned(),
            None => "value".to_owned(),
        }
    };
    let nullable =
        matches!(schema.get("type"), Some(Value::Array(ts)) if ts.iter().any(|t| t == "null"));
    if optional || nullable {
        format!("{base}, optional")
    } else {
        base
    }
}

/// A JSON default written as TOML (the empty string for none).
fn toml_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        Value::Object(_) => String::new(),
        other => other.to_string(),
    }
}
