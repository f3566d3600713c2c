//! Nothing to see: this library exists so that cargo builds the crates of the workshop's
//! capstone exercise (reqwest and serde_json, with tokio and futures), which the checker in
//! `code/exercise.rs` links the learner's copy against.
