//! Pingpipe's notification worker (#14, in progress): it will claim due rows of the outbox the
//! ingest worker writes with each state change and deliver them to webhooks, chat services,
//! e-mail and PagerDuty. What exists so far is the signature every generic webhook carries.

pub mod signing;
