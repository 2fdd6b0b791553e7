//! The notification worker's metric names, in one place.

/// Attempts, by `outcome` (`delivered`, `retry`, `failed`).
pub const ATTEMPTS: &str = "pingpipe_notify_attempts_total";
/// Deliveries closed, by `status` (`delivered`, `failed`).
pub const DELIVERIES: &str = "pingpipe_notify_deliveries_total";
/// Deliveries made by grouping, and the notifications they carry.
pub const GROUPED_DELIVERIES: &str = "pingpipe_notify_grouped_deliveries_total";
pub const GROUPED_NOTIFICATIONS: &str = "pingpipe_notify_grouped_notifications_total";
/// Reminders queued.
pub const REMINDERS: &str = "pingpipe_notify_reminders_total";
/// Duration of one attempt.
pub const SEND_SECONDS: &str = "pingpipe_notify_send_seconds";
/// Attempts in flight.
pub const IN_FLIGHT: &str = "pingpipe_notify_in_flight";
/// Failed rounds against PostgreSQL (retried).
pub const DB_ERRORS: &str = "pingpipe_notify_database_errors_total";

pub fn describe() {
    metrics::describe_counter!(ATTEMPTS, "Delivery attempts, by outcome.");
    metrics::describe_counter!(DELIVERIES, "Deliveries closed, by status.");
    metrics::describe_counter!(GROUPED_DELIVERIES, "Deliveries made from the outbox.");
    metrics::describe_counter!(
        GROUPED_NOTIFICATIONS,
        "Notifications grouped into deliveries."
    );
    metrics::describe_counter!(REMINDERS, "Reminders queued.");
    metrics::describe_histogram!(
        SEND_SECONDS,
        metrics::Unit::Seconds,
        "Duration of one delivery attempt."
    );
    metrics::describe_gauge!(IN_FLIGHT, "Delivery attempts in flight.");
    metrics::describe_counter!(DB_ERRORS, "Failed rounds against PostgreSQL (retried).");
}
