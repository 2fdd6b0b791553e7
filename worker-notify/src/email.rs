//! E-mail messages: plain text, `Subject: [Pingpipe] <summary>`, and a `Message-ID` made of the
//! message's stable id at the sender's domain (`<id@example.com>`), the same on every attempt, so a mail client or a
//! list server recognises a redelivery. The `Date` is when the message was made, not when an
//! attempt ran: every attempt sends the same e-mail.

use lettre::message::header::ContentType;

use crate::channel::{Channel, check_address};
use crate::message::Message;

/// The `Message-ID` of a message: its id at the sender's domain (RFC 5322 §3.6.4).
pub fn message_id(message: &Message, from: &lettre::message::Mailbox) -> String {
    format!("<{}@{}>", message.id, from.email.domain())
}

/// The e-mail of `message` for `channel`; why not, for a channel that cannot be used.
pub fn build(channel: &Channel, message: &Message, text: &str) -> Result<lettre::Message, String> {
    let s = &channel.settings;
    let from = s.from.as_deref().ok_or("from is not set")?;
    let from = check_address("from", from).map_err(|e| e.to_string())?;
    let mut builder = lettre::Message::builder()
        .message_id(Some(message_id(message, &from)))
        .from(from)
        .subject(format!("[Pingpipe] {}", message.summary()))
        .date(message.created_at.into())
        .header(ContentType::TEXT_PLAIN);
    for to in &s.to {
        builder = builder.to(check_address("to", to).map_err(|e| e.to_string())?);
    }
    builder
        .body(text.to_owned())
        .map_err(|e| format!("cannot build the e-mail: {e}"))
}
