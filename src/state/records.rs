//! Task records, read when asked for. A snapshot of a 10,000-task plan must
//! cost as little as one of a 10-task plan, so nothing reads every record
//! unless it needs every record (`status`, `report`). Trees and records are
//! content addressed, so they are cached by object id for the whole
//! process: a runner that reloads the state after each change re-reads only
//! the few trees that change.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, Context, Result};
use git2::{ObjectType, Oid, Repository};

use super::layout;
use super::model::TaskState;

/// Entries of one tree: name → (id, is a tree).
type Entries = Arc<BTreeMap<String, (Oid, bool)>>;

/// Past this many cached objects the caches start over (a bound, not a policy).
const CACHE_LIMIT: usize = 200_000;

fn tree_cache() -> &'static Mutex<HashMap<Oid, Entries>> {
    static CACHE: OnceLock<Mutex<HashMap<Oid, Entries>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn record_cache() -> &'static Mutex<HashMap<Oid, Arc<TaskState>>> {
    static CACHE: OnceLock<Mutex<HashMap<Oid, Arc<TaskState>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

thread_local! {
    /// A repository handle per thread and git dir: git2 handles are not
    /// shared between threads, and opening one costs more than a read.
    static HANDLES: RefCell<HashMap<PathBuf, Repository>> = RefCell::new(HashMap::new());
}

fn with_repo<T>(git_dir: &PathBuf, f: impl FnOnce(&Repository) -> Result<T>) -> Result<T> {
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        if !handles.contains_key(git_dir) {
            let repo = Repository::open(git_dir)
                .with_context(|| format!("cannot open {}", git_dir.display()))?;
            handles.insert(git_dir.clone(), repo);
        }
        let repo = handles
            .get(git_dir)
            .ok_or_else(|| anyhow!("repository handle vanished"))?;
        f(repo)
    })
}

/// The entries of a tree, from the cache or the object database.
pub fn entries(repo: &Repository, tree: Oid) -> Result<Entries> {
    if let Some(hit) = lock(tree_cache()).get(&tree) {
        return Ok(hit.clone());
    }
    let t = repo
        .find_tree(tree)
        .with_context(|| format!("state tree {tree} is missing"))?;
    let mut map = BTreeMap::new();
    for e in t.iter() {
        let name = e
            .name()
            .ok_or_else(|| anyhow!("state tree {tree} has a name that is not UTF-8"))?;
        map.insert(
            name.to_string(),
            (e.id(), e.kind() == Some(ObjectType::Tree)),
        );
    }
    let map = Arc::new(map);
    let mut cache = lock(tree_cache());
    if cache.len() > CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(tree, map.clone());
    Ok(map)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Parses a task record blob (cached by id).
fn record(repo: &Repository, blob: Oid, id: &str) -> Result<Arc<TaskState>> {
    if let Some(hit) = lock(record_cache()).get(&blob) {
        return Ok(hit.clone());
    }
    let b = repo
        .find_blob(blob)
        .with_context(|| format!("the record of task `{id}` ({blob}) is missing"))?;
    let t: TaskState = serde_json::from_slice(b.content())
        .with_context(|| format!("the record of task `{id}` is corrupt"))?;
    let t = Arc::new(t);
    let mut cache = lock(record_cache());
    if cache.len() > CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(blob, t.clone());
    Ok(t)
}

/// Where a snapshot's task records come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A format-2 tree: `tasks/` of the state tree (`None`: no task has a record yet).
    Tree {
        git_dir: PathBuf,
        tasks: Option<Oid>,
    },
    /// Records held in memory: a format-1 state read whole.
    Memory(Arc<BTreeMap<String, TaskState>>),
}

/// The task records of one snapshot. A task without a record is pending
/// and has never run.
#[derive(Debug, Clone)]
pub struct Records {
    pub source: Source,
    memo: Arc<Mutex<HashMap<String, Option<Arc<TaskState>>>>>,
}

impl Records {
    pub fn new(source: Source) -> Records {
        Records {
            source,
            memo: Default::default(),
        }
    }

    /// The record of a task, if it has one.
    pub fn get(&self, id: &str) -> Result<Option<Arc<TaskState>>> {
        if let Some(hit) = lock(&self.memo).get(id) {
            return Ok(hit.clone());
        }
        let found = match &self.source {
            Source::Memory(all) => all.get(id).cloned().map(Arc::new),
            Source::Tree { tasks: None, .. } => None,
            Source::Tree {
                git_dir,
                tasks: Some(root),
            } => with_repo(git_dir, |repo| lookup(repo, *root, id))?,
        };
        lock(&self.memo).insert(id.to_string(), found.clone());
        Ok(found)
    }

    /// Every record, by task id (reads them all: for `status` and `report`).
    pub fn all(&self) -> Result<BTreeMap<String, Arc<TaskState>>> {
        match &self.source {
            Source::Memory(all) => Ok(all
                .iter()
                .map(|(k, v)| (k.clone(), Arc::new(v.clone())))
                .collect()),
            Source::Tree { tasks: None, .. } => Ok(BTreeMap::new()),
            Source::Tree {
                git_dir,
                tasks: Some(root),
            } => with_repo(git_dir, |repo| {
                let mut out = BTreeMap::new();
                for (_, (a, a_tree)) in entries(repo, *root)?.iter() {
                    if !a_tree {
                        continue;
                    }
                    for (_, (b, b_tree)) in entries(repo, *a)?.iter() {
                        if !b_tree {
                            continue;
                        }
                        for (name, (blob, is_tree)) in entries(repo, *b)?.iter() {
                            if let Some(id) = name.strip_suffix(".json").filter(|_| !is_tree) {
                                out.insert(id.to_string(), record(repo, *blob, id)?);
                            }
                        }
                    }
                }
                Ok(out)
            }),
        }
    }
}

/// `tasks/<h>/<h>/<id>.json` under the `tasks` tree `root`.
fn lookup(repo: &Repository, root: Oid, id: &str) -> Result<Option<Arc<TaskState>>> {
    let (a, b) = layout::fan(id);
    let mut tree = root;
    for part in [a.to_string(), b.to_string()] {
        match entries(repo, tree)?.get(&part) {
            Some((next, true)) => tree = *next,
            _ => return Ok(None),
        }
    }
    match entries(repo, tree)?.get(&format!("{id}.json")) {
        Some((blob, false)) => Ok(Some(record(repo, *blob, id)?)),
        _ => Ok(None),
    }
}
