//! `podports check`: does a pod listen the way it should? Expectations (built-in profiles or
//! the user's YAML/JSON files) are evaluated against one inspection of the target's listeners,
//! giving a report (`eval`) that `command::check` shows as a table, JSON or JUnit XML, and an
//! exit code (0 pass, 1 fail). Only `run` and `node` do I/O (files, the inspection, the
//! clock); everything else is pure. Nothing here writes output, nor ever to the target.

pub mod auto;
pub mod bundle;
pub mod eval;
pub mod expect;
pub mod node;
pub mod profiles;
pub mod run;
