"""The gate engine: the evaluators (pure), the typed Verdict every gate pushes, and the measuring loop
shared by the trigger and the in-process sensor (handed the gate's kind, kinds/)."""
