//! Derived views of a snapshot: which phase is current, what state each
//! phase is in, which tasks may start. Nothing here is stored; it is all
//! computed from the plan and the state so it can never disagree with them.

use anyhow::Result;

use crate::plan::{Phase, Task};
use crate::state::{PhaseStatus, Snapshot, TaskStatus};

impl Snapshot {
    /// Reads the task's record (a corrupt one is an error, never pending).
    pub fn task_status(&self, id: &str) -> Result<TaskStatus> {
        Ok(self
            .tasks
            .get(id)?
            .map_or(TaskStatus::Pending, |t| t.state()))
    }

    /// Index of the first phase without a checkpoint; `None` when all have one.
    pub fn current_phase_index(&self) -> Option<usize> {
        self.plan
            .phases
            .iter()
            .position(|p| !self.is_checkpointed(&p.id))
    }

    pub fn current_phase(&self) -> Option<&Phase> {
        self.current_phase_index().map(|i| &self.plan.phases[i])
    }

    pub fn is_checkpointed(&self, phase: &str) -> bool {
        self.state
            .phases
            .get(phase)
            .is_some_and(|p| p.checkpoint.is_some())
    }

    pub fn phase_status(&self, phase: &str) -> PhaseStatus {
        let Some(index) = self.plan.phase_index(phase) else {
            return PhaseStatus::Pending;
        };
        if self.is_checkpointed(phase) {
            PhaseStatus::Checkpointed
        } else if Some(index) != self.current_phase_index() {
            PhaseStatus::Pending
        } else if self.state.phases.get(phase).is_some_and(|p| p.gates_failed) {
            PhaseStatus::Failed
        } else {
            PhaseStatus::Active
        }
    }

    /// Why `task` may not start now, or `None` when it may.
    pub fn blocked_reason(&self, task: &Task, phase: &Phase) -> Result<Option<String>> {
        match self.phase_status(&phase.id) {
            PhaseStatus::Checkpointed => {
                return Ok(Some(format!(
                    "its phase `{}` is already checkpointed",
                    phase.id
                )))
            }
            PhaseStatus::Pending => {
                let current = self.current_phase().map_or("?", |p| p.id.as_str());
                return Ok(Some(format!(
                    "its phase `{}` is not active yet (the current phase is `{current}`)",
                    phase.id
                )));
            }
            _ => {}
        }
        let mut waiting: Vec<&str> = Vec::new();
        for d in &task.depends_on {
            if !self.task_status(d)?.is_settled() {
                waiting.push(d);
            }
        }
        if !waiting.is_empty() {
            return Ok(Some(format!(
                "it depends on unfinished tasks: {}",
                waiting.join(", ")
            )));
        }
        Ok(None)
    }

    /// How many tasks of the plan are done or skipped (reads every record).
    pub fn settled_count(&self) -> Result<usize> {
        Ok(self
            .all_tasks()?
            .iter()
            .filter(|(id, t)| t.state().is_settled() && self.plan.task(id).is_some())
            .count())
    }

    /// Tasks of a phase that are not done or skipped.
    pub fn unsettled_tasks<'a>(&'a self, phase: &'a Phase) -> Result<Vec<&'a Task>> {
        let mut out = Vec::new();
        for t in &phase.tasks {
            if !self.task_status(&t.id)?.is_settled() {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Tasks of the current phase that are pending and whose dependencies
    /// are settled, in plan order.
    pub fn ready_tasks(&self) -> Result<Vec<(&Phase, &Task)>> {
        let Some(phase) = self.current_phase() else {
            return Ok(Vec::new());
        };
        if self.phase_status(&phase.id) == PhaseStatus::Failed {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for t in &phase.tasks {
            if self.task_status(&t.id)? == TaskStatus::Pending
                && self.blocked_reason(t, phase)?.is_none()
            {
                out.push((phase, t));
            }
        }
        Ok(out)
    }
}
