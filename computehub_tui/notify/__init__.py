"""Alert channels (Telegram, e-mail, webhook) and the delivery worker over the store's outbox."""
