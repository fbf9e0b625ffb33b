//! `trapezoid schema`: the JSON Schema of the scenario language. The copy shipped in
//! docs/scenario.schema.json is what the command prints now, every scenario of the repository
//! validates against it, and documents the parser refuses do not.

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use trapezoid_scenarios::model::parse_scenario;

const SHIPPED: &str = "docs/scenario.schema.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema_command(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trapezoid"))
        .current_dir(root())
        .arg("schema")
        .args(args)
        .output()
        .unwrap()
}

fn shipped() -> Value {
    let text = std::fs::read_to_string(root().join(SHIPPED)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft7::new(&shipped()).expect("the schema compiles")
}

/// A YAML document as the JSON value an editor's validator sees.
fn json(yaml: &str) -> Value {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("not YAML: {e}\n{yaml}"))
}

fn errors(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let value = json(yaml);
    validator
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_shipped_schema_is_what_the_command_prints() {
    let out = schema_command(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let file = std::fs::read_to_string(root().join(SHIPPED)).unwrap();
    assert!(
        printed == file,
        "{SHIPPED} is stale: regenerate it with `cargo run -- schema -o {SHIPPED}`"
    );
    let value: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(value["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::draft7::meta::validate(&value).expect("a valid draft-07 schema");
}

#[test]
fn output_flag_writes_the_same_schema_to_a_file() {
    let dir = std::env::temp_dir().join(format!("trapezoid-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scenario.schema.json");
    let out = schema_command(&["-o", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        written,
        std::fs::read_to_string(root().join(SHIPPED)).unwrap()
    );
    let out = schema_command(&["-o", "/nonexistent/dir/s.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: /nonexistent/dir/s.json"));
}

/// The scenarios of the repository, and the YAML blocks of the reference that are whole
/// scenarios, with a name for each.
fn scenarios() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for dir in ["rfc3665", "scenarios/examples", "tests/drive"] {
        for path in common::yaml_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&path).unwrap();
            all.push((path.display().to_string(), text));
        }
    }
    let doc = std::fs::read_to_string(root().join("docs/scenarios.md")).unwrap();
    for (i, block) in doc.split("```yaml\n").skip(1).enumerate() {
        let block = &block[..block.find("```").expect("closed fence")];
        if block.starts_with("name:") && block.contains("\nsteps:") {
            all.push((
                format!("docs/scenarios.md block {}", i + 1),
                block.to_owned(),
            ));
        }
    }
    all
}

#[test]
fn every_scenario_of_the_repository_validates() {
    let validator = validator();
    let all = scenarios();
    let docs = all.iter().filter(|(n, _)| n.starts_with("docs/")).count();
    assert!(all.len() >= 30, "only {} scenarios found", all.len());
    assert!(
        docs >= 2,
        "only {docs} whole scenarios in docs/scenarios.md"
    );
    for (name, text) in &all {
        // They are scenarios for the parser too, so the schema is not merely loose.
        parse_scenario(name, text).unwrap_or_else(|e| panic!("{e}"));
        let errors = errors(&validator, text);
        assert!(errors.is_empty(), "{name}:\n{}", errors.join("\n"));
    }
}

const BASE: &str = "name: t
network: { latency_ms: 5 }
hosts:
  bob: { ua: { address: 192.0.2.201:5061 } }
  ss2: { element: { address: 192.0.2.222:5061, domains: [biloxi.example.com] } }
vars:
  call_id: c1
  cseq: 1
  tag: { random: tag }
steps:
  - send:
      from: bob
      to: ss2
      message: |
        REGISTER sip:biloxi.example.com SIP/2.0
        Call-ID: {{call_id}}
        CSeq: {{cseq}} REGISTER
        Content-Length: 0
  - expect:
      at: bob
      status: 200
      headers:
        Call-ID: \"{{call_id}}\"
        Expires: [3600, { present: true }]
        Contact: { param: { expires: \"3600\", q: { present: false } } }
  - wait_ms: 1000
";

#[test]
fn the_base_document_is_valid_for_both() {
    parse_scenario("t.yaml", BASE).unwrap();
    assert_eq!(errors(&validator(), BASE), Vec::<String>::new());
}

/// Each mistake is refused by the parser and by the schema.
#[test]
fn wrong_documents_do_not_validate() {
    let validator = validator();
    for (what, from, to) in [
        ("an unknown key in a step", "      at: bob\n", "      at: bob\n      statsu: 1\n"),
        ("an unknown step", "  - wait_ms: 1000", "  - sleep_ms: 1000"),
        (
            "a step with two keys",
            "  - wait_ms: 1000",
            "  - wait_ms: 1000\n    crash: ss2",
        ),
        ("an empty step", "  - wait_ms: 1000", "  - {}"),
        (
            "a host that is neither ua nor element",
            "{ ua: { address: 192.0.2.201:5061 } }",
            "{ phone: { address: 192.0.2.201:5061 } }",
        ),
        (
            "a host with both kinds",
            "{ ua: { address: 192.0.2.201:5061 } }",
            "{ ua: { address: 192.0.2.201:5061 }, element: { address: 192.0.2.1:5060, domains: [x] } }",
        ),
        ("a status that is text", "status: 200", "status: OK"),
        ("a status that is quoted", "status: 200", "status: \"200\""),
        ("a status out of range", "status: 200", "status: 42"),
        ("an unknown top-level key", "name: t\n", "name: t\nauthor: me\n"),
        ("no steps", "steps:\n", "stepz:\n"),
        ("an unknown network key", "latency_ms: 5", "latency: 5"),
        ("an element without domains", ", domains: [biloxi.example.com]", ""),
        ("an unknown random kind", "random: tag", "random: uuid"),
        ("a var with an extra key", "{ random: tag }", "{ random: tag, len: 4 }"),
        ("a float var", "cseq: 1", "cseq: 1.5"),
        ("an unknown matcher key", "{ present: true }", "{ presnt: true }"),
        ("an empty list of matchers", "Expires: [3600, { present: true }]", "Expires: []"),
        ("an unknown param matcher key", "{ present: false }", "{ absent: true }"),
        ("wait_ms as text", "wait_ms: 1000", "wait_ms: soon"),
        ("a partition of one host", "  - wait_ms: 1000", "  - partition: [ss2]"),
        (
            "an address that is a name",
            "address: 192.0.2.201:5061",
            "address: bob.example.com:5061",
        ),
        ("an address without a port", "address: 192.0.2.201:5061", "address: 192.0.2.201"),
        // `auth` is read through serde's buffering, where only a string is a string.
        (
            "a number as an auth password",
            "      to: ss2\n",
            "      to: ss2\n      auth: { username: a, password: 1234, realm: x, nonce: n, uri: \"sip:x\" }\n",
        ),
    ] {
        let text = BASE.replacen(from, to, 1);
        assert_ne!(text, BASE, "{what}: `{from}` not found");
        assert!(
            parse_scenario("t.yaml", &text).is_err(),
            "{what}: the parser accepts it"
        );
        assert!(
            !validator.is_valid(&json(&text)),
            "{what}: the schema accepts it\n{text}"
        );
    }
}

/// The shorthands and the optional forms the parser takes are valid for the schema too.
#[test]
fn the_forms_the_parser_accepts_validate() {
    let validator = validator();
    for (what, from, to) in [
        ("no vars, no network", "network: { latency_ms: 5 }\n", ""),
        ("a boolean var", "cseq: 1", "cseq: 1\n  flag: true"),
        // serde_yaml reads any scalar as text where a string is wanted.
        ("a number as a string", "name: t", "name: 12"),
        ("a number in a list of strings", "[biloxi.example.com]", "[biloxi.example.com, 7]"),
        ("a number as a string in a step", "      at: bob\n", "      at: bob\n      reason: 200\n"),
        ("an IPv6 address", "address: 192.0.2.201:5061", "address: \"[2001:db8::1]:5061\""),
        ("a number matcher", "Call-ID: \"{{call_id}}\"", "Max-Forwards: 70"),
        ("a boolean matcher", "Call-ID: \"{{call_id}}\"", "X-Flag: true"),
        ("a null reason", "status: 200", "status: 200\n      reason: ~"),
        ("a fault step", "  - wait_ms: 1000", "  - crash: ss2\n  - restart: ss2"),
        (
            "a partition and its heal",
            "  - wait_ms: 1000",
            "  - partition: [bob, ss2]\n  - heal: [ss2, bob]",
        ),
        (
            "a list of auth blocks",
            "      to: ss2\n",
            "      to: ss2\n      auth:\n        - { var: r1, username: a, password: p, realm: x, nonce: n, uri: \"sip:x\" }\n",
        ),
    ] {
        let text = BASE.replacen(from, to, 1);
        assert_ne!(text, BASE, "{what}: `{from}` not found");
        parse_scenario("t.yaml", &text).unwrap_or_else(|e| panic!("{what}: {e}"));
        let errors = errors(&validator, &text);
        assert!(errors.is_empty(), "{what}:\n{}\n{text}", errors.join("\n"));
    }
}

/// An empty value is an empty map, and `null` an absent option.
#[test]
fn empty_maps_and_nulls_validate() {
    let validator = validator();
    for text in [
        "name: t\nnetwork:\nhosts:\nvars:\nsteps: []\n",
        "name: t\ndescription: ~\nseed: ~\nhosts: {}\nvars: {}\nsteps: []\n",
        "name: t\nhosts: { b: { ua: { address: 192.0.2.1:5060 } } }\nsteps:\n  - expect: { at: b, method: OPTIONS, headers: }\n",
    ] {
        parse_scenario("t.yaml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let errors = errors(&validator, text);
        assert!(errors.is_empty(), "{}\n{text}", errors.join("\n"));
    }
}
