"""Gate semantics (pure) and the measuring loop shared by the trigger and the in-process sensor."""
