//! The tools' arguments: one struct per shape, their JSON Schemas as the
//! tools' `inputSchema`, and the lenient reading every MCP client needs.
//!
//! Clients differ. MCP Inspector (0.15, and its `--cli`) shows an optional
//! argument typed `["integer", "null"]` as a text box and sends what is typed
//! there as a string, so each schema here names one plain type per argument
//! (optional ones are simply not `required`), and a number or a boolean is
//! also read from a string (`"3"`, `"true"`). Arguments that do not fit are
//! not rmcp's plain-text error but an `mcp-error` document like every other
//! refusal ([`Parameters`]).

use std::borrow::Cow;

use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::CallToolResult;
use schemars::{JsonSchema, SchemaGenerator};
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

/// A tool's arguments, or the tool error that refuses them (exit code 2,
/// nothing ran). It stands in for rmcp's `Parameters`, whose errors are
/// plain text; the `#[tool]` macro finds a tool's input schema by this
/// name, and the schema is exactly `T`'s.
pub(super) struct Parameters<T>(pub(super) Result<T, CallToolResult>);

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, rmcp::ErrorData> {
        let arguments = context.arguments.take().unwrap_or_default();
        let read = serde_json::from_value(Value::Object(arguments)).map_err(|e| {
            super::failure(
                &[],
                crate::error::EXIT_REFUSED.into(),
                &format!(
                    "error: invalid arguments for `{}`: {e}\nhint: the tool's `inputSchema` (tools/list) names its arguments and their types\n",
                    context.name
                ),
                "",
            )
        });
        Ok(Parameters(read))
    }
}

/// One plain `type` per property: `["string", "null"]` becomes `"string"`.
/// An optional argument is one left out of `required`; null is still read
/// as "not given".
fn plain_types(schema: &mut schemars::Schema) {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for property in properties.values_mut() {
        let Some(types) = property.get_mut("type") else {
            continue;
        };
        if let Some(list) = types.as_array() {
            let plain: Vec<&Value> = list.iter().filter(|t| *t != "null").collect();
            if let [one] = plain.as_slice() {
                *types = (*one).clone();
            }
        }
    }
}

/// A whole number, given as one or as a string of one (`3`, `"3"`); null
/// or an empty string is "not given".
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    let text = match &value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => other.to_string(),
    };
    text.parse::<u32>().map(Some).map_err(|_| {
        D::Error::custom(format!(
            "expected a whole number from 0 to {}, as a number or a string, got {}",
            u32::MAX,
            value.unwrap_or_default()
        ))
    })
}

/// `true` or `false`, given as a boolean or as a string (`"true"`); null or
/// an empty string is "not given".
fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    match &value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(D::Error::custom(format!(
                "expected true or false, as a boolean or a string, got {}",
                value.unwrap_or_default()
            ))),
        },
        Some(other) => Err(D::Error::custom(format!(
            "expected true or false, as a boolean or a string, got {other}"
        ))),
    }
}

/// Where and which plan.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct PlanInput {
    /// The plan's name; may be left out when exactly one plan is active (or when `repo` is a task's worktree)
    pub(super) plan: Option<String>,
    /// Directory to run in: the repository the server serves or one of its worktrees, absolute or relative to the server's directory (default: the server's directory); another repository is refused
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct FileInput {
    /// The plan file (.toml, .yaml or .yml), relative to `repo`
    pub(super) file: String,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct StartInput {
    /// The plan file (.toml, .yaml or .yml), relative to `repo`
    pub(super) file: String,
    /// Revision to build on (default: the plan's `base`, else HEAD)
    pub(super) base: Option<String>,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct TaskInput {
    /// The task id, as in the plan
    pub(super) id: String,
    /// The plan's name (needed when several plans are active)
    pub(super) plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct DoneInput {
    /// The task id
    pub(super) id: String,
    /// Commit message for changes left uncommitted in the worktree (default: "<id>: <title>")
    pub(super) message: Option<String>,
    /// The handoff note: a short summary for the tasks after this one (what was done, what to know). Default: the worktree's handoff file, if written
    pub(super) handoff: Option<String>,
    /// The plan's name (needed when several plans are active)
    pub(super) plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct FailInput {
    /// The task id
    pub(super) id: String,
    /// Why it failed (kept in the state, shown by status)
    pub(super) reason: Option<String>,
    /// The plan's name (needed when several plans are active)
    pub(super) plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct ResetInput {
    /// The task id
    pub(super) id: String,
    /// Take the task even from a runner that looks alive (its work is still preserved)
    #[serde(default, deserialize_with = "boolean")]
    #[schemars(with = "bool")]
    pub(super) force: Option<bool>,
    /// The plan's name (needed when several plans are active)
    pub(super) plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct RejectInput {
    /// The task id
    pub(super) id: String,
    /// The reviewer's comments, handed back to the task's agent
    pub(super) comments: Option<String>,
    /// The plan's name (needed when several plans are active)
    pub(super) plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct CheckpointInput {
    /// The plan's name; may be left out when exactly one plan is active
    pub(super) plan: Option<String>,
    /// The phase (default: the current one)
    pub(super) phase: Option<String>,
    /// Run every gate even if it passed on this tree before
    #[serde(default, deserialize_with = "boolean")]
    #[schemars(with = "bool")]
    pub(super) no_cache: Option<bool>,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct RollbackInput {
    /// The plan's name; may be left out when exactly one plan is active
    pub(super) plan: Option<String>,
    /// A checkpointed phase, or `start` (default: the latest checkpoint)
    pub(super) to: Option<String>,
    /// Restore the state from before the latest rollback instead
    #[serde(default, deserialize_with = "boolean")]
    #[schemars(with = "bool")]
    pub(super) undo: Option<bool>,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = plain_types)]
pub(super) struct LogInput {
    /// The plan's name; may be left out when exactly one plan is active
    pub(super) plan: Option<String>,
    /// At most this many events, newest first
    #[serde(default, deserialize_with = "whole_number")]
    #[schemars(with = "u32")]
    pub(super) max: Option<u32>,
    /// Directory to run in (default: the server's directory)
    pub(super) repo: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(args: Value) -> Result<Option<u32>, String> {
        serde_json::from_value::<LogInput>(args)
            .map(|l| l.max)
            .map_err(|e| e.to_string())
    }

    fn force(args: Value) -> Result<Option<bool>, String> {
        serde_json::from_value::<ResetInput>(args)
            .map(|r| r.force)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_are_read_from_numbers_and_strings() {
        assert_eq!(log(json!({ "max": 3 })), Ok(Some(3)));
        assert_eq!(log(json!({ "max": "3" })), Ok(Some(3)));
        assert_eq!(log(json!({ "max": " 7 " })), Ok(Some(7)));
        assert_eq!(log(json!({ "max": null })), Ok(None));
        assert_eq!(log(json!({ "max": "" })), Ok(None));
        assert_eq!(log(json!({})), Ok(None));
        for bad in [json!("x"), json!(-1), json!(1.5), json!(true), json!([1])] {
            let err = log(json!({ "max": bad })).expect_err("refused");
            assert!(err.contains("expected a whole number"), "{bad}: {err}");
        }
    }

    #[test]
    fn booleans_are_read_from_booleans_and_strings() {
        let id = "a";
        assert_eq!(force(json!({ "id": id, "force": true })), Ok(Some(true)));
        assert_eq!(force(json!({ "id": id, "force": "true" })), Ok(Some(true)));
        assert_eq!(
            force(json!({ "id": id, "force": "False" })),
            Ok(Some(false))
        );
        assert_eq!(force(json!({ "id": id, "force": "" })), Ok(None));
        assert_eq!(force(json!({ "id": id })), Ok(None));
        for bad in [json!("yes"), json!(1), json!({})] {
            let err = force(json!({ "id": id, "force": bad })).expect_err("refused");
            assert!(err.contains("expected true or false"), "{bad}: {err}");
        }
        assert!(force(json!({ "id": id, "forse": true }))
            .is_err_and(|e| e.contains("unknown field `forse`")));
    }

    #[test]
    fn every_property_has_one_plain_type_and_optional_ones_are_not_required() {
        let schema = serde_json::to_value(schemars::schema_for!(LogInput)).expect("schema");
        let props = &schema["properties"];
        assert_eq!(props["max"]["type"], "integer", "{schema:#}");
        assert_eq!(props["plan"]["type"], "string", "{schema:#}");
        assert_eq!(props["repo"]["type"], "string", "{schema:#}");
        assert!(schema.get("required").is_none(), "{schema:#}");
        let schema = serde_json::to_value(schemars::schema_for!(ResetInput)).expect("schema");
        assert_eq!(schema["properties"]["force"]["type"], "boolean");
        assert_eq!(schema["required"], json!(["id"]), "{schema:#}");
    }
}
