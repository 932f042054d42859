"""What crosses a process boundary, in one place: the names and payloads api, gateway and worker
agree on (signals, updates, queries, command activities, workflow ids, task queues, search
attributes, NOTIFY channels).

Every name here is visible outside the code (in Temporal histories, in PostgreSQL) and must stay
byte for byte what it is. `gateway/` and `workflows/` both import from here and never from each
other (tests/unit/test_import_boundaries.py). Modules here import nothing of the project but
`domain`, and of the outside world only plain data types.
"""
