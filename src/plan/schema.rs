//! A walk over the untyped document that lists every unknown key with its
//! path. serde stops at the first unknown field and (for TOML) does not say
//! where in the tree it was; users fixing a plan want all of them at once.

pub const TOP: &[&str] = &[
    "name",
    "title",
    "base",
    "defaults",
    "gates",
    "phases",
    "notify",
    "agents",
    "worktrees",
];
pub const AGENT: &[&str] = &[
    "kind",
    "run",
    "command",
    "model",
    "args",
    "shell",
    "role",
    "description",
    "parallel",
    "env",
    "timeout",
    "retries",
    "retry_backoff",
    "retry_on",
    "usage_limit",
];
pub const USAGE_LIMIT: &[&str] = &["exit_codes", "output", "wait", "parks"];
pub const RETRY_ON: &[&str] = &["exit_codes", "output", "timeout"];
pub const WORKTREES: &[&str] = &["include", "setup", "setup_timeout"];
pub const NOTIFY: &[&str] = &["run", "events", "timeout"];
pub const DEFAULTS: &[&str] = &[
    "run",
    "timeout",
    "parallel",
    "merge",
    "checkout",
    "isolation",
    "network",
    "agent",
    "retries",
    "retry_backoff",
    "retry_on",
    "review",
    "on_gate_failure",
    "on_conflict",
    "on_failure",
];
pub const GATE: &[&str] = &["name", "run", "timeout"];
pub const PHASE: &[&str] = &[
    "id",
    "title",
    "gates",
    "tasks",
    "review",
    "on_gate_failure",
    "on_conflict",
    "on_failure",
];
pub const TASK: &[&str] = &[
    "id",
    "title",
    "prompt",
    "run",
    "files",
    "reads",
    "depends_on",
    "estimate",
    "timeout",
    "skip",
    "isolation",
    "network",
    "agent",
    "retries",
    "retry_backoff",
    "retry_on",
    "review",
];

/// The shape of a parsed document, independent of TOML or YAML.
pub enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    Leaf,
}

impl From<&toml::Value> for Node {
    fn from(v: &toml::Value) -> Node {
        match v {
            toml::Value::Table(t) => {
                Node::Map(t.iter().map(|(k, v)| (k.clone(), v.into())).collect())
            }
            toml::Value::Array(a) => Node::Seq(a.iter().map(Node::from).collect()),
            _ => Node::Leaf,
        }
    }
}

impl From<&serde_yaml::Value> for Node {
    fn from(v: &serde_yaml::Value) -> Node {
        use serde_yaml::Value as Y;
        match v {
            Y::Mapping(m) => Node::Map(
                m.iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Y::String(s) => s.clone(),
                            Y::Number(n) => n.to_string(),
                            Y::Bool(b) => b.to_string(),
                            _ => "?".to_string(),
                        };
                        (key, v.into())
                    })
                    .collect(),
            ),
            Y::Sequence(s) => Node::Seq(s.iter().map(Node::from).collect()),
            Y::Tagged(t) => (&t.value).into(),
            _ => Node::Leaf,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    pub key: String,
    /// `phases[0].tasks[1]`, or empty for the top level.
    pub path: String,
    pub expected: &'static [&'static str],
}

impl UnknownKey {
    pub fn message(&self) -> String {
        let place = if self.path.is_empty() {
            "the top level".to_string()
        } else {
            self.path.clone()
        };
        let expected: Vec<String> = self.expected.iter().map(|k| format!("`{k}`")).collect();
        format!(
            "unknown key `{}` in {place}; expected one of {}",
            self.key,
            expected.join(", ")
        )
    }
}

pub fn unknown_keys(root: &Node) -> Vec<UnknownKey> {
    let mut out = Vec::new();
    for (k, v) in entries(root, "", TOP, &mut out) {
        match k.as_str() {
            "defaults" => {
                let known = entries(v, "defaults", DEFAULTS, &mut out);
                retry_on(&known, "defaults", &mut out);
            }
            "agents" => {
                if let Node::Map(m) = v {
                    for (name, agent) in m {
                        let path = format!("agents.{name}");
                        let known = entries(agent, &path, AGENT, &mut out);
                        retry_on(&known, &path, &mut out);
                        for (k, v) in &known {
                            if k == "usage_limit" {
                                entries(v, &format!("{path}.usage_limit"), USAGE_LIMIT, &mut out);
                            }
                        }
                    }
                }
            }
            "gates" => gates(v, "gates", &mut out),
            "worktrees" => {
                entries(v, "worktrees", WORKTREES, &mut out);
            }
            "notify" => {
                for (i, n) in items(v).enumerate() {
                    entries(n, &format!("notify[{i}]"), NOTIFY, &mut out);
                }
            }
            "phases" => {
                for (i, phase) in items(v).enumerate() {
                    let path = format!("phases[{i}]");
                    for (k, v) in entries(phase, &path, PHASE, &mut out) {
                        match k.as_str() {
                            "gates" => gates(v, &format!("{path}.gates"), &mut out),
                            "tasks" => {
                                for (j, task) in items(v).enumerate() {
                                    let path = format!("{path}.tasks[{j}]");
                                    let known = entries(task, &path, TASK, &mut out);
                                    retry_on(&known, &path, &mut out);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The keys of a `retry_on` table among the known entries of `path`.
fn retry_on(known: &[&(String, Node)], path: &str, out: &mut Vec<UnknownKey>) {
    for (k, v) in known {
        if k == "retry_on" {
            entries(v, &format!("{path}.retry_on"), RETRY_ON, out);
        }
    }
}

fn gates(node: &Node, path: &str, out: &mut Vec<UnknownKey>) {
    for (i, g) in items(node).enumerate() {
        entries(g, &format!("{path}[{i}]"), GATE, out);
    }
}

fn items(node: &Node) -> std::slice::Iter<'_, Node> {
    match node {
        Node::Seq(s) => s.iter(),
        _ => [].iter(),
    }
}

/// The known entries of a map; unknown ones are recorded in `out`.
fn entries<'a>(
    node: &'a Node,
    path: &str,
    allowed: &'static [&'static str],
    out: &mut Vec<UnknownKey>,
) -> Vec<&'a (String, Node)> {
    let Node::Map(m) = node else {
        return Vec::new();
    };
    let mut known = Vec::new();
    for entry in m {
        if allowed.contains(&entry.0.as_str()) {
            known.push(entry);
        } else {
            out.push(UnknownKey {
                key: entry.0.clone(),
                path: path.to_string(),
                expected: allowed,
            });
        }
    }
    known
}
