The OCPP message log can be pruned: `[store] keep_message_log_days = N` deletes frames older than N days every hour, oldest first and in small transactions (default 0 keeps every frame).
