//! The JSON Schema (draft-07) of the scenario language, generated from the types of
//! [`crate::model`] and printed by `trapezoid schema`. Editors that read JSON Schemas (the
//! YAML language server behind VS Code's YAML extension, JetBrains IDEs) use it to complete
//! keys, show the documentation of each one and flag mistakes while a scenario is written.
//!
//! The schema describes what the parser accepts; the checks that need the whole scenario
//! (host names, variables, regexes) are still made by [`crate::model::parse_scenario`]. YAML's
//! empty value and `~` are both `null` once read as JSON: the schema takes `null` where the
//! parser takes an empty value (`vars:` with nothing after it is an empty map).

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::model::{Scenario, DEFAULT_ALGORITHM, DEFAULT_SEED, DEFAULT_TIMEOUT_MS};
use crate::template;

/// The schema as a JSON value.
pub fn schema() -> Value {
    let mut schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Scenario>()
        .to_value();
    if let Value::Object(root) = &mut schema {
        root.insert("title".into(), "Trapezoid scenario".into());
    }
    plain_descriptions(&mut schema);
    let strict: Vec<(&str, Value)> = STRICT_TEXT
        .iter()
        .filter_map(|name| Some((*name, schema["definitions"].as_object_mut()?.remove(*name)?)))
        .collect();
    widen_text(&mut schema);
    for (name, definition) in strict {
        schema["definitions"][name] = definition;
    }
    schema
}

/// Definitions read through serde's buffering (the untagged `AuthSteps`), where a string
/// field takes only a string.
const STRICT_TEXT: &[&str] = &["AuthStep"];

/// The schema as pretty-printed JSON, ending with a newline: what `trapezoid schema` prints
/// and `docs/scenario.schema.json` holds.
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).expect("a JSON value serialises");
    text.push('\n');
    text
}

/// serde_yaml gives a string field the text of any scalar: `password: 1234`, `name: true`,
/// even `name: ~`, are strings to the parser, so the schema takes every scalar where the types
/// hold a plain `String`. Strings with a shape (a `pattern`, a `const`) keep it, and so do the
/// shorthands, which refuse floats and null, and the [`STRICT_TEXT`] definitions.
fn widen_text(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let plain = ["format", "pattern", "const", "enum"]
                .iter()
                .all(|k| !map.contains_key(*k));
            if plain {
                let scalars = json!(["string", "number", "boolean", "null"]);
                match map.get("type") {
                    Some(t) if *t == json!("string") || *t == json!(["string", "null"]) => {
                        map.insert("type".into(), scalars);
                    }
                    _ => {}
                }
            }
            map.values_mut().for_each(widen_text);
        }
        Value::Array(items) => items.iter_mut().for_each(widen_text),
        _ => {}
    }
}

/// Makes the doc comments read well in an editor's hover: lines unwrapped (paragraphs stay
/// apart), the constants that rustdoc links name replaced by their values, and the links into
/// the code dropped.
fn plain_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(text) if key == "description" => *text = plain(text),
                    _ => plain_descriptions(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(plain_descriptions),
        _ => {}
    }
}

fn plain(text: &str) -> String {
    let mut text = text
        .split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    for (link, value) in [
        ("[`DEFAULT_SEED`]", DEFAULT_SEED.to_string()),
        ("[`DEFAULT_TIMEOUT_MS`]", DEFAULT_TIMEOUT_MS.to_string()),
        ("[`DEFAULT_ALGORITHM`]", format!("`{DEFAULT_ALGORITHM}`")),
        (
            "[`template::RESPONSE`]",
            format!("`{}`", template::RESPONSE),
        ),
    ] {
        text = text.replace(link, &value);
    }
    // `(see [`AuthStep::algorithm_name`])`: a pointer into the code.
    while let Some(start) = text.find(" (see [`") {
        let Some(len) = text[start..].find("`])") else {
            break;
        };
        text.replace_range(start..start + len + 3, "");
    }
    // `The semantics are in [`crate::matcher::check`].`: the same, as a sentence.
    while let Some(link) = text.find("[`crate::") {
        let start = text[..link].rfind(". ").map_or(0, |i| i + 1);
        let end = text[link..].find('.').map_or(text.len(), |i| link + i + 1);
        text.replace_range(start..end, "");
    }
    text.replace("[`", "`").replace("`]", "`").trim().to_owned()
}
