//! What the GraphQL resolvers call: validated operations on the database.

pub mod checks;
pub mod history;
pub mod notify;
pub mod results;
pub mod states;
pub mod status;
pub mod targets;
pub mod windows;
