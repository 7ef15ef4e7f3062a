//! What git-orch does, independent of how it is shown: every function here
//! takes the repository and a plan name, changes state through the state
//! branch, and returns data for the command layer to render.

pub mod abandon;
pub mod adopt;
pub mod agents;
pub mod amend;
pub mod change;
pub mod checkpoint;
pub mod finish;
pub mod fix;
pub mod gates;
pub mod land;
pub mod ledger;
pub mod manual;
pub mod next;
pub mod progress;
pub mod recover;
pub mod remote;
pub mod report;
pub mod resolve;
pub mod review;
pub mod rollback;
pub mod run;
pub mod runner;
pub mod schedule;
pub mod setup;
pub mod shared_gates;
pub mod start;
pub mod tamper;
pub mod tasks;
pub mod workspace;
