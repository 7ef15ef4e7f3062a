//! The JSON documents git-orch prints. Every `--json` output (and
//! `report --format json`) is one object that opens with its schema's name
//! and version, `{"schema": "status", "schema_version": 1, …}`; the JSON
//! Schema of each lives in `schemas/<name>.json`, is built into the binary
//! and is printed by `git orch schema NAME`. [`Schema`] is the one list of
//! names: an output cannot be printed without one ([`crate::ui::json_doc`]).
//!
//! Versioning: a field removed, renamed or changed in meaning bumps that
//! schema's version; a field added does not (readers ignore what they do
//! not know; the schema file gains it in the same change).

use serde::Serialize;

/// One shape of JSON output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    Check,
    Start,
    Status,
    Run,
    TaskStart,
    TaskDone,
    TaskNext,
    Task,
    Checkpoint,
    Rollback,
    RollbackUndo,
    Finish,
    Log,
    LogFile,
    Gate,
    PrePush,
    HookStatus,
    List,
    Report,
    McpError,
    NotifyEvent,
    Trust,
    TrustList,
    PlanAmend,
    Abandon,
    Sync,
    Agents,
    TaskShow,
}

impl Schema {
    pub const ALL: [Schema; 28] = [
        Schema::Check,
        Schema::Start,
        Schema::Status,
        Schema::Run,
        Schema::TaskStart,
        Schema::TaskDone,
        Schema::TaskNext,
        Schema::Task,
        Schema::Checkpoint,
        Schema::Rollback,
        Schema::RollbackUndo,
        Schema::Finish,
        Schema::Log,
        Schema::LogFile,
        Schema::Gate,
        Schema::PrePush,
        Schema::HookStatus,
        Schema::List,
        Schema::Report,
        Schema::McpError,
        Schema::NotifyEvent,
        Schema::Trust,
        Schema::TrustList,
        Schema::PlanAmend,
        Schema::Abandon,
        Schema::Sync,
        Schema::Agents,
        Schema::TaskShow,
    ];

    /// The name in the `schema` field, `git orch schema NAME` and the file
    /// name under `schemas/`; with the JSON Schema text built in.
    fn entry(self) -> (&'static str, &'static str) {
        macro_rules! file {
            ($name:literal) => {
                ($name, include_str!(concat!("../schemas/", $name, ".json")))
            };
        }
        match self {
            Schema::Check => file!("check"),
            Schema::Start => file!("start"),
            Schema::Status => file!("status"),
            Schema::Run => file!("run"),
            Schema::TaskStart => file!("task-start"),
            Schema::TaskDone => file!("task-done"),
            Schema::TaskNext => file!("task-next"),
            Schema::Task => file!("task"),
            Schema::Checkpoint => file!("checkpoint"),
            Schema::Rollback => file!("rollback"),
            Schema::RollbackUndo => file!("rollback-undo"),
            Schema::Finish => file!("finish"),
            Schema::Log => file!("log"),
            Schema::LogFile => file!("log-file"),
            Schema::Gate => file!("gate"),
            Schema::PrePush => file!("pre-push"),
            Schema::HookStatus => file!("hook-status"),
            Schema::List => file!("list"),
            Schema::Report => file!("report"),
            Schema::McpError => file!("mcp-error"),
            Schema::NotifyEvent => file!("notify-event"),
            Schema::Trust => file!("trust"),
            Schema::TrustList => file!("trust-list"),
            Schema::PlanAmend => file!("plan-amend"),
            Schema::Abandon => file!("abandon"),
            Schema::Sync => file!("sync"),
            Schema::Agents => file!("agents"),
            Schema::TaskShow => file!("task-show"),
        }
    }

    pub fn name(self) -> &'static str {
        self.entry().0
    }

    /// The JSON Schema (draft 2020-12), exactly as in `schemas/<name>.json`.
    pub fn text(self) -> &'static str {
        self.entry().1
    }

    /// Bumped when a field is removed or changes meaning (module docs).
    pub fn version(self) -> u32 {
        1
    }

    pub fn from_name(name: &str) -> Option<Schema> {
        Schema::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// `{"schema": …, "schema_version": …}` first, then the body's own fields.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    schema: &'static str,
    schema_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// The document as printed: pretty JSON, no trailing newline. The body
/// must serialise as an object (a struct or a `json!({…})`); anything else
/// is an error, never a document without its envelope.
pub fn document<T: Serialize>(schema: Schema, body: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Envelope {
        schema: schema.name(),
        schema_version: schema.version(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_comes_first_and_keeps_the_body() {
        let doc = document(
            Schema::Finish,
            &serde_json::json!({ "plan": "p", "finished": true }),
        )
        .expect("an object serialises");
        let head = "{\n  \"schema\": \"finish\",\n  \"schema_version\": 1,\n";
        assert!(doc.starts_with(head), "{doc}");
        let v: serde_json::Value = serde_json::from_str(&doc).expect("JSON");
        assert_eq!(v["plan"], "p");
        assert_eq!(v["finished"], true);
    }

    #[test]
    fn a_body_that_is_not_an_object_is_an_error() {
        assert!(document(Schema::List, &serde_json::json!([1, 2])).is_err());
    }

    #[test]
    fn names_are_unique_and_read_back() {
        for s in Schema::ALL {
            assert_eq!(Schema::from_name(s.name()), Some(s));
        }
        assert_eq!(Schema::from_name("nope"), None);
    }
}
