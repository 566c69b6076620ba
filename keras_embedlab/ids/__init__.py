"""How ids become rows: the invalid-id rule (`rule`) and the one row reader
(`reader`)."""
